#!/bin/bash
# Inbound end to end: signed provider webhooks (WhatsApp statuses and a
# reply quoting our message, Twilio inbound SMS and status callbacks) move
# the funnel, open attributed conversations and publish events; bad
# signatures store nothing; replays store once; STOP suppresses; and the
# HTTP API (tokens, broadcasts, proactive messages, campaigns,
# conversations, health and metrics).
source "$(dirname "$0")/lib.sh"

start_redis
start_mock crm --fail-plan "status=500:first=3"
CRM_PORT=$MOCK_PORT
start_mock prov
HTTP_PORT=$(free_port)
printf 'crm-s3cret\n' >"$T/crm_secret"
chmod 600 "$T/crm_secret"
echo "# API tokens" >"$T/tokens"
echo "t0ken-abc" >>"$T/tokens"
daemon_conf "$T/omni.conf" "
http_listen = 127.0.0.1:$HTTP_PORT
api_tokens_file = $T/tokens
crm_webhook_url = http://127.0.0.1:$CRM_PORT/crm
crm_webhook_secret_file = $T/crm_secret
crm_retry_ms = 500
$(wa_section "$MOCK_PORT")

[connector.sms]
type = twilio
api_base = http://127.0.0.1:$MOCK_PORT
account_sid = AC1
auth_token = twtoken
from = +15551230000
public_url = https://omni.example.com/webhooks/sms

[channels]
whatsapp = wa
sms = sms"
start_daemon "$T/omni.conf"
B="http://127.0.0.1:$HTTP_PORT"
wait_for 20 curl -sf "$B/readyz"
AUTH="Authorization: Bearer t0ken-abc"
api() { curl -s -o "$T/body" -w '%{http_code}' -H "$AUTH" "$@"; }

# every API route wants the token
for r in "POST /v1/broadcasts" "POST /v1/messages" "GET /v1/campaigns/x" "POST /v1/campaigns/x/pause" \
         "POST /v1/campaigns/x/resume" "POST /v1/campaigns/x/cancel" "GET /v1/conversations" \
         "GET /v1/conversations/x" "POST /v1/conversations/x/close"; do
  set -- $r
  code=$(curl -s -o /dev/null -w '%{http_code}' -X "$1" "$B$2")
  [ "$code" = 401 ] || fail "$r without a token: $code"
  code=$(curl -s -o /dev/null -w '%{http_code}' -X "$1" -H "Authorization: Bearer wrong" "$B$2")
  [ "$code" = 401 ] || fail "$r with a wrong token: $code"
done
ok "every API route answers 401 without a valid token"

code=$(api -d '{"type":"broadcast","id":"bad","channel":"fax"}' "$B/v1/broadcasts")
[ "$code" = 400 ] && grep -q '"code":"invalid_job"' "$T/body" && grep -q 'unknown channel: fax' "$T/body" || fail "invalid broadcast: $code $(cat "$T/body")"
[ "$(rraw XLEN omni:jobs)" = 0 ] || fail "an invalid job reached Redis"
ok "an invalid broadcast gets 400 with the reason and writes nothing"

code=$(api -d '{"type":"broadcast","id":"bf","channel":"whatsapp","message":{"text":"Hi {{name}}"},"recipients":[{"to":"+15550000001","vars":{"name":"Ana"}},{"to":"+15550000002","vars":{"name":"Bo"}},{"to":"+15550000003","vars":{"name":"Cy"}}],"metadata":{"segment":"vip"}}' "$B/v1/broadcasts")
[ "$code" = 202 ] || fail "broadcast: $code $(cat "$T/body")"
wait_for 30 campaign_done bf
w1=$(msg_field bf whatsapp:+15550000001 provider_id)
w2=$(msg_field bf whatsapp:+15550000002 provider_id)
[ -n "$w1" ] && [ -n "$w2" ] || fail "no provider ids recorded"
ok "POST /v1/broadcasts → 202, campaign done"

status_payload() { # WAMID STATE RECIPIENT
  printf '{"object":"whatsapp_business_account","entry":[{"id":"W","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15551230000","phone_number_id":"1234567890"},"statuses":[{"id":"%s","status":"%s","timestamp":"1700000000","recipient_id":"%s"}]}}]}]}' "$1" "$2" "$3"
}
reply_payload() { # FROM ID TEXT [CONTEXT_ID]
  local ctx=""
  [ -n "${4:-}" ] && ctx=",\"context\":{\"from\":\"15551230000\",\"id\":\"$4\"}"
  printf '{"object":"whatsapp_business_account","entry":[{"id":"W","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15551230000","phone_number_id":"1234567890"},"contacts":[{"profile":{"name":"Ana"},"wa_id":"%s"}],"messages":[{"from":"%s","id":"%s","timestamp":"1700000001","type":"text","text":{"body":"%s"}%s}]}}]}]}' "$1" "$1" "$2" "$3" "$ctx"
}

# the verification handshake
[ "$(curl -s "$B/webhooks/wa?hub.mode=subscribe&hub.verify_token=verifytoken&hub.challenge=8675309")" = 8675309 ] || fail "handshake"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$B/webhooks/wa?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1")" = 403 ] || fail "handshake with a wrong token"

# a bad signature stores nothing
before=$(rraw DBSIZE)
[ "$(post_wa "$(status_payload "$w1" delivered 15550000001)" sha256=0000000000000000000000000000000000000000000000000000000000000000)" = 401 ] || fail "bad signature not refused"
[ "$(curl -s -o /dev/null -w '%{http_code}' --data-binary "$(status_payload "$w1" delivered 15550000001)" "$B/webhooks/wa")" = 401 ] || fail "missing signature not refused"
sleep 0.5
[ "$(rraw DBSIZE)" = "$before" ] && [ "$(campaign_field bf delivered)" = 0 ] || fail "a refused webhook changed Redis"
[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST -d '{}' "$B/webhooks/nosuch")" = 404 ] || fail "unknown connector"
ok "bad or missing signatures → 401 and nothing stored; unknown connector → 404"

# more events in one request than the daemon keeps (1000): refused whole,
# never a 2xx for a request whose events were not all stored
big=$(python3 -c '
import json
st = [{"id": "wamid.big%d" % i, "status": "delivered", "timestamp": "1700000000", "recipient_id": "15550000001"} for i in range(1001)]
print(json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [{"field": "messages", "value": {"messaging_product": "whatsapp", "metadata": {"display_phone_number": "15551230000", "phone_number_id": "1234567890"}, "statuses": st}}]}]}, separators=(",", ":")))')
before=$(rraw DBSIZE)
[ "$(post_wa "$big")" = 413 ] || fail "1001 events in one request: $(cat "$T/wbody")"
q too_many_events "$T/wbody" || fail "413 without its code"
sleep 0.3
[ "$(rraw DBSIZE)" = "$before" ] || fail "an oversized batch stored something"
ok "more than 1000 events in one request → 413 too_many_events, nothing stored"

# statuses: delivered then read for 1; read then a late delivered for 2
for p in "$w1 delivered 15550000001" "$w1 read 15550000001" "$w2 read 15550000002" "$w2 delivered 15550000002" "$w1 delivered 15550000001"; do
  set -- $p
  [ "$(post_wa "$(status_payload "$1" "$2" "$3")")" = 200 ] || fail "status webhook"
done
wait_for 10 sh -c "[ \$(redis-cli -p $REDIS_PORT --raw HGET omni:campaign:bf read) = 2 ]"
sleep 0.3
[ "$(campaign_field bf delivered)" = 2 ] || fail "delivered should be 2: $(campaign_field bf delivered)"
[ "$(msg_field bf whatsapp:+15550000002 dlv)" = read ] || fail "a late delivered moved read back"
ok "statuses move forward only: delivered 2, read 2, a late delivered after read ignored, replays ignored"

# a reply quoting our message → conversation attributed to bf
R=$(reply_payload 15550000001 wamid.IN1 "Is it still on?" "$w1")
[ "$(post_wa "$R")" = 200 ] || fail "reply webhook"
[ "$(post_wa "$R")" = 200 ] || fail "replayed reply webhook"
wait_for 10 sh -c "[ \$(redis-cli -p $REDIS_PORT --raw HGET omni:campaign:bf replied) = 1 ]"
sleep 0.3
conv=$(rraw HGET omni:contact:whatsapp:+15550000001 open_conv)
[ -n "$conv" ] || fail "no conversation opened"
[ "$(rraw HGET omni:conv:$conv campaign)" = bf ] || fail "conversation not attributed"
[ "$(rraw HGET omni:conv:$conv origin)" = reply ] || fail "origin"
# the log: the campaign message answered (issue 20), then the reply once
[ "$(rraw XLEN omni:conv:$conv:log)" = 2 ] || fail "the replayed reply was stored twice"
rraw XRANGE omni:conversations - + | q '"type":"conversation.created"' || fail "no conversation.created event"
rraw XRANGE omni:conversations - + | q 'Is it still on?' || fail "no message.received event"
rraw XRANGE omni:conversations - + | q '"segment":"vip"' || fail "campaign metadata not in events"
ok "a quoted reply opened conversation $conv attributed to bf; replay stored once; events published"

# STOP without a quote → attributed to the last campaign; suppressed
[ "$(post_wa "$(reply_payload 15550000003 wamid.IN3 " stop ")")" = 200 ] || fail "stop webhook"
wait_for 10 sh -c "[ \$(redis-cli -p $REDIS_PORT --raw SISMEMBER omni:suppress:whatsapp +15550000003) = 1 ]"
wait_for 5 sh -c "[ \$(redis-cli -p $REDIS_PORT --raw HGET omni:campaign:bf opted_out) = 1 ]"
rraw XRANGE omni:conversations - + | q contact.opted_out || fail "no contact.opted_out event"
# the STOP is stored and published as a message, but counts opted_out only
[ "$(campaign_field bf replied)" = 1 ] || fail "a STOP counted as a reply: replied $(campaign_field bf replied)"
[ "$(rraw SISMEMBER omni:campaign:bf:repliers +15550000003)" = 0 ] || fail "the STOP sender joined repliers"
sconv=$(rraw HGET omni:contact:whatsapp:+15550000003 open_conv)
[ -n "$sconv" ] && rraw XRANGE omni:conv:$sconv:log - + | q 'stop' || fail "the STOP was not stored in its conversation"
rraw XRANGE omni:conversations - + | grep message.received | q '"contact":"+15550000003"' || fail "no message.received for the STOP"
[ "$(post_wa "$(reply_payload 15550000003 wamid.IN3b "STOP")")" = 200 ] || fail "second stop webhook"
wait_for 10 sh -c "[ \$(redis-cli -p $REDIS_PORT --raw XLEN omni:conv:$sconv:log) = 3 ]" || fail "the second STOP was not stored"
sleep 0.3
[ "$(campaign_field bf opted_out)" = 1 ] && [ "$(campaign_field bf replied)" = 1 ] || fail "a second STOP: opted_out $(campaign_field bf opted_out) replied $(campaign_field bf replied)"
code=$(api -d '{"type":"broadcast","id":"after-stop","channel":"whatsapp","message":{"text":"again"},"recipients":[{"to":"+15550000003"},{"to":"+15550000004"}]}' "$B/v1/broadcasts")
wait_for 30 campaign_done after-stop
[ "$(campaign_field after-stop suppressed)" = 1 ] && [ "$(campaign_field after-stop sent)" = 1 ] || fail "the opted-out contact was not suppressed"
ok "STOP → suppression set, opted_out counted once (not replied), message stored and published, the next campaign suppresses the contact"

# Twilio: inbound SMS and a status callback, signed
sms_sig() { python3 - "$1" <<'PY'
import base64, hashlib, hmac, sys, urllib.parse
params = urllib.parse.parse_qsl(sys.argv[1], keep_blank_values=True)
data = "https://omni.example.com/webhooks/sms" + "".join(k + v for k, v in sorted(params))
print(base64.b64encode(hmac.new(b"twtoken", data.encode(), hashlib.sha1).digest()).decode())
PY
}
body='From=%2B15550000007&To=%2B15551230000&Body=Hello+there&MessageSid=SMin1&NumMedia=0'
code=$(curl -s -o "$T/tw" -w '%{http_code}' -H "X-Twilio-Signature: $(sms_sig "$body")" --data "$body" "$B/webhooks/sms")
[ "$code" = 200 ] && grep -q '<Response/>' "$T/tw" || fail "twilio inbound: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Twilio-Signature: AAAA" --data "$body" "$B/webhooks/sms")
[ "$code" = 403 ] || fail "twilio bad signature: $code"
wait_for 10 sh -c "[ -n \"\$(redis-cli -p $REDIS_PORT --raw HGET omni:contact:sms:+15550000007 open_conv)\" ]"
ok "twilio inbound SMS (signed) opened a conversation; a bad signature → 403"

# proactive message through the API: a conversation, then message.sent
code=$(api -d '{"type":"message","id":"chat-1","channel":"whatsapp","message":{"text":"Your order shipped"},"to":"+15550000009"}' "$B/v1/messages")
[ "$code" = 202 ] || fail "POST /v1/messages: $code $(cat "$T/body")"
pconv=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["conversation_id"])' "$T/body")
wait_for 30 campaign_done chat-1
[ "$(rraw HGET omni:conv:$pconv origin)" = proactive ] || fail "proactive origin"
wait_for 10 sh -c "redis-cli -p $REDIS_PORT XRANGE omni:conv:$pconv:log - + | grep -q '^sent$'"
rraw XRANGE omni:conversations - + | q message.sent || fail "no message.sent event"
ok "POST /v1/messages → 202 with conversation $pconv (proactive); the send lands in it"

# campaigns and conversations through the API
[ "$(api "$B/v1/campaigns/bf")" = 200 ] || fail "GET campaign"
python3 - "$T/body" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
assert (c["total"], c["sent"], c["delivered"], c["read"], c["replied"], c["opted_out"], c["pending"]) == (3, 3, 2, 2, 1, 1, 0), c  # the STOP is an opt-out, not a reply
assert abs(c["rates"]["delivered"] - 2 / 3) < 1e-9 and c["spec"]["metadata"] == {"segment": "vip"}
PY
[ "$(api "$B/v1/campaigns/nope")" = 404 ] || fail "missing campaign"
[ "$(api -X POST "$B/v1/campaigns/bf/pause")" = 409 ] || fail "pausing a done campaign should be 409"
[ "$(api "$B/v1/conversations?state=open&campaign=bf")" = 200 ] || fail "list"
python3 -c 'import json,sys; cs=json.load(open(sys.argv[1]))["conversations"]; assert len(cs) == 2 and all(c["campaign"] == "bf" for c in cs), cs' "$T/body"
[ "$(api "$B/v1/conversations/$conv")" = 200 ] || fail "get conversation"
python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); m=c["messages"]; assert m[0]["dir"] == "out" and m[0]["kind"] == "campaign" and m[0]["text"] == "Hi Ana" and m[1]["text"] == "Is it still on?", c' "$T/body"
[ "$(api -X POST "$B/v1/conversations/$conv/close")" = 200 ] || fail "close"
[ "$(rraw HGET omni:conv:$conv state)" = closed ] || fail "not closed"
[ "$(api "$B/v1/conversations/nope")" = 404 ] || fail "missing conversation"
ok "GET campaign funnel adds up; pause a done campaign → 409; conversations list, get, close"

# GET /v1/campaigns/{id}/uncertain: records seeded straight into Redis
# (3 special ones, a sent one, dup: fields, 300 uncertain and 300 sent in
# bulk: a hash too big for one HSCAN step), read page by page
python3 - <<'PY' | redis-cli -p "$REDIS_PORT" --pipe >/dev/null
import json, sys
from resp import cmd
cmd("HSET", "omni:campaign:unc", "id", "unc", "state", "done", "total", "604", "uncertain", "303")
cmd("HSET", "omni:campaign:unc-empty", "id", "unc-empty", "state", "done", "total", "1")
kv = [
    "whatsapp:+15550000001", json.dumps({"state": "uncertain", "channel": "whatsapp", "slot": "0", "attempts": 1, "at": 1732000000500, "reason": "ambiguous_timeout", "wire_at": 1732000000123, "owner": "i1"}),
    "whatsapp:+15550000002", json.dumps({"state": "uncertain", "channel": "whatsapp", "slot": "1", "attempts": 2, "at": 1732000031000, "reason": "owner_lost", "claimed_at": 1732000000200, "owner": "i2"}),
    "sms:+15550000003", json.dumps({"state": "uncertain", "channel": "sms", "slot": "2", "attempts": 1, "at": 1732000040000, "owner": "old"}),
    "whatsapp:+15550000004", json.dumps({"state": "sent", "channel": "whatsapp", "slot": "3", "attempts": 1, "at": 1732000000100, "provider_id": "wamid.4"}),
    "dup:5", "whatsapp:+15550000001", "dup:6", "sms:+15550000003",
]
for i in range(10, 610):
    st = "uncertain" if i % 2 else "sent"
    kv += ["sms:+1555100%04d" % i, json.dumps({"state": st, "channel": "sms", "slot": str(i), "attempts": 1, "at": 1732000050000, "reason": "ambiguous_reset", "wire_at": 1732000049000 + i})]
cmd("HSET", "omni:msg:unc", *kv)
PY
for m in GET POST; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -X $m "$B/v1/campaigns/unc/uncertain")
  [ "$code" = 401 ] || fail "$m uncertain without a token: $code"
done
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer wrong" "$B/v1/campaigns/unc/uncertain")" = 401 ] || fail "uncertain with a wrong token"
[ "$(api "$B/v1/campaigns/nope/uncertain")" = 404 ] && q '"code":"not_found"' "$T/body" || fail "uncertain of an unknown campaign: $(cat "$T/body")"
for qs in "cursor=abc" "cursor=-1" "cursor=" "cursor=18446744073709551616" "count=0" "count=1001" "count=x" "count="; do
  [ "$(api "$B/v1/campaigns/unc/uncertain?$qs")" = 400 ] && q '"code":"bad_query"' "$T/body" || fail "uncertain?$qs: $(cat "$T/body")"
done
[ "$(api -X POST "$B/v1/campaigns/unc/uncertain")" = 405 ] || fail "POST uncertain should be 405"
[ "$(api "$B/v1/campaigns/unc-empty/uncertain")" = 200 ] || fail "uncertain of a campaign without records"
python3 -c 'import json,sys; b=json.load(open(sys.argv[1])); assert b == {"campaign":"unc-empty","uncertain":[],"next_cursor":None}, b' "$T/body"
python3 - "$B" <<'PY'
import json, sys, urllib.request
B = sys.argv[1]
def get(q):
    r = urllib.request.Request(B + "/v1/campaigns/unc/uncertain" + q, headers={"Authorization": "Bearer t0ken-abc"})
    with urllib.request.urlopen(r, timeout=10) as f:
        assert f.status == 200 and f.headers["Content-Type"] == "application/json"
        return json.load(f)
items, pages, cursor = [], 0, None
while pages < 100:  # 303 of 608 fields, 50 a page: well under 100 pages
    b = get("?count=50" + ("&cursor=" + cursor if cursor else ""))
    assert b["campaign"] == "unc" and set(b) == {"campaign", "uncertain", "next_cursor"}, b
    assert len(b["uncertain"]) <= 100, len(b["uncertain"])  # count found, plus the rest of the last step
    items += b["uncertain"]
    pages += 1
    cursor = b["next_cursor"]
    if cursor is None:
        break
    assert isinstance(cursor, str) and cursor.isdigit() and cursor != "0", cursor
assert cursor is None and pages >= 4, pages
by = {i["to"]: i for i in items}
assert len(items) == 303 and len(by) == 303, (len(items), len(by))
assert by["+15550000001"] == {"to": "+15550000001", "channel": "whatsapp", "index": 0, "attempts": 1, "reason": "ambiguous_timeout", "wire_at": 1732000000123, "claimed_at": None, "at": 1732000000500}, by["+15550000001"]
assert by["+15550000002"] == {"to": "+15550000002", "channel": "whatsapp", "index": 1, "attempts": 2, "reason": "owner_lost", "wire_at": None, "claimed_at": 1732000000200, "at": 1732000031000}, by["+15550000002"]
assert by["+15550000003"] == {"to": "+15550000003", "channel": "sms", "index": 2, "attempts": 1, "reason": "owner_lost", "wire_at": None, "claimed_at": None, "at": 1732000040000}, by["+15550000003"]
assert "+15550000004" not in by
bulk = [t for t in by if t.startswith("+1555100")]
assert len(bulk) == 300 and all(int(t[-4:]) % 2 for t in bulk)
assert all(by[t]["reason"] == "ambiguous_reset" and by[t]["wire_at"] == 1732000049000 + by[t]["index"] for t in bulk)
# the default page: 100 found (or the whole scan), one answer
b = get("")
assert len(b["uncertain"]) >= 100 or b["next_cursor"] is None, b
PY
ok "GET /v1/campaigns/{id}/uncertain: 401 without a token, 404 unknown, 400 bad cursor/count, 405 POST; 303 uncertain of 608 records over pages of count=50, old records owner_lost, no sent or dup: entries"

curl -s "$B/metrics" >"$T/metrics"
grep -q '^omnicast_messages_total{connector="wa",outcome="sent"} [1-9]' "$T/metrics" || fail "metrics"
grep -q '^omnicast_provider_latency_seconds_bucket{connector="wa",le="+Inf"}' "$T/metrics" || fail "histogram"
grep -q '^omnicast_redis_up 1' "$T/metrics" || fail "redis_up"
! grep -qi 'testtoken\|appsecret\|twtoken' "$T/metrics" || fail "a secret in /metrics"
ok "/metrics in Prometheus text format, no secrets"

# the CRM got every conversation event, signed, acked in the stream
# caught up: every stream entry delivered (the 3 refused ones again) and
# nothing pending
crm_caught_up() {
  [ "$(rraw XPENDING omni:conversations crm | head -1)" = 0 ] &&
  python3 - "$T/crm.jsonl" "$(rraw XLEN omni:conversations)" <<'PY'
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1]) if json.loads(l)["path"] == "/crm"]
ids = set(r["headers"]["x-omnicast-delivery"] for r in reqs)
sys.exit(0 if len(ids) == int(sys.argv[2]) and len(reqs) >= len(ids) + 3 else 1)
PY
}
wait_for 20 crm_caught_up
python3 - "$T/crm.jsonl" "$(rraw XLEN omni:conversations)" <<'PY'
import hashlib, hmac, json, sys
reqs = [json.loads(l) for l in open(sys.argv[1]) if json.loads(l)["path"] == "/crm"]
types = [json.loads(r["body"])["type"] for r in reqs]
assert "conversation.created" in types and "message.received" in types and "contact.opted_out" in types, types
for r in reqs:
    sig = "sha256=" + hmac.new(b"crm-s3cret", r["body"].encode(), hashlib.sha256).hexdigest()
    assert r["headers"]["x-omnicast-signature"] == sig, r
    assert r["headers"]["x-omnicast-event"] == json.loads(r["body"])["type"]
assert len(set(r["headers"]["x-omnicast-delivery"] for r in reqs)) == int(sys.argv[2]), (len(reqs), sys.argv[2])
# the first three posts were refused (500) and posted again with the same id
assert len(reqs) >= int(sys.argv[2]) + 3, (len(reqs), sys.argv[2])
PY
ok "the CRM webhook received every conversation event (3 refused at first, posted again), signed; the stream is acked"

stop_daemon
! grep -q 'testtoken\|appsecret\|twtoken\|t0ken-abc\|crm-s3cret' "$T/daemon.log" || fail "a secret reached the log"
check_logs_clean
