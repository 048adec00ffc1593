#!/bin/bash
# Twilio to the letter (issue 19 point 5), against the mock provider
# speaking Twilio's wire format: 21611 (queue full) slows the connector
# and every recipient is accepted exactly once in the end; 30005 fails
# unreachable_number and suppresses, 21612 is invalid_recipient; 30034
# halts the instance; the SMS segments (Twilio's num_segments, or the
# connector's own count when the answer has none) are summed on the
# campaign; 900 Cyrillic characters are not too long; ValidityPeriod is
# sent. Inbound, signed as Twilio signs (the URL with the default port,
# repeated parameters): Advanced Opt-Out's `Body=ARRET&OptOutType=STOP`
# suppresses and is not a reply, START unsuppresses, HELP stores nothing;
# REVOKE without OptOutType is a default opt-out keyword.
source "$(dirname "$0")/lib.sh"

start_redis
start_mock prov --fail-plan "twilio_code=21611:first=4,twilio_code=30005:to=+15550000105,twilio_code=21612:to=+15550000106,segments=0:to=+15550000107,twilio_code=30034:to=+15550000201"
HTTP_PORT=$(free_port)
daemon_conf "$T/omni.conf" "
http_listen = 127.0.0.1:$HTTP_PORT
max_attempts = 10

[connector.sms]
type = twilio
api_base = http://127.0.0.1:$MOCK_PORT
account_sid = AC1
auth_token = twtoken
from = +15551230000
public_url = https://omni.example.com/webhooks/sms
validity_period = 600

[connector.sms2]
type = twilio
api_base = http://127.0.0.1:$MOCK_PORT
account_sid = AC2
auth_token = twtoken2
from = +15551230002

[channels]
sms = sms
sms2 = sms2"
start_daemon "$T/omni.conf"
B="http://127.0.0.1:$HTTP_PORT"
wait_for 20 curl -sf "$B/readyz"
J="$T/prov.jsonl"
metric() { curl -sf "$B/metrics" | grep "^$1" | awk '{print $2}'; }

# ---- sends: 10 recipients of 200 ASCII characters (2 GSM-7 segments each)
text=$(python3 -c 'print("x" * 200)')
recips=$(python3 -c 'import json; print(json.dumps([{"to": "+1555000%04d" % i} for i in range(101, 111)]))')
enqueue "{\"type\":\"broadcast\",\"id\":\"bulk\",\"channel\":\"sms\",\"message\":{\"text\":\"$text\"},\"recipients\":$recips}"
wait_for 60 campaign_done bulk
python3 - "$J" <<'PY' || fail "provider-side counts"
import sys
from provider import counts
req, acc = counts(sys.argv[1], "155500001")
want = {"1555000%04d" % i for i in range(101, 111)} - {"15550000105", "15550000106"}
bad = {k: v for k, v in acc.items() if v != 1}
assert set(acc) == want and not bad, (sorted(acc.items()), bad)
assert sum(req.values()) == 8 + 2 + 4, req  # 8 accepted, 2 refused, 4 queue-full answers
PY
[ "$(campaign_field bulk sent)" = 8 ] && [ "$(campaign_field bulk failed)" = 2 ] ||
  fail "bulk counters: $(rraw HGETALL omni:campaign:bulk | tr '\n' ' ')"
# the queue-full answers slowed the connector: the first retry came at
# least ~1 s after them (the retry backoff alone is ~100 ms here)
python3 - "$J" <<'PY' || fail "21611 did not slow the connector"
import json, sys, urllib.parse
rs = [json.loads(l) for l in open(sys.argv[1]) if "Messages.json" in l]
to = lambda r: urllib.parse.parse_qs(r["body"])["To"][0]
full = rs[:4]  # the mock answers the first 4 requests 21611 (first=4)
assert all(r["status"] == 400 for r in full), full
gaps = []
for f in full:
    nxt = [r["ts_ms"] for r in rs if to(r) == to(f) and r["ts_ms"] >= f["ts_ms"] and r is not f]
    assert nxt, ("never retried", to(f))
    gaps.append(min(nxt) - f["ts_ms"])
assert min(gaps) >= 900, gaps
print("retry gaps after 21611 (ms):", gaps)
PY
[ "$(metric 'omnicast_throttled_total{connector="sms"}')" -ge 1 ] || fail "throttled metric: $(metric omnicast_throttled_total)"
ok "21611 answers slowed the connector; each of 8 recipients accepted exactly once (provider's count)"

[ "$(msg_field bulk sms:+15550000105 error)" = unreachable_number ] || fail "30005: $(rraw HGET omni:msg:bulk sms:+15550000105)"
[ "$(rraw SISMEMBER omni:suppress:sms +15550000105)" = 1 ] || fail "30005 must suppress"
[ "$(msg_field bulk sms:+15550000106 error)" = invalid_recipient ] || fail "21612: $(rraw HGET omni:msg:bulk sms:+15550000106)"
[ "$(rraw SISMEMBER omni:suppress:sms +15550000106)" = 0 ] || fail "21612 must not suppress"
ok "30005 → unreachable_number and suppressed; 21612 → invalid_recipient"

# 8 sent x 2 segments: Twilio's num_segments, and for +15550000107 (whose
# answer says 0) the connector's own count
[ "$(campaign_field bulk segments)" = 16 ] || fail "segments: $(campaign_field bulk segments)"
grep 'Messages.json' "$J" | q 'ValidityPeriod=600' || fail "no ValidityPeriod in the request"
cyr=$(python3 -c 'print("\u0416" * 900)')
enqueue "{\"type\":\"broadcast\",\"id\":\"cyr\",\"channel\":\"sms\",\"message\":{\"text\":\"$cyr\"},\"recipients\":[{\"to\":\"+15550000121\"}]}"
wait_for 30 campaign_done cyr
[ "$(campaign_field cyr sent)" = 1 ] || fail "900 Cyrillic characters: $(rraw HGET omni:msg:cyr sms:+15550000121)"
[ "$(campaign_field cyr segments)" = 14 ] || fail "cyr segments: $(campaign_field cyr segments)"
ok "segments summed on the campaign (16 for 8 x 200 GSM-7 characters, 14 for 900 UCS-2); ValidityPeriod sent"

# ---- inbound, signed as Twilio signs
# sign URL BODY: X-Twilio-Signature of a form body, parameters sorted by
# name then value (Twilio's SDKs)
sign() {
  python3 - "$1" "$2" <<'PY'
import base64, hashlib, hmac, sys, urllib.parse
url, body = sys.argv[1], sys.argv[2]
ps = sorted(urllib.parse.parse_qsl(body, keep_blank_values=True))
data = url + "".join(k + v for k, v in ps)
print(base64.b64encode(hmac.new(b"twtoken", data.encode(), hashlib.sha1).digest()).decode())
PY
}
# post SIGNED_URL BODY: the HTTP status
post() {
  curl -s -m 10 -o "$T/wbody" -w '%{http_code}' -H "X-Twilio-Signature: $(sign "$1" "$2")" \
    -H 'Content-Type: application/x-www-form-urlencoded' --data-binary "$2" "$B/webhooks/sms"
}
events() { rraw XRANGE omni:conversations - + | grep '^{' || true; }
U=https://omni.example.com/webhooks/sms
# Twilio may sign with the default port: accepted
stop='From=%2B15550000101&To=%2B15551230000&Body=ARRET&OptOutType=STOP&MessageSid=SMin1&AccountSid=AC1'
[ "$(post https://omni.example.com:443/webhooks/sms "$stop")" = 200 ] || fail "STOP post: $(cat "$T/wbody")"
[ "$(rraw SISMEMBER omni:suppress:sms +15550000101)" = 1 ] || fail "OptOutType=STOP did not suppress"
[ "$(campaign_field bulk opted_out)" = 1 ] || fail "opted_out: $(campaign_field bulk opted_out)"
[ "$(campaign_field bulk replied)" = 0 ] || fail "an Advanced Opt-Out STOP counted as a reply"
events | grep '"contact.opted_out"' | q '"via":"advanced_opt_out"' || fail "no contact.opted_out: $(events)"
! events | q '"message.received"' || fail "the STOP was stored as a message: $(events)"
ok "signed Body=ARRET&OptOutType=STOP (signed with :443): suppressed, opted_out counted, not a reply"

help='From=%2B15550000101&To=%2B15551230000&Body=AIDE&OptOutType=HELP&MessageSid=SMin2&AccountSid=AC1'
n0=$(events | wc -l)
[ "$(post "$U" "$help")" = 200 ] || fail "HELP post: $(cat "$T/wbody")"
[ "$(events | wc -l)" = "$n0" ] || fail "HELP stored something: $(events | tail -n 2)"
[ "$(campaign_field bulk replied)" = 0 ] || fail "HELP counted as a reply"
start='From=%2B15550000101&To=%2B15551230000&Body=REPRENDRE&OptOutType=START&MessageSid=SMin3&AccountSid=AC1'
[ "$(post "$U" "$start")" = 200 ] || fail "START post: $(cat "$T/wbody")"
[ "$(rraw SISMEMBER omni:suppress:sms +15550000101)" = 0 ] || fail "OptOutType=START did not unsuppress"
events | q '"contact.opted_in"' || fail "no contact.opted_in"
ok "OptOutType=HELP stores nothing; OptOutType=START unsuppresses"

revoke='From=%2B15550000102&To=%2B15551230000&Body=Revoke&MessageSid=SMin4&AccountSid=AC1'
[ "$(post "$U" "$revoke")" = 200 ] || fail "REVOKE post: $(cat "$T/wbody")"
[ "$(rraw SISMEMBER omni:suppress:sms +15550000102)" = 1 ] || fail "REVOKE is a default opt-out keyword"
ok "REVOKE (no OptOutType) opts out through the default keywords"

# repeated parameters are signed sorted by name then value; a bad signature stores nothing
rep='From=%2B15550000103&To=%2B15551230000&Body=hello&MessageSid=SMin5&NumMedia=2&MediaUrl0=https%3A%2F%2Fm.example%2Fb&MediaUrl1=https%3A%2F%2Fm.example%2Fa&Tag=b&Tag=a'
[ "$(post "$U" "$rep")" = 200 ] || fail "repeated parameters: $(cat "$T/wbody")"
events | grep '"message.received"' | q 'hello' || fail "the reply was not stored: $(events)"
code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -H 'X-Twilio-Signature: AAAAAAAAAAAAAAAAAAAAAAAAAAA=' \
  --data-binary 'From=%2B15550000104&Body=STOP&OptOutType=STOP' "$B/webhooks/sms")
[ "$code" = 403 ] || fail "a bad signature: $code"
[ "$(rraw SISMEMBER omni:suppress:sms +15550000104)" = 0 ] || fail "an unsigned STOP suppressed"
ok "repeated parameters verify; a bad signature is 403 and stores nothing"

# ---- 30034: the instance halts, nothing fails
enqueue '{"type":"broadcast","id":"halt","channel":"sms2","message":{"text":"hi"},"recipients":[{"to":"+15550000201"}]}'
wait_for 30 bash -c "curl -sf $B/metrics | grep -q '^omnicast_connector_halted{connector=\"sms2\"} 1'"
sleep 1
[ "$(campaign_field halt failed)" = 0 ] || fail "a halted recipient counted failed"
[ "$(msg_field halt sms2:+15550000201 error)" = halted ] || fail "halt record: $(rraw HGET omni:msg:halt sms2:+15550000201)"
rraw XRANGE omni:events - + | tr '\n' ' ' | q 'connector.halted connector sms2 .*reason unregistered_sender' ||
  fail "no connector.halted event: $(rraw XRANGE omni:events - + | tr '\n' ' ')"
[ "$(metric 'omnicast_connector_halted{connector="sms"}')" = 0 ] || fail "sms halted too"
ok "30034 halts the instance (unregistered_sender): no failure, the recipient waits"

# ---- status callbacks: ErrorCode kept as Twilio's number; 30034 (which
# Twilio reports after accepting the message) halts the instance too
sid3=$(msg_field bulk sms:+15550000103 provider_id)
sid4=$(msg_field bulk sms:+15550000104 provider_id)
[ -n "$sid3" ] && [ -n "$sid4" ] || fail "no provider ids"
st="MessageSid=$sid3&MessageStatus=undelivered&ErrorCode=30003&To=%2B15550000103&From=%2B15551230000"
[ "$(post "$U" "$st")" = 200 ] || fail "status post: $(cat "$T/wbody")"
[ "$(msg_field bulk sms:+15550000103 dlv)" = failed ] || fail "status: $(rraw HGET omni:msg:bulk sms:+15550000103)"
[ "$(msg_field bulk sms:+15550000103 dlv_error)" = 30003 ] || fail "ErrorCode: $(rraw HGET omni:msg:bulk sms:+15550000103)"
rraw HGET omni:msg:bulk sms:+15550000103 | q '"dlv_error":30003' || fail "ErrorCode not a number: $(rraw HGET omni:msg:bulk sms:+15550000103)"
[ "$(rraw SISMEMBER omni:suppress:sms +15550000103)" = 0 ] || fail "30003 (unreachable now) suppressed"
# 30005 (unknown handset) in a callback suppresses, as in a send answer
sid2=$(msg_field bulk sms:+15550000102 provider_id)
st="MessageSid=$sid2&MessageStatus=undelivered&ErrorCode=30005&To=%2B15550000102&From=%2B15551230000"
[ "$(post "$U" "$st")" = 200 ] || fail "status post: $(cat "$T/wbody")"
[ "$(rraw SISMEMBER omni:suppress:sms +15550000102)" = 1 ] || fail "a 30005 status callback did not suppress: $(rraw HGET omni:msg:bulk sms:+15550000102)"
[ "$(msg_field bulk sms:+15550000102 dlv_reason)" = failed:unreachable_number ] || fail "meaning not kept: $(rraw HGET omni:msg:bulk sms:+15550000102)"
[ "$(metric 'omnicast_connector_halted{connector="sms"}')" = 0 ] || fail "30003 halted sms"
st="MessageSid=$sid4&MessageStatus=failed&ErrorCode=30034&To=%2B15550000104&From=%2B15551230000"
[ "$(post "$U" "$st")" = 200 ] || fail "status post: $(cat "$T/wbody")"
wait_for 10 bash -c "curl -sf $B/metrics | grep -q '^omnicast_connector_halted{connector=\"sms\"} 1'"
rraw XRANGE omni:events - + | tr '\n' ' ' | q 'connector.halted connector sms .*reason unregistered_sender' ||
  fail "no connector.halted event for sms: $(rraw XRANGE omni:events - + | tr '\n' ' ')"
[ "$(msg_field bulk sms:+15550000104 dlv_error)" = 30034 ] || fail "30034 status not stored"
ok "status ErrorCode stored as Twilio's code (a number); a 30005 callback suppresses, 30003 does not; a 30034 status callback halts the instance"

stop_daemon
check_logs_clean
