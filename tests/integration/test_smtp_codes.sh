#!/bin/bash
# SMTP replies read to the letter (issue 19 point 4): the enhanced status
# code (RFC 3463) in a real SMTP server's reply decides. A sender
# authentication failure (Gmail's "550 5.7.26 ... the sender is
# unauthenticated") halts the connector instead of failing every recipient
# (nothing fails, nothing more is sent until an operator resumes it, then
# each recipient arrives once); "421 4.7.28" (Gmail's rate limit) slows the
# connector and the message is retried; 5.1.1 is invalid_mailbox and suppressed. And the
# headers: an RFC 2047 display name and the Feedback-ID template.
source "$(dirname "$0")/lib.sh"

start_redis
printf '*550 5.7.26 This mail has been blocked because the sender is unauthenticated. Gmail requires all senders to authenticate with either SPF or DKIM.\n' >"$T/reply"
start_smtp smtp --data-reply-file "$T/reply" --reject-rcpt gone@example.com=550
HTTP_PORT=$(free_port)
daemon_conf "$T/omni.conf" "
http_listen = 127.0.0.1:$HTTP_PORT

[connector.mail]
type = smtp
url = smtp://127.0.0.1:$SMTP_PORT
tls = none
from = \"Café Acme\" <news@acme.example>
feedback_id = {{campaign}}:omnicast:acme
max_inflight = 1

[channels]
email = mail"
start_daemon "$T/omni.conf"
wait_for 20 curl -sf "http://127.0.0.1:$HTTP_PORT/readyz"
oc() { "$OMNI_BUILD/omnicast" --config "$T/omni.conf" "$@"; }
metric() { curl -sf "http://127.0.0.1:$HTTP_PORT/metrics" | grep "^$1{connector=\"mail\"}" | awk '{print $2}'; }
delivered() { ls "$T/smtp"/*.eml 2>/dev/null | wc -l; }

enqueue '{"type":"broadcast","id":"m1","channel":"email","message":{"subject":"Hi","text":"Hello {{name|there}}"},"recipients":[{"to":"ana@example.com"},{"to":"bob@example.com"},{"to":"cy@example.com"}]}'
wait_for 30 bash -c "[ \"\$(curl -sf http://127.0.0.1:$HTTP_PORT/metrics | grep '^omnicast_connector_halted{connector=\"mail\"}' | awk '{print \$2}')\" = 1 ]"
sleep 2 # anything the halt did not stop would show up here
[ "$(delivered)" = 0 ] || fail "messages accepted while the server refused the sender"
refused=$(wc -l <"$T/smtp/refused.log")
[ "$refused" -le 1 ] || fail "the server saw $refused DATA after the sender was refused (max_inflight = 1)"
f=$(campaign_field m1 failed)
[ -z "$f" ] || [ "$f" = 0 ] || fail "recipients failed instead of waiting: $f"
[ "$(campaign_field m1 state)" = running ] || fail "campaign state: $(campaign_field m1 state)"
rraw XRANGE omni:events - + | tr '\n' ' ' | q 'connector.halted connector mail .*reason sender_authentication' ||
  fail "no connector.halted event: $(rraw XRANGE omni:events - + | tr '\n' ' ')"
ok "550 5.7.26 halted the connector: one refused DATA, no recipient failed, the campaign waits"

# the operator fixed DKIM: the server takes mail again, one 4.7.28 first
printf '421 4.7.28 Our system has detected an unusual rate of unsolicited mail originating from your IP address.\n' >"$T/reply"
oc connector resume mail | q 'resume requested' || fail "connector resume"
wait_for 60 campaign_done m1
[ "$(delivered)" = 3 ] || fail "$(delivered) messages arrived, want 3"
python3 - "$T/smtp" <<'PY' || fail "what arrived"
import email, email.policy, glob, json, sys
tos = []
for f in sorted(glob.glob(sys.argv[1] + "/*.eml")):
    raw = open(f, "rb").read()
    m = email.message_from_bytes(raw, policy=email.policy.default)
    assert b"From: =?UTF-8?B?Q2Fmw6kgQWNtZQ==?= <news@acme.example>\r\n" in raw, raw[:400]
    assert str(m["From"]) == "Café Acme <news@acme.example>", m["From"]
    assert m["Feedback-ID"] == "m1:omnicast:acme", m["Feedback-ID"]
    tos.append(m["To"])
assert sorted(tos) == ["ana@example.com", "bob@example.com", "cy@example.com"], tos
PY
[ "$(metric omnicast_throttled_total)" -ge 1 ] || fail "4.7.28 did not slow the connector: $(metric omnicast_throttled_total)"
[ "$(grep -c ' 421$' "$T/smtp/refused.log")" = 1 ] || fail "refusals: $(cat "$T/smtp/refused.log")"
[ "$(campaign_field m1 sent)" = 3 ] || fail "sent: $(campaign_field m1 sent)"
ok "after the resume: 421 4.7.28 slowed the connector and was retried; each recipient arrived once, From as RFC 2047 words, Feedback-ID rendered"

enqueue '{"type":"broadcast","id":"m2","channel":"email","message":{"subject":"Hi","text":"x"},"recipients":[{"to":"gone@example.com"}]}'
wait_for 30 campaign_done m2
[ "$(msg_field m2 email:gone@example.com error)" = invalid_mailbox ] || fail "5.1.1: $(rraw HGET omni:msg:m2 email:gone@example.com)"
[ "$(rraw SISMEMBER omni:suppress:email gone@example.com)" = 1 ] || fail "5.1.1 did not suppress the address"
[ "$(metric omnicast_connector_halted)" = 0 ] || fail "a recipient's 5.1.1 halted the connector"
enqueue '{"type":"broadcast","id":"m3","channel":"email","message":{"subject":"Hi","text":"x"},"recipients":[{"to":"gone@example.com"}]}'
wait_for 30 campaign_done m3
[ "$(campaign_field m3 suppressed)" = 1 ] || fail "the next campaign did not skip the bounced address: $(rraw HGETALL omni:campaign:m3 | tr '\n' ' ')"
ok "550 5.1.1 → invalid_mailbox and suppressed (the next campaign skips it), the connector keeps going"

stop_daemon
check_logs_clean
