#!/bin/bash
# docs/openapi.yaml against the running daemon (issue 20 point 6): first the
# spec against the sources (every scope-table row of http.c is an operation
# with that scope, every /v1 operation a row, every event type daemon/lua
# publishes has its schema); then every operation is driven on a daemon
# with real Redis, the mock WhatsApp provider and a CRM receiver (success
# and the main errors, then every one again with Redis stopped), each
# answer recorded and validated against the spec (status and body,
# Draft 2020-12), every documented response must have been answered
# (unless marked x-not-driven); and every event on omni:conversations and
# every CRM post is validated against its schema.
#
# To add an operation: give it its row in http.c's scope_rules and its
# path in docs/openapi.yaml, then drive each of its responses below with
#   oa STATUS METHOD PATH [BODY] [TOKEN]
# (TOKEN default: the full-access token; "-" for none; OA_HDR="Name: value"
# before it adds a header). Events: add the
# type to REQUIRE when the test produces it.
source "$(dirname "$0")/lib.sh"

SPEC="$OMNI_SRC/docs/openapi.yaml"
CHECK="$OMNI_SRC/tests/openapi_check.py"
python3 -c 'import jsonschema, yaml' 2>/dev/null ||
  fail "python3-jsonschema and python3-yaml are needed (make deps)"

python3 "$CHECK" drift "$SPEC" "$OMNI_SRC/daemon/http.c" "$OMNI_SRC/daemon/lua" ||
  fail "docs/openapi.yaml and the daemon's routes or events differ (above)"
ok "the spec covers every scope-table row, route and event type; its scopes match http.c"

start_redis
start_mock prov
HTTP_PORT=$(free_port)
printf 'crm-s3cret\n' >"$T/crm_secret"
printf 'tok-oa\ntok-send send\ntok-read read\n' >"$T/tokens"
chmod 600 "$T/crm_secret" "$T/tokens"
daemon_conf "$T/omni.conf" "
http_listen = 127.0.0.1:$HTTP_PORT
api_tokens_file = $T/tokens
crm_webhook_url = http://127.0.0.1:$MOCK_PORT/crm
crm_webhook_secret_file = $T/crm_secret
crm_retry_ms = 500
$(wa_section "$MOCK_PORT")

[channels]
whatsapp = wa"
start_daemon "$T/omni.conf"
B="http://127.0.0.1:$HTTP_PORT"
wait_for 20 curl -sf "$B/readyz"

# oa STATUS METHOD PATH [BODY] [TOKEN]: one request, its answer recorded in
# $T/oa for the validation at the end; the status must be STATUS. The body
# is left in $T/last. OA_HDR="Name: value" adds a request header.
mkdir -p "$T/oa"
N=0
# oa_meta METHOD PATH STATUS TYPE: $T/oa/N.meta (paths and types here hold no quote)
oa_meta() {
  printf '{"method":"%s","path":"%s","status":%d,"type":"%s"}\n' "$1" "$2" "$3" "$4" \
    >"$T/oa/$(printf %04d $N).meta"
}
oa() {
  local want=$1 m=$2 p=$3 body=${4:-} tok=${5:-tok-oa}
  local args=(-s -m 10 -o "$T/last" -w '%{http_code} %{content_type}' -X "$m")
  [ "$tok" = - ] || args+=(-H "Authorization: Bearer $tok")
  [ -z "${OA_HDR:-}" ] || args+=(-H "$OA_HDR")
  [ "$m" = POST ] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
  local out st ct
  : >"$T/last" # a 304 (no body) leaves curl's output file unwritten
  out=$(curl "${args[@]}" "$B$p") || true
  st=${out%% *}
  ct=${out#* }
  N=$((N + 1))
  cp "$T/last" "$T/oa/$(printf %04d $N).body"
  oa_meta "$m" "$p" "${st:-0}" "$ct"
  [ "$st" = "$want" ] || fail "$m $p: $st, want $want: $(head -c 300 "$T/last")"
}
# oa_wa STATUS BODY [SIGNATURE]: a WhatsApp webhook, signed, recorded the same way
oa_wa() {
  local want=$1 body=$2 sig=${3:-$(printf '%s' "$2" | sign_wa)}
  local out st ct
  : >"$T/last"
  out=$(curl -s -m 10 -o "$T/last" -w '%{http_code} %{content_type}' -H 'Content-Type: application/json' \
    -H "X-Hub-Signature-256: $sig" --data-binary "$body" "$B/webhooks/wa") || true
  st=${out%% *}
  ct=${out#* }
  N=$((N + 1))
  cp "$T/last" "$T/oa/$(printf %04d $N).body"
  oa_meta POST /webhooks/wa "${st:-0}" "$ct"
  [ "$st" = "$want" ] || fail "POST /webhooks/wa: $st, want $want: $(head -c 300 "$T/last")"
}
wa_msg() { # FROM ID FIELDS [CONTEXT_ID]: FIELDS the message's own, e.g. "type":"text","text":{...}
  local ctx=""
  [ -n "${4:-}" ] && ctx=",\"context\":{\"from\":\"15551230000\",\"id\":\"$4\"}"
  printf "$WA_HEAD"'"contacts":[{"profile":{"name":"Ana"},"wa_id":"%s"}],"messages":[{"from":"%s","id":"%s","timestamp":"1700000001",%s%s}]'"$WA_TAIL" \
    messages "$1" "$1" "$2" "$3" "$ctx"
}
wa_text() { wa_msg "$1" "$2" "\"type\":\"text\",\"text\":{\"body\":\"$3\"}" "${4:-}"; }

# ---- health and metrics
oa 200 GET /healthz "" -
oa 200 GET /readyz "" -
oa 200 GET /metrics "" -

# ---- jobs
bc='{"type":"broadcast","id":"oa-b1","channel":"whatsapp","message":{"text":"Hi {{name}}"},"recipients":[{"to":"+15550000001","vars":{"name":"Ana"}},{"to":"+15550000002","vars":{"name":"Bo"}}],"metadata":{"segment":"vip"}}'
oa 202 POST /v1/broadcasts "$bc"
oa 400 POST /v1/broadcasts '{"type":"broadcast","id":"bad","channel":"fax"}'
oa 401 POST /v1/broadcasts "$bc" -
oa 403 POST /v1/broadcasts "$bc" tok-read
at=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
oa 202 POST /v1/broadcasts "{\"type\":\"broadcast\",\"id\":\"oa-later\",\"channel\":\"whatsapp\",\"send_at\":\"$at\",\"message\":{\"text\":\"x\"},\"recipients\":[{\"to\":\"+15550000009\"}]}"
msg='{"type":"message","id":"oa-m1","channel":"whatsapp","message":{"text":"Your order shipped"},"to":"+15550000005"}'
oa 202 POST /v1/messages "$msg"
oa 400 POST /v1/messages '{"type":"broadcast","id":"x"}'
oa 401 POST /v1/messages "$msg" -
oa 403 POST /v1/messages "$msg" tok-read
wait_for 30 campaign_done oa-b1
wait_for 30 campaign_done oa-m1
wait_for 30 campaign_done oa-later scheduled
njobs=$(rraw XLEN omni:jobs)
oa 200 POST /v1/broadcasts "$bc"
jf() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$T/last" "$1"; }
[ "$(jf 'd["status"], d["state"]')" = "('exists', 'done')" ] || fail "a duplicate broadcast: $(cat "$T/last")"
oa 200 POST /v1/messages "$msg"
[ "$(jf 'd["status"]')" = exists ] || fail "a duplicate message job: $(cat "$T/last")"
[ "$(rraw XLEN omni:jobs)" = "$njobs" ] || fail "a duplicate id was queued again"
ok "jobs: 202, 200 exists, 400, 401, 403"

# ---- webhooks (the provider's side)
w1=$(msg_field oa-b1 whatsapp:+15550000001 provider_id)
[ -n "$w1" ] || fail "no provider id for oa-b1"
oa 200 GET "/webhooks/wa?hub.mode=subscribe&hub.verify_token=verifytoken&hub.challenge=8675309" "" -
[ "$(cat "$T/last")" = 8675309 ] || fail "the challenge was not answered"
oa 403 GET "/webhooks/wa?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1" "" -
oa 400 GET "/webhooks/wa?hub.mode=subscribe&hub.verify_token=verifytoken" "" -
oa 404 GET "/webhooks/nosuch?hub.mode=subscribe" "" -
oa 404 POST /webhooks/nosuch '{}' -
oa_wa 200 "$(printf "$WA_HEAD"'"statuses":[{"id":"%s","status":"delivered","timestamp":"1700000000","recipient_id":"15550000001"}]'"$WA_TAIL" messages "$w1")"
oa_wa 200 "$(wa_text 15550000001 wamid.OA1 'Is it still on?' "$w1")"
oa_wa 200 "$(wa_text 15550000002 wamid.OA2 STOP)"
oa_wa 200 "$(wa_text 15550000002 wamid.OA3 START)"
oa_wa 200 "$(wa_msg 15550000001 wamid.OA4 '"type":"system","system":{"body":"User Ana changed from 15550000001 to 15550000008","wa_id":"15550000008","type":"user_changed_number"}')"
oa_wa 200 "$(printf "$WA_HEAD"'"contacts":[{"profile":{"name":"Cy"},"wa_id":"15550000003"}],"user_preferences":[{"wa_id":"15550000003","detail":"User requested to stop marketing messages","category":"marketing_messages","value":"stop","timestamp":1700000002}]'"$WA_TAIL" user_preferences)"
oa_wa 401 "$(wa_text 15550000001 wamid.OA5 hi)" sha256=0000000000000000000000000000000000000000000000000000000000000000
oa_wa 400 'not json'
big=$(python3 -c '
import json
st = [{"id": "wamid.big%d" % i, "status": "delivered", "timestamp": "1700000000", "recipient_id": "15550000001"} for i in range(1001)]
print(json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [{"field": "messages", "value": {"messaging_product": "whatsapp", "metadata": {"display_phone_number": "15551230000", "phone_number_id": "1234567890"}, "statuses": st}}]}]}, separators=(",", ":")))')
oa_wa 413 "$big"
# the last event of the webhooks above is on the stream: all are
wait_for 60 sh -c "redis-cli -p $REDIS_PORT --raw XREVRANGE omni:conversations + - COUNT 1 | grep -q user_preferences"
ok "webhooks: verify 200/400/403/404, events 200/400/401/404/413"

# ---- campaigns
oa 200 GET /v1/campaigns
oa 200 GET '/v1/campaigns?state=done&limit=1'
oa 400 GET '/v1/campaigns?state=bogus'
oa 401 GET /v1/campaigns "" -
oa 403 GET /v1/campaigns "" tok-send
oa 200 GET /v1/campaigns/oa-b1
oa 200 GET /v1/campaigns/oa-m1
oa 200 GET /v1/campaigns/oa-later
oa 404 GET /v1/campaigns/nosuch
oa 401 GET /v1/campaigns/oa-b1 "" -
oa 403 GET /v1/campaigns/oa-b1 "" tok-send
oa 200 GET /v1/campaigns/oa-b1/uncertain
oa 400 GET '/v1/campaigns/oa-b1/uncertain?count=0'
oa 404 GET /v1/campaigns/nosuch/uncertain
oa 401 GET /v1/campaigns/oa-b1/uncertain "" -
oa 403 GET /v1/campaigns/oa-b1/uncertain "" tok-send
for a in pause resume cancel; do
  oa 404 POST "/v1/campaigns/nosuch/$a"
  oa 409 POST "/v1/campaigns/oa-b1/$a"
  oa 401 POST "/v1/campaigns/oa-later/$a" "" -
  oa 403 POST "/v1/campaigns/oa-later/$a" "" tok-read
done
oa 200 POST /v1/campaigns/oa-later/pause
oa 200 POST /v1/campaigns/oa-later/resume
oa 200 POST /v1/campaigns/oa-later/cancel
oa 200 GET /v1/campaigns/oa-b1/recipients
[ "$(grep -c '"address":"+1555000000[12]"' "$T/last")" = 2 ] || fail "the export lacks a recipient: $(cat "$T/last")"
oa 200 GET '/v1/campaigns/oa-b1/recipients?format=csv&state=sent'
[ "$(grep -c '^+1555000000[12],whatsapp,sent,' "$T/last")" = 2 ] || fail "the CSV export: $(cat "$T/last")"
oa 200 GET '/v1/campaigns/oa-b1/recipients?state=failed'
[ ! -s "$T/last" ] || fail "state=failed exported lines of a campaign without failures: $(cat "$T/last")"
oa 400 GET '/v1/campaigns/oa-b1/recipients?state=bogus'
oa 400 GET '/v1/campaigns/oa-b1/recipients?format=xml'
oa 404 GET /v1/campaigns/nosuch/recipients
oa 401 GET /v1/campaigns/oa-b1/recipients "" -
oa 403 GET /v1/campaigns/oa-b1/recipients "" tok-send
oa 200 POST /v1/campaigns/oa-b1/resend-uncertain
[ "$(jf 'd["queued"]')" = 0 ] || fail "resend-uncertain of a campaign without uncertain ones: $(cat "$T/last")"
[ "$(campaign_field oa-b1 state)" = done ] || fail "resend-uncertain with none uncertain reopened oa-b1"
oa 404 POST /v1/campaigns/nosuch/resend-uncertain
oa 401 POST /v1/campaigns/oa-b1/resend-uncertain "" -
oa 403 POST /v1/campaigns/oa-b1/resend-uncertain "" tok-read
ok "campaigns: list, one, uncertain, recipients, pause/resume/cancel, resend-uncertain"

# ---- conversations
oa 200 GET /v1/conversations
cv=$(python3 -c 'import json,sys; c=[x for x in json.load(open(sys.argv[1]))["conversations"] if x["origin"]=="reply" and x["contact"]=="+15550000001"]; print(c[0]["id"])' "$T/last")
oa 200 GET '/v1/conversations?state=open&limit=10'
oa 200 GET '/v1/conversations?campaign=oa-b1'
oa 400 GET '/v1/conversations?state=bogus'
oa 401 GET /v1/conversations "" -
oa 403 GET /v1/conversations "" tok-send
oa 200 GET "/v1/conversations/$cv"
cvm=$(rraw GET omni:conv:of:oa-m1)
oa 200 GET "/v1/conversations/$cvm"
oa 404 GET /v1/conversations/nosuch
oa 401 GET "/v1/conversations/$cv" "" -
oa 403 GET "/v1/conversations/$cv" "" tok-send
# an agent's message: the contact wrote (wamid.OA1), so the text goes out
am='{"text":"Yes, until Sunday","id":"oa-agent1"}'
oa 202 POST "/v1/conversations/$cv/messages" "$am"
oa 200 POST "/v1/conversations/$cv/messages" "$am"
oa 400 POST "/v1/conversations/$cv/messages" '{"text":"x","bogus":1}'
oa 400 POST "/v1/conversations/$cv/messages" 'not json'
oa 404 POST /v1/conversations/nosuch/messages '{"text":"x"}'
oa 409 POST "/v1/conversations/$cv/messages" '{"text":"x","id":"oa-b1"}'
[ "$(jf 'd["error"]["code"]')" = id_taken ] || fail "a campaign's id: $(cat "$T/last")"
oa 401 POST "/v1/conversations/$cv/messages" "$am" -
oa 403 POST "/v1/conversations/$cv/messages" "$am" tok-read
# into the proactive conversation (no window here: session_window_s = 0);
# the provider then reports it failed (message.failed)
oa 202 POST "/v1/conversations/$cvm/messages" '{"text":"Any news?","id":"oa-agent2"}'
wait_for 30 campaign_done oa-agent1
wait_for 30 campaign_done oa-agent2
w2=$(msg_field oa-agent1 whatsapp:+15550000001 provider_id)
[ -n "$w2" ] || fail "no provider id for the agent's message"
for st in delivered read; do
  oa_wa 200 "$(printf "$WA_HEAD"'"statuses":[{"id":"%s","status":"%s","timestamp":"1700000010","recipient_id":"15550000001"}]'"$WA_TAIL" messages "$w2" "$st")"
done
w3=$(msg_field oa-agent2 whatsapp:+15550000005 provider_id)
[ -n "$w3" ] || fail "no provider id for the second agent message"
oa_wa 200 "$(printf "$WA_HEAD"'"statuses":[{"id":"%s","status":"failed","timestamp":"1700000011","recipient_id":"15550000005","errors":[{"code":131026,"title":"Message undeliverable"}]}]'"$WA_TAIL" messages "$w3")"
for t in read failed; do
  wait_for 30 sh -c "redis-cli -p $REDIS_PORT --raw XRANGE omni:conversations - + | grep -q '^message.$t\$'"
done
oa 200 GET "/v1/conversations/$cv"
python3 - "$T/last" <<'PY' || fail "the agent's message in the log: $(cat "$T/last")"
import json, sys
m = [x for x in json.load(open(sys.argv[1]))["messages"] if x.get("ref") == "oa-agent1"]
assert len(m) == 1 and m[0]["status"] == "read", m
assert [s["status"] for s in m[0]["statuses"]] == ["sent", "delivered", "read"], m
PY
# conversions: counted on oa-b1 (the reply's campaign), then the same id again
cvn='{"value":19.99,"currency":"EUR","id":"order-1","note":"first order"}'
oa 200 POST "/v1/conversations/$cv/conversion" "$cvn"
[ "$(jf 'd["status"], d["campaign"], d["value"]')" = "('counted', 'oa-b1', '19.99')" ] || fail "conversion: $(cat "$T/last")"
oa 200 POST "/v1/conversations/$cv/conversion" "$cvn"
[ "$(jf 'd["status"]')" = exists ] || fail "the same conversion again: $(cat "$T/last")"
oa 200 POST "/v1/conversations/$cvm/conversion" '{"value":5,"currency":"USD"}'
# a proactive conversation (POST /v1/messages) has no campaign: its message
# job is not one, so the conversion is stored on the conversation, counted nowhere
[ "$(jf 'd["status"], d["campaign"], d["counted"]')" = "('stored', None, False)" ] || fail "a proactive conversation's conversion: $(cat "$T/last")"
oa 400 POST "/v1/conversations/$cv/conversion" '{"value":1.2345,"currency":"EUR"}'
oa 400 POST "/v1/conversations/$cv/conversion" '{"value":1,"currency":"euro"}'
oa 404 POST /v1/conversations/nosuch/conversion "$cvn"
oa 401 POST "/v1/conversations/$cv/conversion" "$cvn" -
oa 403 POST "/v1/conversations/$cv/conversion" "$cvn" tok-read
oa 200 GET /v1/campaigns/oa-b1
[ "$(jf 'd["converted"], d["revenue"]')" = "(1, {'EUR': '19.99'})" ] || fail "oa-b1's conversions: $(cat "$T/last")"
oa 200 GET "/v1/conversations/$cv"
oa 200 GET "/v1/conversations/$cvm"
oa 200 POST "/v1/conversations/$cv/close"
oa 409 POST "/v1/conversations/$cv/messages" '{"text":"too late"}'
[ "$(jf 'd["error"]["code"]')" = conversation_closed ] || fail "a closed conversation: $(cat "$T/last")"
oa 404 POST /v1/conversations/nosuch/close
oa 401 POST "/v1/conversations/$cv/close" "" -
oa 403 POST "/v1/conversations/$cv/close" "" tok-read
ok "conversations: list, one, messages, conversion, close"

# ---- connectors
oa 202 POST /v1/connectors/wa/resume
oa 404 POST /v1/connectors/nosuch/resume
oa 401 POST /v1/connectors/wa/resume "" -
oa 403 POST /v1/connectors/wa/resume "" tok-read
oa 200 GET /v1/connectors
[ "$(jf '[c["name"] for c in d["connectors"]]')" = "['wa']" ] || fail "connectors: $(cat "$T/last")"
oa 401 GET /v1/connectors "" -
oa 403 GET /v1/connectors "" tok-send
ok "connectors: list, resume"

# ---- token
oa 200 GET /v1/token
[ "$(jf 'sorted(d["scopes"])')" = "['admin', 'agent', 'control', 'read', 'send']" ] || fail "token: $(cat "$T/last")"
oa 200 GET /v1/token "" tok-send
[ "$(jf 'd["scopes"]')" = "['send']" ] || fail "a send token: $(cat "$T/last")"
oa 401 GET /v1/token "" -
ok "token: 200 for any token, 401"

# ---- dead letters: a job the queue refuses, and an event's (no job in it)
enqueue '{"type":"broadcast","id":"oa-dead","channel":"fax"}'
wait_for 20 test "$(rraw XLEN omni:dead)" -ge 1
oa 200 GET /v1/dead
did=$(jf 'd["dead"][0]["id"]')
oa 200 GET "/v1/dead?count=1&before=$did"
oa 400 GET '/v1/dead?count=0'
oa 400 GET '/v1/dead?before=zz'
oa 401 GET /v1/dead "" -
oa 403 GET /v1/dead "" tok-read
oa 202 POST "/v1/dead/$did/replay"
oa 404 POST /v1/dead/1-1/replay
eid=$(rraw XADD omni:dead '*' source inbound reason oa-test data '{}')
oa 409 POST "/v1/dead/$eid/replay"
oa 401 POST "/v1/dead/$did/replay" "" -
oa 403 POST "/v1/dead/$did/replay" "" tok-read
ok "dead letters: list, replay"

# ---- suppressions
oa 200 GET /v1/suppressions/whatsapp
oa 200 GET '/v1/suppressions/whatsapp?count=1000&cursor=0'
oa 200 POST /v1/suppressions/whatsapp/add '{"address":"+1 555 000 0077"}'
[ "$(jf 'd["address"], d["suppressed"], d["changed"]')" = "('+15550000077', True, True)" ] || fail "add: $(cat "$T/last")"
[ "$(rraw SISMEMBER omni:suppress:whatsapp +15550000077)" = 1 ] || fail "add did not reach Redis"
oa 200 POST /v1/suppressions/whatsapp/remove '{"address":"+15550000077"}'
[ "$(rraw SISMEMBER omni:suppress:whatsapp +15550000077)" = 0 ] || fail "remove did not reach Redis"
oa 400 GET '/v1/suppressions/whatsapp?count=0'
oa 404 GET /v1/suppressions/nosuch
oa 401 GET /v1/suppressions/whatsapp "" -
oa 403 GET /v1/suppressions/whatsapp "" tok-read
for a in add remove; do
  oa 400 POST "/v1/suppressions/whatsapp/$a" '{}'
  oa 404 POST "/v1/suppressions/nosuch/$a" '{"address":"+15550000077"}'
  oa 401 POST "/v1/suppressions/whatsapp/$a" '{"address":"+15550000077"}' -
  oa 403 POST "/v1/suppressions/whatsapp/$a" '{"address":"+15550000077"}' tok-read
done
ok "suppressions: list, add, remove"

# ---- the dashboard's files (no token)
oa 301 GET /ui "" -
[ "$(curl -s -m 10 -o /dev/null -w '%{redirect_url}' "$B/ui")" = "$B/ui/" ] || fail "/ui: no Location /ui/"
# another method: 405 (the spec describes GET only)
code405() { [ "$(curl -s -m 10 -o /dev/null -w '%{http_code}' -X POST "$B$1")" = 405 ] || fail "POST $1 is not 405"; }
code405 /ui
for f in "" app.js app.css icon.svg; do
  oa 200 GET "/ui/$f" "" -
  etag=$(curl -s -m 10 -o /dev/null -D - "$B/ui/$f" | tr -d '\r' | sed -n 's/^[Ee][Tt][Aa][Gg]: *//p')
  [ -n "$etag" ] || fail "/ui/$f: no ETag"
  OA_HDR="If-None-Match: $etag" oa 304 GET "/ui/$f" "" -
  code405 "/ui/$f"
done
oa 404 GET /ui/nosuch.js "" -
oa 404 GET /ui/index.html "" -
ok "dashboard: 200, 301, 304, 404, 405"

# ---- events: on the stream and as the CRM got them
REQUIRE=conversation.created,message.received,message.sent,message.delivered,message.read,message.failed
REQUIRE+=,conversation.converted,contact.opted_out,contact.opted_in,contact.system,conversation.closed
crm_caught_up() {
  [ "$(rraw XPENDING omni:conversations crm | head -1)" = 0 ] &&
    [ "$(grep -c '"path":"/crm"' "$T/prov.jsonl")" -ge "$(rraw XLEN omni:conversations)" ]
}
wait_for 30 crm_caught_up
rraw XRANGE omni:conversations - + >"$T/events.txt"
python3 "$CHECK" events "$SPEC" "$T/events.txt" "$T/prov.jsonl" --require "$REQUIRE" ||
  fail "events that do not match docs/openapi.yaml (above)"
ok "every event on omni:conversations and every CRM post matches its schema"

# ---- Redis gone: every operation that needs it answers 503
stop_redis
wait_for 20 sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' $B/readyz)\" = 503 ]"
oa 503 GET /readyz "" -
oa 503 POST /v1/broadcasts "${bc//oa-b1/oa-b2}"
oa 503 POST /v1/messages "${msg//oa-m1/oa-m2}"
oa 503 GET /v1/campaigns
oa 503 GET /v1/campaigns/oa-b1
oa 503 GET /v1/campaigns/oa-b1/uncertain
for a in pause resume cancel; do oa 503 POST "/v1/campaigns/oa-b1/$a"; done
oa 503 GET /v1/conversations
oa 503 GET "/v1/conversations/$cv"
oa 503 POST "/v1/conversations/$cv/close"
oa 503 POST /v1/connectors/wa/resume
oa 503 GET /v1/campaigns/oa-b1/recipients
oa 503 POST /v1/campaigns/oa-b1/resend-uncertain
oa 503 POST "/v1/conversations/$cvm/messages" '{"text":"x"}'
oa 503 POST "/v1/conversations/$cvm/conversion" '{"value":1,"currency":"EUR"}'
oa 503 GET /v1/dead
oa 503 POST "/v1/dead/$did/replay"
oa 503 GET /v1/suppressions/whatsapp
oa 503 POST /v1/suppressions/whatsapp/add '{"address":"+15550000077"}'
oa 503 POST /v1/suppressions/whatsapp/remove '{"address":"+15550000077"}'
oa_wa 503 "$(wa_text 15550000001 wamid.OA9 later)"
ok "Redis stopped: 503 everywhere it is needed"

python3 "$CHECK" answers "$SPEC" "$T/oa" || fail "answers that do not match docs/openapi.yaml (above)"
ok "$N answers match docs/openapi.yaml, and every documented response was answered"
! grep -q 'tok-oa\|tok-send\|tok-read\|crm-s3cret\|appsecret' "$T/daemon.log" || fail "a secret in the log"
check_logs_clean
