#!/bin/bash
# WhatsApp opt-outs, throttling and inbound detail against the mock provider
# (issue 18 points 3, 5, 8): a 131050 send answer fails the recipient
# opted_out, suppresses it and does not fall back to sms; a failed status
# with 131050, a user_preferences stop and an optout_payloads quick reply
# suppress (resume unsuppresses), each change published once on
# omni:conversations; a 131056 pair-rate answer delays only that recipient
# (the connector does not stall); rate_per_s is 80 when not set; a system
# notice is not a reply; a button's payload is kept.
source "$(dirname "$0")/lib.sh"

start_redis
start_mock prov --fail-plan "wa_code=131050:to=15550000002,wa_code=131056:to=15550000040:first=1"
HTTP_PORT=$(free_port)
RETRY_BASE_MS=100
daemon_conf "$T/omni.conf" "
http_listen = 127.0.0.1:$HTTP_PORT
$(wa_section "$MOCK_PORT" "optout_payloads = STOP_PROMO
# rate_per_s not given: the whatsapp connector's own default (80/s) applies")

[connector.sms]
type = twilio
api_base = http://127.0.0.1:$MOCK_PORT
account_sid = AC1
auth_token = twtoken
from = +15551230000

[channels]
whatsapp = wa
sms = sms"
# the pair-rate retry waits its ~6 s (lib.sh caps retries at 1 s)
sed -i 's/^retry_cap_ms = 1000$/retry_cap_ms = 20000/' "$T/omni.conf"
grep -q '^retry_cap_ms = 20000$' "$T/omni.conf" || fail "retry_cap_ms not raised"
start_daemon "$T/omni.conf"
B="http://127.0.0.1:$HTTP_PORT"
wait_for 20 curl -sf "$B/readyz"
J="$T/prov.jsonl"

grep -q 'connector wa: type whatsapp, rate 80/s' "$T/daemon.log" || fail "whatsapp rate_per_s default: $(grep 'connector wa' "$T/daemon.log")"
grep -q 'connector sms: type twilio, rate 0/s' "$T/daemon.log" || fail "twilio keeps the common default"
ok "rate_per_s: 80 for a whatsapp connector that does not set it, the common default elsewhere"

# ---- 131050 in the send answer: failed opted_out, suppressed, no fallback
enqueue '{"type":"broadcast","id":"oo","channels":["whatsapp","sms"],"message":{"text":"hi"},"recipients":[{"to":"+15550000001"},{"to":"+15550000002"},{"to":"+15550000003"}]}'
wait_for 30 campaign_done oo
[ "$(msg_field oo whatsapp:+15550000002 state)" = failed ] || fail "131050: $(rraw HGET omni:msg:oo whatsapp:+15550000002)"
[ "$(msg_field oo whatsapp:+15550000002 error)" = opted_out ] || fail "131050 reason: $(rraw HGET omni:msg:oo whatsapp:+15550000002)"
[ -z "$(rraw HGET omni:msg:oo sms:+15550000002)" ] || fail "131050 fell back to sms"
! grep -q '15550000002' <(grep Messages.json "$J") || fail "the sms provider saw the opted-out recipient"
[ "$(rraw SISMEMBER omni:suppress:whatsapp +15550000002)" = 1 ] || fail "131050 did not suppress"
[ "$(campaign_field oo sent)" = 2 ] && [ "$(campaign_field oo failed)" = 1 ] || fail "counters: $(rraw HGETALL omni:campaign:oo | tr '\n' ' ')"
ok "131050 send answer: failed opted_out, suppressed on whatsapp, no sms fallback"

HEAD=$WA_HEAD
TAIL=$WA_TAIL
events() { rraw XRANGE omni:conversations - + | grep '^{' ; }

# ---- a failed status with 131050 for a message that was sent
w1=$(msg_field oo whatsapp:+15550000001 provider_id)
[ -n "$w1" ] || fail "no provider id for +15550000001"
body=$(printf "$HEAD"'"statuses":[{"id":"%s","status":"failed","timestamp":"1700000000","recipient_id":"15550000001","errors":[{"code":131050,"title":"Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business"}]}]'"$TAIL" messages "$w1")
[ "$(post_wa "$body")" = 200 ] || fail "status post: $(cat "$T/wbody")"
[ "$(rraw SISMEMBER omni:suppress:whatsapp +15550000001)" = 1 ] || fail "a 131050 status did not suppress"
[ "$(campaign_field oo opted_out)" = 1 ] || fail "opted_out counter: $(campaign_field oo opted_out)"
events | grep '"contact.opted_out"' | q '"via":"status"' || fail "no contact.opted_out via status: $(events)"
ok "a failed status with 131050 suppresses, counts opted_out and publishes contact.opted_out"

# ---- user_preferences: stop, stop again (no change), resume, resume again
pref() { printf "$HEAD"'"contacts":[{"profile":{"name":"Cy"},"wa_id":"15550000003"}],"user_preferences":[{"wa_id":"15550000003","detail":"User requested to %s marketing messages","category":"marketing_messages","value":"%s","timestamp":%s}]'"$TAIL" user_preferences "$1" "$1" "$2"; }
[ "$(post_wa "$(pref stop 1731705721)")" = 200 ] || fail "user_preferences stop: $(cat "$T/wbody")"
[ "$(rraw SISMEMBER omni:suppress:whatsapp +15550000003)" = 1 ] || fail "user_preferences stop did not suppress"
[ "$(post_wa "$(pref stop 1731705722)")" = 200 ] || fail "second stop"
n=$(events | grep '"contact.opted_out"' | grep -c '"contact":"+15550000003"' || true)
[ "$n" = 1 ] || fail "stop published $n times"
events | grep '"contact.opted_out"' | grep '"contact":"+15550000003"' | q '"via":"user_preferences"' || fail "via: $(events)"
[ "$(campaign_field oo opted_out)" = 2 ] || fail "the stop was not attributed to the last campaign: $(campaign_field oo opted_out)"
[ "$(post_wa "$(pref resume 1731705723)")" = 200 ] || fail "resume"
[ "$(rraw SISMEMBER omni:suppress:whatsapp +15550000003)" = 0 ] || fail "resume did not unsuppress"
[ "$(post_wa "$(pref resume 1731705724)")" = 200 ] || fail "second resume"
n=$(events | grep '"contact.opted_in"' | grep -c '"contact":"+15550000003"' || true)
[ "$n" = 1 ] || fail "resume published $n times"
ok "user_preferences stop/resume: suppress/unsuppress, contact.opted_out/opted_in once each"

# ---- an optout_payloads quick reply, a plain button, a system notice
msg() { printf "$HEAD"'"contacts":[{"profile":{"name":"Di"},"wa_id":"%s"}],"messages":[%s]'"$TAIL" messages "$1" "$2"; }
body=$(msg 15550000005 '{"from":"15550000005","id":"wamid.IN5","timestamp":"1700000100","type":"button","button":{"payload":"STOP_PROMO","text":"Stop promotions"}}')
[ "$(post_wa "$body")" = 200 ] || fail "button post: $(cat "$T/wbody")"
[ "$(rraw SISMEMBER omni:suppress:whatsapp +15550000005)" = 1 ] || fail "the STOP_PROMO quick reply did not suppress"
events | grep '"message.received"' | grep '"contact":"+15550000005"' | q '"payload":"STOP_PROMO"' || fail "payload not on message.received: $(events)"
body=$(msg 15550000006 '{"from":"15550000006","id":"wamid.IN6","timestamp":"1700000101","type":"button","button":{"payload":"MORE_INFO","text":"More"}}')
[ "$(post_wa "$body")" = 200 ] || fail "second button post"
[ "$(rraw SISMEMBER omni:suppress:whatsapp +15550000006)" = 0 ] || fail "another payload suppressed"
conv6=$(rraw HGET omni:contact:whatsapp:+15550000006 open_conv)
[ -n "$conv6" ] || fail "no conversation for the button reply"
rraw XRANGE "omni:conv:$conv6:log" - + | q -x MORE_INFO || fail "payload not in the conversation log"
ok "an optout_payloads quick reply suppresses; a payload is kept on message.received and in the log"

convs=$(rraw ZCARD omni:conv:all)
body=$(printf "$HEAD"'"messages":[{"from":"15550000007","id":"wamid.SYS1","timestamp":"1700000102","type":"system","system":{"body":"User Ed changed from 15550000007 to 15550000008","wa_id":"15550000008","type":"user_changed_number"}}]'"$TAIL" messages)
[ "$(post_wa "$body")" = 200 ] || fail "system post: $(cat "$T/wbody")"
[ "$(rraw ZCARD omni:conv:all)" = "$convs" ] || fail "a system notice opened a conversation"
events | grep '"contact.system"' | q '"subtype":"user_changed_number"' || fail "no contact.system event: $(events)"
! events | grep '"message.received"' | q '"contact":"+15550000007"' || fail "a system notice published as a reply"
ok "a system notice is not a reply: no conversation, contact.system published"

# ---- value.errors (Meta's example: 131051 on an unsupported message): logged, counted per instance
werr() { curl -sf "$B/metrics" | grep "^omnicast_webhook_errors_total{connector=\"wa\"}" | awk '{print $2}'; }
[ "$(werr)" = 0 ] || fail "webhook errors before any: $(werr)"
body=$(printf "$HEAD"'"errors":[{"code":131051,"title":"Message type unknown","message":"Message type unknown","error_data":{"details":"Message type is currently not supported"}}]'"$TAIL" messages)
[ "$(post_wa "$body")" = 200 ] || fail "value.errors post: $(cat "$T/wbody")"
[ "$(werr)" = 1 ] || fail "value.errors not counted: $(werr)"
q "whatsapp webhook: error 131051: Message type unknown" "$T/daemon.log" || fail "value.errors not logged"
ok "value.errors: logged with the code and counted in omnicast_webhook_errors_total{connector=\"wa\"}"

# ---- 131056: only that recipient waits; the others go on at once
enqueue '{"type":"broadcast","id":"pr","channel":"whatsapp","message":{"text":"x"},"recipients":[{"to":"+15550000040"},{"to":"+15550000041"},{"to":"+15550000042"},{"to":"+15550000043"},{"to":"+15550000044"},{"to":"+15550000045"},{"to":"+15550000046"},{"to":"+15550000047"},{"to":"+15550000048"},{"to":"+15550000049"},{"to":"+15550000050"},{"to":"+15550000051"}]}'
wait_for 40 campaign_done pr
[ "$(msg_field pr whatsapp:+15550000040 state)" = sent ] || fail "pair-rate recipient not sent in the end: $(rraw HGET omni:msg:pr whatsapp:+15550000040)"
python3 - "$J" <<'PY' || fail "pair-rate timing"
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1])]
want = {"155500000%02d" % i for i in range(40, 52)}
sends = []
for r in rs:
    if r["path"].endswith("/messages"):
        to = json.loads(r["body"])["to"]
        if to in want:
            sends.append((r["ts_ms"], to, r["status"]))
first = [t for t, to, st in sends if to == "15550000040"]
others = [t for t, to, st in sends if to != "15550000040"]
assert len(first) == 2, sends
assert len(others) == 11, sends
gap = first[1] - first[0]
late = max(others) - first[0]
print("pair-rate retry after %d ms; the other 11 done %d ms after the first refusal" % (gap, late))
assert gap >= 5500, gap           # the recipient waited ~6 s
assert late < gap - 2000, (late, gap)  # the others did not wait for it
PY
ok "131056 delays only that recipient; the connector kept sending"

stop_daemon
check_logs_clean
ok "test_wa_optout"
