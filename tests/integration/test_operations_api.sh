#!/bin/bash
# The operations part of /v1 (daemon/admin.c, and resend-uncertain in
# api.c) against a real Redis and the mock provider, judged by what the
# provider received: GET /v1/connectors, /v1/token, the dead letters with
# paging and replay, the suppression sets (add, remove, page; a suppressed
# address is not sent to), POST /v1/campaigns/{id}/resend-uncertain; the
# errors (400, 401, 404, 405) and 503 without Redis.
source "$(dirname "$0")/lib.sh"
start_redis
start_mock wa --fail-plan 'hang:to=15550000002'
HTTP=$(free_port)
TOKEN=ops-$RANDOM$RANDOM
echo "$TOKEN" >"$T/tokens"
chmod 600 "$T/tokens"
daemon_conf "$T/d.conf" "http_listen = 127.0.0.1:$HTTP
api_tokens_file = $T/tokens

$(wa_section "$MOCK_PORT" "timeout_ms = 1500")

[channels]
whatsapp = wa"
start_daemon "$T/d.conf"
B=http://127.0.0.1:$HTTP
wait_for 30 curl -sf "$B/readyz"
AUTH="Authorization: Bearer $TOKEN"
get() { curl -s -H "$AUTH" "$B$1"; }
post() { curl -s -H "$AUTH" -X POST ${2:+-d "$2"} "$B$1"; }
code() { curl -s -o /dev/null -w '%{http_code}' -H "$AUTH" "$@"; }
jq_() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
sent_to() { recorded_tos "$T/wa.jsonl" 2>/dev/null | grep -c "^$1\$" || true; }

for r in /v1/connectors /v1/token /v1/dead /v1/suppressions/whatsapp; do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$B$r")" = 401 ] || fail "$r without a token is not 401"
done
ok "401 without the token"

# ---- suppressions
r=$(post /v1/suppressions/whatsapp/add '{"address":"+1 (555) 000-0003"}')
[ "$(echo "$r" | jq_ 'd["address"], d["suppressed"], d["changed"]')" = "('+15550000003', True, True)" ] ||
  [ "$(echo "$r" | jq_ '(d["address"], d["suppressed"], d["changed"])')" = "('+15550000003', True, True)" ] || fail "add: $r"
r=$(post /v1/suppressions/whatsapp/add '{"address":"+15550000003"}')
[ "$(echo "$r" | jq_ 'd["changed"]')" = False ] || fail "a second add changed something: $r"
[ "$(rraw SISMEMBER omni:suppress:whatsapp +15550000003)" = 1 ] || fail "not in omni:suppress:whatsapp"
for a in +15550000101 +15550000102 +15550000103 +15550000104; do post /v1/suppressions/whatsapp/add "{\"address\":\"$a\"}" >/dev/null; done
# every member, page by page (SSCAN: a member may repeat, none is missed)
python3 - "$B" "$TOKEN" <<'PY' || fail "paging the suppressions"
import json, sys, urllib.request
base, tok = sys.argv[1:3]
seen, cur, pages = set(), None, 0
while pages < 100:
    q = "?count=1" + ("&cursor=" + cur if cur else "")
    req = urllib.request.Request(base + "/v1/suppressions/whatsapp" + q, headers={"Authorization": "Bearer " + tok})
    d = json.load(urllib.request.urlopen(req, timeout=10))
    seen |= set(d["addresses"]); pages += 1
    cur = d["next_cursor"]
    if cur is None:
        break
want = {"+15550000003", "+15550000101", "+15550000102", "+15550000103", "+15550000104"}
assert seen == want, seen
PY
r=$(post /v1/suppressions/whatsapp/remove '{"address":"+15550000104"}')
[ "$(echo "$r" | jq_ '(d["suppressed"], d["changed"])')" = "(False, True)" ] || fail "remove: $r"
[ "$(rraw SISMEMBER omni:suppress:whatsapp +15550000104)" = 0 ] || fail "still suppressed after remove"
[ "$(code -X POST -d '{"address":"not a number"}' "$B/v1/suppressions/whatsapp/add")" = 400 ] || fail "a bad address is not 400"
[ "$(code -X POST -d '{"to":"+15550000001"}' "$B/v1/suppressions/whatsapp/add")" = 400 ] || fail "no address is not 400"
[ "$(code -X POST -d 'nope' "$B/v1/suppressions/whatsapp/add")" = 400 ] || fail "not JSON is not 400"
big=$(python3 -c 'print("{\"address\":\"+15550000001\",\"x\":\"" + "a"*5000 + "\"}")')
[ "$(code -X POST -d "$big" "$B/v1/suppressions/whatsapp/add")" = 400 ] || fail "an oversized body is not 400"
[ "$(code "$B/v1/suppressions/fax")" = 404 ] || fail "an unknown channel is not 404"
[ "$(code -X POST "$B/v1/suppressions/whatsapp")" = 405 ] || fail "POST on the set is not 405"
[ "$(code "$B/v1/suppressions/whatsapp/add")" = 405 ] || fail "GET on add is not 405"
[ "$(code "$B/v1/suppressions/whatsapp?count=0")" = 400 ] || fail "count=0 is not 400"
[ "$(code "$B/v1/suppressions/whatsapp?cursor=x")" = 400 ] || fail "a bad cursor is not 400"
ok "suppressions: add (normalized, once), page by page, remove, 400/404/405"

# ---- a campaign: the suppressed address is skipped, the hanging one ends
# uncertain, and resend-uncertain sends it once more (counted at the provider)
enqueue '{"type":"broadcast","id":"ops-1","channel":"whatsapp","message":{"text":"hi"},"recipients":[{"to":"+15550000001"},{"to":"+15550000002"},{"to":"+15550000003"}]}'
wait_for 60 campaign_done ops-1
[ "$(campaign_field ops-1 suppressed)" = 1 ] || fail "the suppressed address was not skipped"
[ "$(campaign_field ops-1 uncertain)" = 1 ] || fail "the hanging recipient is not uncertain"
[ "$(sent_to 15550000003)" = 0 ] || fail "the provider got the suppressed address"
[ "$(sent_to 15550000002)" = 1 ] || fail "the provider got the hanging recipient $(sent_to 15550000002) times"
c=$(get /v1/connectors)
[ "$(echo "$c" | jq_ '(d["connectors"][0]["name"], d["connectors"][0]["channels"], d["connectors"][0]["counts"]["sent"], d["connectors"][0]["counts"]["uncertain"], d["connectors"][0]["halted"])')" = "('wa', ['whatsapp'], 1, 1, False)" ] ||
  fail "GET /v1/connectors: $c"
ok "GET /v1/connectors counts what the provider answered (1 sent, 1 uncertain)"
r=$(post /v1/campaigns/ops-1/resend-uncertain)
[ "$(echo "$r" | jq_ '(d["id"], d["queued"])')" = "('ops-1', 1)" ] || fail "resend-uncertain: $r"
wait_for 30 test "$(sent_to 15550000002)" = 2
wait_for 60 campaign_done ops-1
[ "$(sent_to 15550000001)" = 1 ] || fail "resend-uncertain sent a settled recipient again"
r=$(post /v1/campaigns/ops-1/resend-uncertain)
[ "$(echo "$r" | jq_ 'd["queued"]')" = 1 ] || fail "the second resend: $r"
[ "$(code -X POST "$B/v1/campaigns/nope/resend-uncertain")" = 404 ] || fail "an unknown campaign is not 404"
[ "$(code "$B/v1/campaigns/ops-1/resend-uncertain")" = 404 ] || fail "GET resend-uncertain is not 404"
ok "resend-uncertain: the provider got the uncertain recipient once more and no one else"

# ---- dead letters
for i in 1 2 3; do enqueue "{\"type\":\"broadcast\",\"id\":\"dead-$i\",\"channel\":\"fax\"}"; done
wait_for 20 test "$(rraw XLEN omni:dead)" -ge 3
n0=$(rraw XLEN omni:dead)
p1=$(get '/v1/dead?count=2')
[ "$(echo "$p1" | jq_ 'len(d["dead"])')" = 2 ] || fail "count=2 gave: $p1"
next=$(echo "$p1" | jq_ 'd["next"]')
[ "$next" != None ] || fail "no next after a full page: $p1"
echo "$p1" | jq_ 'd["dead"][0]["job"]' | q '"dead-3"' || fail "not newest first: $p1"
p2=$(get "/v1/dead?count=2&before=$next")
id1=$(echo "$p1" | jq_ 'd["dead"][1]["id"]')
[ "$next" = "$id1" ] || fail "next is not the page's last: $p1"
echo "$p2" | jq_ '[x["id"] for x in d["dead"]]' | q "$id1" && fail "a dead letter on two pages"
echo "$p2" | jq_ 'd["dead"][0]["job"]' | q '"dead-1"' || fail "the next page does not go on after next: $p2"
r=$(post "/v1/dead/$id1/replay")
[ "$(echo "$r" | jq_ 'd["id"]')" = "$id1" ] || fail "replay: $r"
wait_for 20 test "$(rraw XLEN omni:dead)" -eq $((n0 + 1))
get '/v1/dead?count=1' | jq_ 'd["dead"][0]["job"]' | q '"dead-2"' || fail "the replayed job did not come back through the queue"
[ "$(code -X POST "$B/v1/dead/1-1/replay")" = 404 ] || fail "an unknown dead letter is not 404"
[ "$(code -X POST "$B/v1/dead/abc/replay")" = 404 ] || fail "a bad id is not 404"
[ "$(code "$B/v1/dead/$id1/replay")" = 405 ] || fail "GET replay is not 405"
[ "$(code "$B/v1/dead?count=500")" = 400 ] || fail "count=500 is not 400"
[ "$(code "$B/v1/dead?before=zz")" = 400 ] || fail "a bad before is not 400"
ok "dead letters: newest first, paged by before/next, replayed through the queue, 400/404/405"

# ---- without Redis: 503, never a hang
stop_redis
for r in /v1/dead /v1/suppressions/whatsapp; do
  [ "$(code --max-time 10 "$B$r")" = 503 ] || fail "$r without Redis is not 503"
done
[ "$(code --max-time 10 -X POST -d '{"address":"+15550000005"}' "$B/v1/suppressions/whatsapp/add")" = 503 ] || fail "add without Redis is not 503"
[ "$(code --max-time 10 -X POST "$B/v1/campaigns/ops-1/resend-uncertain")" = 503 ] || fail "resend without Redis is not 503"
[ "$(code --max-time 10 "$B/v1/connectors")" = 200 ] || fail "GET /v1/connectors needs no Redis"
ok "503 without Redis; /v1/connectors still answers"

stop_daemon
check_logs_clean
