#!/bin/bash
# Campaign reports (issue 20, point 4): failures counted by reason (a mock
# provider answering different errors, a failed status after the send) in
# the campaign hash, GET /v1/campaigns/{id}, omnicast status and /metrics;
# the recipients export (NDJSON and CSV) compared with Redis, its state
# filter and its refusals; a slow client holding the export back
# (backpressure: the scan waits) and hanging up (the scan stops); a
# duplicate job id answered 200 "exists" by the API and the CLI.
source "$(dirname "$0")/lib.sh"

start_redis
start_mock prov --fail-plan "wa_code=131026:to=15550000002,wa_code=131047:to=15550000003,wa_code=131051:to=15550000004,wa_code=131026:to=15550000005,wa_code=131009:to=15550000007,twilio_code=21610:to=+15550000021,twilio_code=21211:to=+15550000022"
HTTP_PORT=$(free_port)
echo "t0ken-rep" >"$T/tokens"
daemon_conf "$T/omni.conf" "
http_listen = 127.0.0.1:$HTTP_PORT
api_tokens_file = $T/tokens
$(wa_section "$MOCK_PORT")

[connector.sms]
type = twilio
api_base = http://127.0.0.1:$MOCK_PORT
account_sid = AC0123
auth_token = tok3n
from = +15551230000

[channels]
whatsapp = wa
sms = sms"
start_daemon "$T/omni.conf"
B="http://127.0.0.1:$HTTP_PORT"
H="Authorization: Bearer t0ken-rep"
api() { curl -s -m 20 -H "$H" "$B$1"; }
code() { curl -s -m 20 -o /dev/null -w '%{http_code}' -H "$H" "$B$1"; }
wait_for 20 curl -sf "$B/readyz"
OC=("$OMNI_BUILD/omnicast" --redis "redis://127.0.0.1:$REDIS_PORT/0")

rcli SADD omni:suppress:whatsapp +15550000006 >/dev/null
rcpts=""
for n in 1 2 3 4 5 6 7 8; do rcpts="$rcpts{\"to\":\"+1555000000$n\"},"; done
enqueue "{\"type\":\"broadcast\",\"id\":\"rep1\",\"channel\":\"whatsapp\",\"message\":{\"text\":\"Hi, \\\"you\\\", a,b\"},\"recipients\":[${rcpts%,}]}"
enqueue '{"type":"broadcast","id":"rep2","channel":"sms","message":{"text":"x"},"recipients":[{"to":"+15550000021"},{"to":"+15550000022"},{"to":"+15550000023"}]}'
wait_for 60 campaign_done rep1
wait_for 60 campaign_done rep2

# a failed status after the send (no meaning given: delivery_failed)
pid=$(msg_field rep1 whatsapp:+15550000001 provider_id)
[ -n "$pid" ] || fail "no provider id for +15550000001"
st="{\"id\":\"$pid\",\"status\":\"failed\",\"timestamp\":\"1700000000\",\"recipient_id\":\"15550000001\",\"errors\":[{\"code\":131000,\"title\":\"x\"}]}"
c=$(post_wa "$(printf "$WA_HEAD" messages)\"statuses\":[$st]$WA_TAIL")
[ "$c" = 200 ] || fail "status post: $c $(cat "$T/wbody")"
failed_status_counted() { [ "$(campaign_field rep1 failed_after_send)" = 1 ]; }
wait_for 20 failed_status_counted

rraw HGETALL omni:campaign:rep1 | paste - - | grep '^failed_reason:' | sort >"$T/r1.txt"
cat >"$T/r1.want" <<'W'
failed_reason:delivery_failed	1
failed_reason:outside_window	1
failed_reason:rejected	1
failed_reason:undeliverable	2
failed_reason:unsupported_type	1
W
diff "$T/r1.want" "$T/r1.txt" || fail "rep1 failures by reason in Redis"
[ "$(campaign_field rep1 failed)" = 5 ] && [ "$(campaign_field rep1 suppressed)" = 1 ] ||
  fail "rep1 counters: $(rraw HGETALL omni:campaign:rep1 | tr '\n' ' ')"
api /v1/campaigns/rep1 | python3 -c '
import json, sys; c = json.load(sys.stdin)
assert c["failures"] == {"undeliverable": 2, "outside_window": 1, "unsupported_type": 1, "rejected": 1, "delivery_failed": 1}, c["failures"]
assert c["failed_reason:undeliverable"] == 2, c
assert sum(c["failures"].values()) == c["channels"]["whatsapp"]["failed"], c' || fail "GET rep1 failures"
api /v1/campaigns/rep2 | python3 -c '
import json, sys; c = json.load(sys.stdin)
assert c["failures"] == {"opted_out": 1, "invalid_recipient": 1}, c["failures"]' || fail "GET rep2 failures"
"${OC[@]}" --json status rep1 | python3 -c '
import json, sys; c = json.load(sys.stdin)
assert c["failures"]["undeliverable"] == 2, c' || fail "status --json failures"
"${OC[@]}" status rep1 >"$T/st.txt"
q -E '^  failures' "$T/st.txt" || fail "status: no failures section: $(cat "$T/st.txt")"
q -E '^    undeliverable +2$' "$T/st.txt" || fail "status: undeliverable 2: $(cat "$T/st.txt")"
curl -s -m 10 "$B/metrics" >"$T/metrics.txt"
for want in 'omnicast_failures_total{channel="whatsapp",reason="undeliverable"} 2' \
  'omnicast_failures_total{channel="whatsapp",reason="delivery_failed"} 1' \
  'omnicast_failures_total{channel="sms",reason="opted_out"} 1' \
  'omnicast_failures_total{channel="sms",reason="invalid_recipient"} 1' \
  'omnicast_channel_sent_total{channel="whatsapp"} 2' 'omnicast_channel_sent_total{channel="sms"} 1'; do
  q -F "$want" "$T/metrics.txt" || fail "metrics: no '$want': $(grep -E 'failures|channel_sent' "$T/metrics.txt")"
done
ok "failures by reason: Redis, API, CLI (JSON and table), /metrics by channel and reason"

# ---- the export, against Redis
rraw HGETALL omni:msg:rep1 >"$T/msg1.txt"
api '/v1/campaigns/rep1/recipients' >"$T/e.ndjson"
api '/v1/campaigns/rep1/recipients?format=csv' >"$T/e.csv"
python3 - "$T/msg1.txt" "$T/e.ndjson" "$T/e.csv" <<'PY' || fail "export does not match Redis: $(cat "$T/e.ndjson")"
import csv, io, json, sys
kv = open(sys.argv[1]).read().split("\n")
recs = {k: json.loads(v) for k, v in zip(kv[0::2], kv[1::2]) if ":" in k and not k.startswith("dup:")}
lines = [json.loads(l) for l in open(sys.argv[2])]
assert len(lines) == len(recs) == 8, (len(lines), len(recs))
by = {}
for l in lines:
    r = recs[l["channel"] + ":" + l["address"]]
    assert l["state"] == r["state"], (l, r)
    assert l["provider_id"] == r.get("provider_id"), (l, r)
    assert l["reason"] == r.get("error", r.get("reason")), (l, r)
    assert l["attempts"] == r.get("attempts") and l["at"] == r.get("at"), (l, r)
    assert l["delivery"] == r.get("dlv"), (l, r)
    by[l["address"]] = l
assert by["+15550000006"]["state"] == "suppressed", by
assert by["+15550000002"]["reason"] == "undeliverable", by
assert by["+15550000001"]["delivery"] == "failed" and str(by["+15550000001"]["delivery_error"]).startswith("131000"), by
raw = open(sys.argv[3], newline="").read()
assert raw.startswith("address,channel,state,provider_id,reason,attempts,at,delivery,delivery_at,delivery_error\r\n"), raw[:200]
rows = list(csv.DictReader(io.StringIO(raw, newline="")))
assert len(rows) == 8, rows
for row in rows:
    l = by[row["address"]]
    for k, v in l.items():
        assert row[k] == ("" if v is None else str(v)), (k, row, l)
PY
ok "export: NDJSON and CSV carry every record of msg:rep1 as Redis holds it"

api '/v1/campaigns/rep1/recipients?state=failed&format=ndjson' | python3 -c '
import json, sys; ls = [json.loads(l) for l in sys.stdin]
assert sorted(l["address"] for l in ls) == ["+15550000002", "+15550000003", "+15550000004", "+15550000005", "+15550000007"], ls
assert all(l["state"] == "failed" for l in ls), ls' || fail "state=failed"
[ "$(api '/v1/campaigns/rep1/recipients?state=suppressed&format=csv' | wc -l)" = 2 ] || fail "state=suppressed csv"
[ "$(code '/v1/campaigns/rep1/recipients?state=nope')" = 400 ] || fail "bad state not 400"
[ "$(code '/v1/campaigns/rep1/recipients?format=xml')" = 400 ] || fail "bad format not 400"
[ "$(code '/v1/campaigns/nosuch/recipients')" = 404 ] || fail "unknown campaign not 404"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$B/v1/campaigns/rep1/recipients")" = 401 ] || fail "no token not 401"
ok "export: state filter, 400 on a bad state or format, 404, 401"

# the CLI prints the same lines (the order is the scan's: compared sorted)
"${OC[@]}" export rep1 | sort >"$T/cli.ndjson"
sort "$T/e.ndjson" | cmp -s - "$T/cli.ndjson" || fail "omnicast export differs from the API: $(cat "$T/cli.ndjson")"
"${OC[@]}" export rep1 --csv >"$T/cli.csv"
[ "$(head -1 "$T/cli.csv")" = "$(head -1 "$T/e.csv")" ] && cmp -s <(tail -n +2 "$T/e.csv" | sort) <(tail -n +2 "$T/cli.csv" | sort) ||
  fail "omnicast export --csv differs from the API"
[ "$("${OC[@]}" export --state failed rep1 | wc -l)" = 5 ] || fail "omnicast export --state failed"
rc=0; "${OC[@]}" export nosuch >/dev/null 2>&1 || rc=$?
[ $rc = 1 ] || fail "omnicast export of an unknown campaign: exit $rc"
ok "omnicast export: the API's lines, NDJSON and CSV, --state; exit 1 for an unknown campaign"

# ---- a big message hash: a slow client holds the scan back, a client
# that hangs up stops it
python3 - <<'PY' | redis-cli -p "$REDIS_PORT" --pipe >/dev/null
from resp import cmd
cmd("HSET", "omni:campaign:big", "id", "big", "state", "done", "total", "100000", "created_at", "1")
for b in range(0, 100000, 1000):
    args = []
    for i in range(b, b + 1000):
        args += ["sms:+1666%07d" % i, '{"state":"sent","channel":"sms","slot":"%d","attempts":1,"at":1700000000000,"provider_id":"SM%032d"}' % (i, i)]
    cmd("HSET", "omni:msg:big", *args)
PY
[ "$(rraw HLEN omni:msg:big)" = 100000 ] || fail "big hash not filled"
hscans() { rraw INFO commandstats | sed -n 's/^cmdstat_hscan:calls=\([0-9]*\),.*/\1/p'; }
h0=$(hscans); h0=${h0:-0}
# the whole export once, to know how many steps it takes
curl -s -m 240 -H "$H" "$B/v1/campaigns/big/recipients?format=csv" | wc -l >"$T/biglines"
[ "$(cat "$T/biglines")" = 100001 ] || fail "big export lines: $(cat "$T/biglines")"
h1=$(hscans); full=$((h1 - h0))
[ "$full" -gt 50 ] || fail "the full export took only $full HSCAN steps"
# a client that reads 64 KiB, stalls 3 s, then hangs up
python3 - "$HTTP_PORT" >"$T/slow.txt" <<'PY' &
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
s.connect(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /v1/campaigns/big/recipients HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t0ken-rep\r\n\r\n")
got = 0
while got < 65536:
    d = s.recv(65536)
    if not d:
        break
    got += len(d)
print(got, flush=True)
time.sleep(3)
s.close()
PY
SLOW=$!
PIDS+=("$SLOW")
wait_for 20 test -s "$T/slow.txt"
sleep 2
h2=$(hscans); stalled=$((h2 - h1))
[ "$stalled" -lt $((full / 2)) ] || fail "a stalled client did not hold the scan back: $stalled of $full steps"
wait "$SLOW" || fail "slow client"
sleep 2
h3=$(hscans)
sleep 2
h4=$(hscans)
[ "$h4" = "$h3" ] || fail "the scan went on after the client hung up: $h3 -> $h4"
[ "$((h4 - h1))" -lt "$full" ] || fail "the hung-up export read the whole hash: $((h4 - h1)) of $full"
curl -sf -m 10 "$B/healthz" >/dev/null || fail "daemon not healthy after the hang-up"
[ "$(api /v1/campaigns/rep2/recipients | wc -l)" = 3 ] || fail "export after the hang-up"
ok "export backpressure: a stalled client held the scan at $stalled of $full steps; hanging up stopped it at $((h4 - h1))"

# ---- a duplicate job id
post() { curl -s -m 10 -o "$T/pbody" -w '%{http_code}' -H "$H" -H 'Content-Type: application/json' --data-binary "$2" "$B$1"; }
c=$(post /v1/broadcasts '{"type":"broadcast","id":"rep1","channel":"whatsapp","message":{"text":"again"},"recipients":[{"to":"+15550000001"}]}')
[ "$c" = 200 ] || fail "duplicate id: $c $(cat "$T/pbody")"
python3 -c '
import json, sys; a = json.load(open(sys.argv[1]))
assert a == {"id": "rep1", "status": "exists", "state": "done"}, a' "$T/pbody" || fail "duplicate answer: $(cat "$T/pbody")"
c=$(post /v1/broadcasts '{"type":"broadcast","id":"rep3","channel":"whatsapp","message":{"text":"new"},"recipients":[{"to":"+15550000001"}]}')
[ "$c" = 202 ] && q '"status":"queued"' "$T/pbody" || fail "new id: $c $(cat "$T/pbody")"
wait_for 30 campaign_done rep3
xl=$(rraw XLEN omni:jobs)
echo '{"type":"broadcast","id":"rep2","channel":"sms","message":{"text":"x"},"recipients":[{"to":"+15550000023"}]}' >"$T/dup.json"
"${OC[@]}" enqueue "$T/dup.json" | q "job rep2 exists" || fail "CLI enqueue of an existing id"
"${OC[@]}" --json enqueue "$T/dup.json" | python3 -c '
import json, sys; a = json.load(sys.stdin)
assert a["status"] == "exists" and a["state"] == "done" and a["id"] == "rep2", a' || fail "CLI --json enqueue exists"
[ "$(rraw XLEN omni:jobs)" = "$xl" ] || fail "a duplicate was queued: XLEN $(rraw XLEN omni:jobs)"
ok "a duplicate job id: 200 exists (API), 'exists' (CLI), nothing queued"

stop_daemon
check_logs_clean
