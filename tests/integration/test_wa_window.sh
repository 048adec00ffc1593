#!/bin/bash
# WhatsApp's 24-hour customer service window (issue 18 point 2), against
# the mock provider: a contact who sent a signed inbound message gets a
# message job's text; one whose last_inbound is 25 h old gets its template;
# text only to a contact never heard from fails outside_window with no
# request to the provider (and moves on to sms when the job names it); a
# system notice opens no window; a whatsapp broadcast without a template is
# refused with the reason (API 400, the dead-letter stream, the CLI).
source "$(dirname "$0")/lib.sh"

start_redis
start_mock prov
HTTP_PORT=$(free_port)
printf 'tok-window-0123456789\n' >"$T/tokens"
chmod 0600 "$T/tokens"
daemon_conf "$T/omni.conf" "
http_listen = 127.0.0.1:$HTTP_PORT
api_tokens_file = $T/tokens

$(wa_section "$MOCK_PORT" "# session_window_s not given: the whatsapp connector's own default (86400) applies")

[connector.sms]
type = twilio
api_base = http://127.0.0.1:$MOCK_PORT
account_sid = AC1
auth_token = twtoken
from = +15551230000

[channels]
whatsapp = wa
sms = sms"
! grep -q '^session_window_s' "$T/omni.conf" || fail "the config sets session_window_s: $(grep session_window_s "$T/omni.conf")"
start_daemon "$T/omni.conf"
B="http://127.0.0.1:$HTTP_PORT"
wait_for 20 curl -sf "$B/readyz"
J="$T/prov.jsonl"

HEAD='{"object":"whatsapp_business_account","entry":[{"id":"W","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15551230000","phone_number_id":"1234567890"},'
TAIL='}}]}]}'
now_ms() { python3 -c 'import time; print(int(time.time()*1000))'; }
# the provider-side requests for one number: "TYPE" per /messages request
# (whatsapp), "sms" per Messages.json request (twilio)
seen_by_provider() { # DIGITS
  python3 - "$J" "$1" <<'PY'
import json, sys, urllib.parse
for line in open(sys.argv[1]):
    r = json.loads(line)
    b = r.get("body") or ""
    if r["path"].endswith("/messages"):
        m = json.loads(b)
        if m["to"] == sys.argv[2]:
            print(m["type"], json.dumps(m.get(m["type"]), sort_keys=True))
    elif r["path"].endswith("/Messages.json"):
        if urllib.parse.parse_qs(b)["To"][0] == "+" + sys.argv[2]:
            print("sms")
PY
}
BOTH='"message":{"text":"Hi {{name}}, your order shipped","template":{"name":"order_update","language":"en_US","params":["{{name}}"]}}'

# ---- a contact who wrote: the window is open, a message job sends the text
body=$(printf "$HEAD"'"contacts":[{"profile":{"name":"Ana"},"wa_id":"15550000101"}],"messages":[{"from":"15550000101","id":"wamid.IN101","timestamp":"%s","type":"text","text":{"body":"where is my order?"}}]'"$TAIL" "$(date +%s)")
t0=$(now_ms)
[ "$(post_wa "$body")" = 200 ] || fail "inbound post: $(cat "$T/wbody")"
li=$(rraw HGET omni:contact:whatsapp:+15550000101 last_inbound)
[ -n "$li" ] && [ "$li" -ge $((t0 - 1000)) ] && [ "$li" -le $(($(now_ms) + 1000)) ] ||
  fail "last_inbound after a signed inbound message: '$li' (posted at $t0)"
# (the template names {{tracking}}, which Ana lacks: inside the window it is
# not rendered, so it does not fail the text)
enqueue '{"type":"message","id":"in-window","channel":"whatsapp","message":{"text":"Hi {{name}}, your order shipped","template":{"name":"order_update","params":["{{name}}","{{tracking}}"]}},"to":"+15550000101","vars":{"name":"Ana"}}'
wait_for 30 campaign_done in-window
[ "$(msg_field in-window whatsapp:+15550000101 state)" = sent ] || fail "in window: $(rraw HGET omni:msg:in-window whatsapp:+15550000101)"
got=$(seen_by_provider 15550000101)
[ "$got" = 'text {"body": "Hi Ana, your order shipped", "preview_url": false}' ] || fail "in window the provider got: $got"
ok "a contact who sent a signed inbound message: last_inbound set, the message job's text reached the provider (not the template)"

# ---- last_inbound 25 h ago: the template
rraw HSET omni:contact:whatsapp:+15550000102 last_inbound $(($(now_ms) - 25 * 3600 * 1000)) >/dev/null
enqueue '{"type":"message","id":"out-window","channel":"whatsapp",'"$BOTH"',"to":"+15550000102","vars":{"name":"Bo"}}'
wait_for 30 campaign_done out-window
[ "$(msg_field out-window whatsapp:+15550000102 state)" = sent ] || fail "outside the window: $(rraw HGET omni:msg:out-window whatsapp:+15550000102)"
got=$(seen_by_provider 15550000102)
[ "$got" = 'template {"components": [{"parameters": [{"text": "Bo", "type": "text"}], "type": "body"}], "language": {"code": "en_US"}, "name": "order_update"}' ] ||
  fail "outside the window the provider got: $got"
ok "last_inbound 25 h ago: the message job's template reached the provider (not the text)"

# ---- text only, never heard from: failed outside_window, nothing sent
enqueue '{"type":"message","id":"text-only","channel":"whatsapp","message":{"text":"hello"},"to":"+15550000103"}'
wait_for 30 campaign_done text-only
[ "$(msg_field text-only whatsapp:+15550000103 state)" = failed ] || fail "text only: $(rraw HGET omni:msg:text-only whatsapp:+15550000103)"
[ "$(msg_field text-only whatsapp:+15550000103 error)" = outside_window ] || fail "text only reason: $(rraw HGET omni:msg:text-only whatsapp:+15550000103)"
[ "$(campaign_field text-only failed)" = 1 ] && [ "$(campaign_field text-only sent)" = 0 ] || fail "counters: $(rraw HGETALL omni:campaign:text-only | tr '\n' ' ')"
[ -z "$(seen_by_provider 15550000103)" ] || fail "the provider got a request for the contact outside the window: $(seen_by_provider 15550000103)"
ok "text only to a contact never heard from: failed outside_window, the provider received nothing for it"

# ---- text only, 25 h ago, on whatsapp then sms: the next channel is tried
rraw HSET omni:contact:whatsapp:+15550000104 last_inbound $(($(now_ms) - 25 * 3600 * 1000)) >/dev/null
enqueue '{"type":"message","id":"text-next","channels":["whatsapp","sms"],"message":{"text":"hello"},"to":"+15550000104"}'
wait_for 30 campaign_done text-next
[ "$(msg_field text-next whatsapp:+15550000104 error)" = outside_window ] || fail "whatsapp record: $(rraw HGET omni:msg:text-next whatsapp:+15550000104)"
[ "$(msg_field text-next sms:+15550000104 state)" = sent ] || fail "sms record: $(rraw HGET omni:msg:text-next sms:+15550000104)"
[ "$(seen_by_provider 15550000104)" = sms ] || fail "the provider got: $(seen_by_provider 15550000104)"
ok "outside_window is final on whatsapp only: the job's next channel (sms) sent it, whatsapp received nothing"

# ---- a system notice is not the contact writing: no window
body=$(printf "$HEAD"'"messages":[{"from":"15550000105","id":"wamid.SYS105","timestamp":"%s","type":"system","system":{"body":"User changed number","wa_id":"15550000106","type":"user_changed_number"}}]'"$TAIL" "$(date +%s)")
[ "$(post_wa "$body")" = 200 ] || fail "system post: $(cat "$T/wbody")"
[ -z "$(rraw HGET omni:contact:whatsapp:+15550000105 last_inbound)" ] || fail "a system notice set last_inbound"
# ... and text only inside the window (1 h ago) goes out as text
rraw HSET omni:contact:whatsapp:+15550000107 last_inbound $(($(now_ms) - 3600 * 1000)) >/dev/null
enqueue '{"type":"message","id":"text-in","channel":"whatsapp","message":{"text":"hello"},"to":"+15550000107"}'
wait_for 30 campaign_done text-in
[ "$(seen_by_provider 15550000107)" = 'text {"body": "hello", "preview_url": false}' ] || fail "text only inside the window: $(seen_by_provider 15550000107)"
ok "a system notice sets no last_inbound; text only inside the window (1 h ago) is sent as text"

# ---- a whatsapp broadcast without a template is refused with the reason
WHY='message.template: missing: a broadcast on channel whatsapp needs an approved template (free-form text only reaches contacts who wrote in the last 24 hours: the customer service window)'
code=$(curl -s -m 10 -o "$T/api" -w '%{http_code}' -H 'Authorization: Bearer tok-window-0123456789' \
  -d '{"type":"broadcast","id":"bc-api","channels":["sms","whatsapp"],"message":{"text":"sale"},"recipients":[{"to":"+15550000110"}]}' "$B/v1/broadcasts")
[ "$code" = 400 ] || fail "API: $code $(cat "$T/api")"
python3 - "$T/api" "$WHY" <<'PY' || fail "API body: $(cat "$T/api")"
import json, sys
b = json.load(open(sys.argv[1]))
assert b == {"error": {"code": "invalid_job", "message": sys.argv[2]}}, b
PY
[ -z "$(campaign_field bc-api state)" ] || fail "the refused broadcast became a campaign"
dead0=$(rraw XLEN omni:dead)
enqueue '{"type":"broadcast","id":"bc-queued","channel":"whatsapp","message":{"text":"sale"},"recipients":[{"to":"+15550000111"}]}'
wait_for 20 sh -c "[ \$(redis-cli -p $REDIS_PORT XLEN omni:dead) -gt $dead0 ]"
reason=$(rraw XREVRANGE omni:dead + - COUNT 1 | grep -A1 '^reason$' | sed -n 2p)
[ "$reason" = "$WHY" ] || fail "dead-letter reason: $reason"
[ -z "$(campaign_field bc-queued state)" ] || fail "the dead-lettered broadcast became a campaign"
printf '%s' '{"type":"broadcast","id":"bc-cli","channel":"whatsapp","message":{"text":"sale"},"recipients":[{"to":"+15550000112"}]}' >"$T/bc.json"
rc=0; "$OMNI_BUILD/omnicast" --config "$T/omni.conf" enqueue "$T/bc.json" 2>"$T/err" || rc=$?
[ $rc -eq 3 ] && q -F "invalid job: $WHY" "$T/err" || fail "CLI: exit $rc $(cat "$T/err")"
[ -z "$(seen_by_provider 15550000110)$(seen_by_provider 15550000111)$(seen_by_provider 15550000112)" ] || fail "a refused broadcast reached the provider"
ok "a whatsapp broadcast without a template: API 400 invalid_job, dead-lettered from omni:jobs, refused by the CLI, each with the reason"

# ---- with a template it goes: the template on whatsapp, the text on sms
enqueue '{"type":"broadcast","id":"bc-tpl","channels":["whatsapp","sms"],"message":{"text":"sale","template":{"name":"promo"}},"recipients":[{"to":"+15550000113"}]}'
wait_for 30 campaign_done bc-tpl
got=$(seen_by_provider 15550000113)
[ "$got" = 'template {"language": {"code": "en_US"}, "name": "promo"}' ] || fail "broadcast with a template: $got"
ok "a whatsapp broadcast with a template is accepted and sends the template"

stop_daemon
check_logs_clean
ok "test_wa_window"
