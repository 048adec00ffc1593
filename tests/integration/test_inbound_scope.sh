#!/bin/bash
# Inbound events are scoped to the connector that sent the message (issue
# 16 point 5): the provider-id index keeps the sending connector instance
# ("k"), and a status, an unsubscribe or a quoted reply coming in on another
# connector's webhook is treated as an unknown id (200, nothing moved),
# while the same status on the right connector counts. An index entry
# without "k" (written before) still matches. Also: a generic webhook
# connector without signing_secret refuses inbound (403) unless
# inbound_unsigned = true.
source "$(dirname "$0")/lib.sh"

start_redis
start_mock prov
HTTP_PORT=$(free_port)
SMTP_DEAD_PORT=$(free_port)
daemon_conf "$T/omni.conf" "
http_listen = 127.0.0.1:$HTTP_PORT
$(wa_section "$MOCK_PORT")

[connector.hook]
type = webhook
url = http://127.0.0.1:$MOCK_PORT/hook
signing_secret = hooksecret

[connector.open]
type = webhook
url = http://127.0.0.1:$MOCK_PORT/open
inbound_unsigned = true

[connector.closed]
type = webhook
url = http://127.0.0.1:$MOCK_PORT/closed

[connector.mail]
type = smtp
url = smtp://127.0.0.1:$SMTP_DEAD_PORT
from = news@example.com

[channels]
whatsapp = wa
hook = hook
open = open
closed = closed
email = mail"
start_daemon "$T/omni.conf"
B="http://127.0.0.1:$HTTP_PORT"
wait_for 20 curl -sf "$B/readyz"

enqueue '{"type":"broadcast","id":"sc","channel":"whatsapp","message":{"text":"hi"},"recipients":[{"to":"+15550000001"},{"to":"+15550000002"},{"to":"+15550000003"}]}'
wait_for 30 campaign_done sc
w1=$(msg_field sc whatsapp:+15550000001 provider_id)
w2=$(msg_field sc whatsapp:+15550000002 provider_id)
w3=$(msg_field sc whatsapp:+15550000003 provider_id)
[ -n "$w1" ] && [ -n "$w2" ] && [ -n "$w3" ] || fail "no provider ids recorded"
rraw GET "omni:pmid:$w1" | python3 -c 'import json,sys; v = json.load(sys.stdin); assert v == {"c":"sc","ch":"whatsapp","k":"wa","a":"+15550000001"}, v' ||
  fail "the pmid value lacks the sending connector: $(rraw GET "omni:pmid:$w1")"
ok "the provider-id index keeps the connector that sent the message (\"k\":\"wa\")"

sign() { # SECRET: sha256=HEX of stdin
  python3 -c 'import hmac,hashlib,sys; print("sha256="+hmac.new(sys.argv[1].encode(), sys.stdin.buffer.read(), hashlib.sha256).hexdigest())' "$1"
}
post_hook() { # BODY: signed, to the generic webhook connector "hook"
  curl -s -m 10 -o "$T/hbody" -w '%{http_code}' -H "Content-Type: application/json" \
    -H "X-Omnicast-Signature: $(printf '%s' "$1" | sign hooksecret)" --data-binary "$1" "$B/webhooks/hook"
}
post_wa() { # BODY: signed, to the whatsapp connector "wa"
  curl -s -m 10 -o "$T/wbody" -w '%{http_code}' -H "Content-Type: application/json" \
    -H "X-Hub-Signature-256: $(printf '%s' "$1" | sign appsecret)" --data-binary "$1" "$B/webhooks/wa"
}
wa_status() { # WAMID STATE RECIPIENT
  printf '{"object":"whatsapp_business_account","entry":[{"id":"W","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15551230000","phone_number_id":"1234567890"},"statuses":[{"id":"%s","status":"%s","timestamp":"1700000000","recipient_id":"%s"}]}}]}]}' "$1" "$2" "$3"
}
hook_status() { printf '{"status":{"id":"%s","state":"%s"}}' "$1" "$2"; }

# ---- item 1 end to end: unsigned inbound on the generic webhook connector
code=$(curl -s -m 10 -o "$T/cbody" -w '%{http_code}' --data-binary "$(hook_status "$w1" delivered)" "$B/webhooks/closed")
[ "$code" = 403 ] && q unsigned_inbound_refused "$T/cbody" || fail "unsigned post without signing_secret: $code $(cat "$T/cbody")"
code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' --data-binary "$(hook_status "$w1" delivered)" "$B/webhooks/hook")
[ "$code" = 401 ] || fail "unsigned post to a signed webhook connector: $code"
code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' --data-binary "$(hook_status nosuch-id delivered)" "$B/webhooks/open")
[ "$code" = 200 ] || fail "unsigned post with inbound_unsigned = true: $code"
ok "webhook connector: unsigned inbound 403 unsigned_inbound_refused without signing_secret, 200 with inbound_unsigned = true"

# ---- statuses for a whatsapp message posted on other connectors' webhooks
for st in delivered read; do
  [ "$(post_hook "$(hook_status "$w1" $st)")" = 200 ] || fail "status on the wrong connector: $(cat "$T/hbody")"
  code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' --data-binary "$(hook_status "$w2" $st)" "$B/webhooks/open")
  [ "$code" = 200 ] || fail "status on the unsigned connector: $code"
done
sleep 0.5
[ "$(campaign_field sc delivered)" = 0 ] && [ "$(campaign_field sc read)" = 0 ] ||
  fail "another connector's statuses moved the counters: delivered $(campaign_field sc delivered) read $(campaign_field sc read)"
[ -z "$(msg_field sc whatsapp:+15550000001 dlv)" ] && [ -z "$(msg_field sc whatsapp:+15550000002 dlv)" ] ||
  fail "another connector's status moved a record"
ok "statuses for a whatsapp message on the generic webhooks: 200, counters and records unchanged"

# ---- a one-click unsubscribe on the email connector with a whatsapp id
code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' --data-binary "List-Unsubscribe=One-Click" "$B/webhooks/mail?t=$w3")
[ "$code" = 200 ] || fail "unsubscribe: $code"
sleep 0.5
[ "$(rraw SISMEMBER omni:suppress:whatsapp +15550000003)" = 0 ] || fail "an email unsubscribe suppressed a whatsapp recipient"
[ "$(campaign_field sc opted_out)" = "" ] || [ "$(campaign_field sc opted_out)" = 0 ] || fail "opted_out counted"
ok "an email one-click unsubscribe with a whatsapp message id: nothing suppressed"

# ---- a reply on the generic webhook quoting the whatsapp message
R='{"from":"+15550000001","text":"hello","id":"in-h1","in_reply_to":"'"$w1"'"}'
[ "$(post_hook "$R")" = 200 ] || fail "reply on the wrong connector: $(cat "$T/hbody")"
wait_for 10 sh -c "[ -n \"\$(redis-cli -p $REDIS_PORT --raw HGET omni:contact:hook:+15550000001 open_conv)\" ]"
conv=$(rraw HGET omni:contact:hook:+15550000001 open_conv)
[ -z "$(rraw HGET "omni:conv:$conv" campaign)" ] || fail "the reply was attributed to $(rraw HGET "omni:conv:$conv" campaign)"
[ "$(campaign_field sc replied)" = "" ] || [ "$(campaign_field sc replied)" = 0 ] || fail "replied counted"
ok "a reply on the generic webhook quoting a whatsapp message is not attributed to its campaign"

# ---- the same statuses on the connector that sent the message count
[ "$(post_wa "$(wa_status "$w1" delivered 15550000001)")" = 200 ] || fail "status on wa"
[ "$(post_wa "$(wa_status "$w2" read 15550000002)")" = 200 ] || fail "status on wa"
wait_for 10 sh -c "[ \"\$(redis-cli -p $REDIS_PORT --raw HGET omni:campaign:sc read)\" = 1 ]"
sleep 0.3
[ "$(campaign_field sc delivered)" = 2 ] || fail "delivered should be 2: $(campaign_field sc delivered)"
[ "$(msg_field sc whatsapp:+15550000001 dlv)" = delivered ] && [ "$(msg_field sc whatsapp:+15550000002 dlv)" = read ] ||
  fail "records not moved by the right connector"
ok "the same statuses on the whatsapp webhook: delivered 2, read 1"

# ---- an index entry written before "k" existed matches any connector
rraw SET omni:pmid:legacy-3 '{"c":"sc","ch":"whatsapp","a":"+15550000003"}' >/dev/null
[ "$(post_hook "$(hook_status legacy-3 delivered)")" = 200 ] || fail "status for a legacy entry"
wait_for 10 sh -c "[ \"\$(redis-cli -p $REDIS_PORT --raw HGET omni:campaign:sc delivered)\" = 3 ]"
ok "a provider-id entry without \"k\" still matches as before"

check_logs_clean
stop_daemon
