#!/bin/bash
# Contact-level opt-out (issue 20 point 3): with optout_scope = contact, a
# recipient's contact_id links its addresses; a STOP on SMS suppresses the
# contact's WhatsApp address in the next broadcast (the provider gets no
# request for it), a 131050 send answer on WhatsApp suppresses the
# contact's SMS address, START lifts it again; with optout_scope = channel
# the other channel is still sent to. Counted at the mock provider.
source "$(dirname "$0")/lib.sh"

start_redis
start_mock prov --fail-plan "wa_code=131050:to=15550000302"
HTTP_PORT=$(free_port)
conf() { # SCOPE
  daemon_conf "$T/omni-$1.conf" "
http_listen = 127.0.0.1:$HTTP_PORT
optout_scope = $1
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
}
conf contact
conf channel
B="http://127.0.0.1:$HTTP_PORT"
J="$T/prov.jsonl"
start_daemon "$T/omni-contact.conf"
wait_for 20 curl -sf "$B/readyz"

# requests the mock provider got for an address (digits only), per channel
wa_reqs() { grep '/messages' "$J" 2>/dev/null | grep -c "$1" || true; }
sms_reqs() { grep 'Messages.json' "$J" 2>/dev/null | grep -c "$1" || true; }
sms_sig() { python3 - "$1" <<'PY'
import base64, hashlib, hmac, sys, urllib.parse
params = urllib.parse.parse_qsl(sys.argv[1], keep_blank_values=True)
data = "https://omni.example.com/webhooks/sms" + "".join(k + v for k, v in sorted(params))
print(base64.b64encode(hmac.new(b"twtoken", data.encode(), hashlib.sha1).digest()).decode())
PY
}
sms_in() { # FROM_DIGITS SID TEXT
  local body="From=%2B$1&To=%2B15551230000&Body=$3&MessageSid=$2&NumMedia=0"
  curl -s -o /dev/null -w '%{http_code}' -H "X-Twilio-Signature: $(sms_sig "$body")" --data "$body" "$B/webhooks/sms"
}
events() { rraw XRANGE omni:conversations - + | grep '^{' || true; }
# one contact per person: crm-1 (sms ...101, whatsapp ...201), crm-2 (sms
# ...102, whatsapp ...202), crm-3 (whatsapp ...302 opted out there, sms ...303)
# and a recipient without contact_id (whatsapp ...203)

# ---- a first SMS campaign links crm-1 and crm-2 to their SMS numbers
enqueue '{"type":"broadcast","id":"s1","channel":"sms","message":{"text":"hi"},"recipients":[{"to":"+15550000101","contact_id":"crm-1"},{"to":"+15550000102","contact_id":"crm-2"}]}'
wait_for 30 campaign_done s1
[ "$(campaign_field s1 sent)" = 2 ] || fail "s1 sent $(campaign_field s1 sent)"
[ "$(rraw HGET omni:contact_ids:sms +15550000101)" = crm-1 ] && [ "$(rraw HGET omni:contact_ids:sms +15550000102)" = crm-2 ] || fail "no address -> contact link: $(rraw HGETALL omni:contact_ids:sms | tr '\n' ' ')"
ok "a send to a recipient with contact_id links its address to the contact"

# ---- STOP on SMS: the contact is suppressed, published with its contact_id
[ "$(sms_in 15550000101 SMstop1 STOP)" = 200 ] || fail "twilio STOP"
wait_for 10 sh -c "[ \$(redis-cli -p $REDIS_PORT --raw SISMEMBER omni:suppress_contacts crm-1) = 1 ]"
[ "$(rraw SISMEMBER omni:suppress:sms +15550000101)" = 1 ] || fail "the STOP did not suppress on sms"
events | grep '"contact.opted_out"' | q '"contact_id":"crm-1"' || fail "contact.opted_out without contact_id: $(events)"
[ "$(campaign_field s1 opted_out)" = 1 ] || fail "s1 opted_out $(campaign_field s1 opted_out)"
ok "STOP on sms suppresses contact crm-1 (omni:suppress_contacts), contact.opted_out carries contact_id"

# ---- the next WhatsApp broadcast skips crm-1's whatsapp address
enqueue '{"type":"broadcast","id":"w1","channel":"whatsapp","message":{"text":"sale"},"recipients":[{"to":"+15550000201","contact_id":"crm-1"},{"to":"+15550000202","contact_id":"crm-2"},{"to":"+15550000203"}]}'
wait_for 30 campaign_done w1
[ "$(wa_reqs 15550000201)" = 0 ] || fail "the provider got $(wa_reqs 15550000201) whatsapp requests for the opted-out contact"
[ "$(wa_reqs 15550000202)" = 1 ] && [ "$(wa_reqs 15550000203)" = 1 ] || fail "the others: $(wa_reqs 15550000202) $(wa_reqs 15550000203)"
[ "$(campaign_field w1 suppressed)" = 1 ] && [ "$(campaign_field w1 sent)" = 2 ] || fail "w1 counters: $(rraw HGETALL omni:campaign:w1 | tr '\n' ' ')"
[ "$(msg_field w1 whatsapp:+15550000201 state)" = suppressed ] && [ "$(msg_field w1 whatsapp:+15550000201 reason)" = opted_out ] || fail "record: $(rraw HGET omni:msg:w1 whatsapp:+15550000201)"
[ "$(msg_field w1 whatsapp:+15550000201 contact_id)" = crm-1 ] || fail "record without contact_id"
counters_add_up w1 || fail "w1 counters do not add up"
ok "scope contact: the next whatsapp broadcast suppresses crm-1 (0 requests at the provider, suppressed 1, reason opted_out)"

# ---- a 131050 send answer on WhatsApp reaches the contact's SMS address
enqueue '{"type":"broadcast","id":"w2","channel":"whatsapp","message":{"text":"hi"},"recipients":[{"to":"+15550000302","contact_id":"crm-3"}]}'
wait_for 30 campaign_done w2
[ "$(msg_field w2 whatsapp:+15550000302 error)" = opted_out ] || fail "131050: $(rraw HGET omni:msg:w2 whatsapp:+15550000302)"
[ "$(rraw SISMEMBER omni:suppress_contacts crm-3)" = 1 ] || fail "131050 did not suppress the contact"
enqueue '{"type":"broadcast","id":"s2","channel":"sms","message":{"text":"hi"},"recipients":[{"to":"+15550000303","contact_id":"crm-3"},{"to":"+15550000102","contact_id":"crm-2"}]}'
wait_for 30 campaign_done s2
[ "$(sms_reqs 15550000303)" = 0 ] || fail "the sms provider got the contact that opted out on whatsapp"
[ "$(sms_reqs 15550000102)" = 2 ] || fail "crm-2's sms: $(sms_reqs 15550000102)"
[ "$(campaign_field s2 suppressed)" = 1 ] || fail "s2 suppressed $(campaign_field s2 suppressed)"
ok "a 131050 send answer on whatsapp suppresses crm-3 on sms too"

# ---- scope channel: the same broadcast goes to crm-1's whatsapp address
stop_daemon
start_daemon "$T/omni-channel.conf" daemon2
wait_for 20 curl -sf "$B/readyz"
enqueue '{"type":"broadcast","id":"w3","channel":"whatsapp","message":{"text":"sale"},"recipients":[{"to":"+15550000201","contact_id":"crm-1"},{"to":"+15550000202","contact_id":"crm-2"}]}'
wait_for 30 campaign_done w3
[ "$(wa_reqs 15550000201)" = 1 ] || fail "scope channel: crm-1's whatsapp got $(wa_reqs 15550000201) requests"
[ "$(campaign_field w3 suppressed)" = 0 ] && [ "$(campaign_field w3 sent)" = 2 ] || fail "w3: $(rraw HGETALL omni:campaign:w3 | tr '\n' ' ')"
enqueue '{"type":"broadcast","id":"s3","channel":"sms","message":{"text":"hi"},"recipients":[{"to":"+15550000101","contact_id":"crm-1"}]}'
wait_for 30 campaign_done s3
[ "$(campaign_field s3 suppressed)" = 1 ] && [ "$(sms_reqs 15550000101)" = 1 ] || fail "scope channel: the sms opt-out itself must hold"
ok "scope channel: an opt-out stays on its channel (crm-1's whatsapp sent, its sms still suppressed)"
stop_daemon

# ---- back to scope contact: START on SMS lifts the contact's suppression
start_daemon "$T/omni-contact.conf" daemon3
wait_for 20 curl -sf "$B/readyz"
[ "$(sms_in 15550000101 SMstart1 START)" = 200 ] || fail "twilio START"
wait_for 10 sh -c "[ \$(redis-cli -p $REDIS_PORT --raw SISMEMBER omni:suppress_contacts crm-1) = 0 ]"
[ "$(rraw SISMEMBER omni:suppress:sms +15550000101)" = 0 ] || fail "START did not unsuppress sms"
events | grep '"contact.opted_in"' | q '"contact_id":"crm-1"' || fail "contact.opted_in without contact_id"
enqueue '{"type":"broadcast","id":"w4","channel":"whatsapp","message":{"text":"back"},"recipients":[{"to":"+15550000201","contact_id":"crm-1"}]}'
wait_for 30 campaign_done w4
[ "$(wa_reqs 15550000201)" = 2 ] && [ "$(campaign_field w4 sent)" = 1 ] || fail "after START: $(wa_reqs 15550000201) requests, $(rraw HGETALL omni:campaign:w4 | tr '\n' ' ')"
ok "START on sms lifts crm-1's contact-level suppression: its whatsapp address is sent again"

# ---- by hand: omnicast suppress of a linked address reaches its contact
oc() { "$OMNI_BUILD/omnicast" --config "$T/omni-contact.conf" "$@"; }
oc suppress add whatsapp +15550000202 >"$T/sup.txt"
q 'add contact crm-2 to omni:suppress_contacts' "$T/sup.txt" || fail "suppress add: $(cat "$T/sup.txt")"
[ "$(rraw SISMEMBER omni:suppress_contacts crm-2)" = 1 ] || fail "omnicast suppress add did not reach the contact"
enqueue '{"type":"broadcast","id":"s4","channel":"sms","message":{"text":"hi"},"recipients":[{"to":"+15550000102","contact_id":"crm-2"}]}'
wait_for 30 campaign_done s4
[ "$(campaign_field s4 suppressed)" = 1 ] && [ "$(sms_reqs 15550000102)" = 2 ] || fail "s4: $(rraw HGETALL omni:campaign:s4 | tr '\n' ' ')"
oc suppress remove whatsapp +15550000202 >/dev/null
[ "$(rraw SISMEMBER omni:suppress_contacts crm-2)" = 0 ] || fail "omnicast suppress remove did not free the contact"
ok "omnicast suppress add/remove of a linked address suppresses/frees its contact on every channel"

# ---- a WhatsApp user_preferences stop / resume (not a message) reaches the contact
pref() { printf "$WA_HEAD"'"contacts":[{"profile":{"name":"Bo"},"wa_id":"15550000202"}],"user_preferences":[{"wa_id":"15550000202","detail":"User requested to %s marketing messages","category":"marketing_messages","value":"%s","timestamp":%s}]'"$WA_TAIL" user_preferences "$1" "$1" "$2"; }
[ "$(post_wa "$(pref stop 1731705721)")" = 200 ] || fail "user_preferences stop: $(cat "$T/wbody")"
[ "$(rraw SISMEMBER omni:suppress_contacts crm-2)" = 1 ] || fail "a user_preferences stop did not reach crm-2"
events | grep '"contact.opted_out"' | grep '"via":"user_preferences"' | q '"contact_id":"crm-2"' || fail "no contact.opted_out for crm-2"
[ "$(post_wa "$(pref resume 1731705722)")" = 200 ] || fail "user_preferences resume"
[ "$(rraw SISMEMBER omni:suppress_contacts crm-2)" = 0 ] || fail "a user_preferences resume did not free crm-2"
ok "a whatsapp user_preferences stop suppresses crm-2, resume frees it"
stop_daemon
check_logs_clean
