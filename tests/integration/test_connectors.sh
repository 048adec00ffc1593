#!/bin/bash
# Every connector end to end against a local peer speaking the provider's
# wire format, checked on the provider side: WhatsApp (text and template),
# Twilio, the generic webhook (signed), SMTP into a real SMTP server; and
# the failure paths: 500 then 200, permanent 400s, refused connections and
# timeouts.
source "$(dirname "$0")/lib.sh"

start_redis
start_mock prov --fail-plan "status=500:to=15550000010:first=1,wa_code=131026:to=15550000011,hang:to=15550000012,twilio_code=21610:to=+15550000013,twilio_code=21211:to=+15550000014"
start_smtp smtp --reject-rcpt nobody@example.com=550
dead_port=$(free_port)
MAX=${MAX_ATTEMPTS:-3}
daemon_conf "$T/omni.conf" "
max_attempts = 3
$(wa_section "$MOCK_PORT" "timeout_ms = 500")

[connector.sms]
type = twilio
api_base = http://127.0.0.1:$MOCK_PORT
account_sid = AC0123
auth_token = tok3n
from = +15551230000

[connector.hook]
type = webhook
url = http://127.0.0.1:$MOCK_PORT/hook
signing_secret = whsec
header = X-Api-Key: k1

[connector.mail]
type = smtp
url = smtp://127.0.0.1:$SMTP_PORT
tls = none
from = Acme News <news@acme.example>
unsubscribe_url = https://acme.example/u?t={{token}}

[connector.down]
type = webhook
url = http://127.0.0.1:$dead_port/nothing-listens
connect_timeout_ms = 300

[channels]
whatsapp = wa
sms = sms
hook = hook
email = mail
down = down"
start_daemon "$T/omni.conf"

enqueue '{"type":"broadcast","id":"wa-text","channel":"whatsapp","message":{"text":"Hi {{name}}, \"30%\" off"},"recipients":[{"to":"+15550000001","vars":{"name":"Ana"}},{"to":"+15550000010"},{"to":"+15550000011"},{"to":"+15550000012"}],"defaults":{"name":"friend"}}'
enqueue '{"type":"broadcast","id":"wa-tpl","channel":"whatsapp","message":{"template":{"name":"bf_promo","language":"pt_BR","params":["{{name}}"]}},"recipients":[{"to":"+15550000002","vars":{"name":"Bia"}}]}'
# a marketing template with an image header, a named body parameter,
# currency and a quick-reply button (the Cloud API's documented shapes),
# a document message and an MMS
enqueue '{"type":"broadcast","id":"wa-rich","channel":"whatsapp","message":{"template":{"name":"spring_sale","language":"en_US","components":[{"type":"header","parameters":[{"type":"image","image":{"link":"https://cdn.example.com/{{sku}}.png"}}]},{"type":"body","parameters":[{"type":"text","parameter_name":"first_name","text":"{{name}}"},{"type":"currency","currency":{"fallback_value":"$100.99","code":"USD","amount_1000":100990}}]},{"type":"button","sub_type":"quick_reply","index":"0","parameters":[{"type":"payload","payload":"more-{{sku}}"}]}]}},"recipients":[{"to":"+15550000004","vars":{"name":"Dani \"D\"","sku":"A1"}}]}'
enqueue '{"type":"broadcast","id":"wa-doc","channel":"whatsapp","message":{"media":{"type":"document","url":"https://files.example.com/{{n}}.pdf","filename":"invoice-{{n}}.pdf"},"text":"Invoice {{n}}"},"recipients":[{"to":"+15550000005","vars":{"n":"77"}}]}'
enqueue '{"type":"broadcast","id":"sms-mms","channel":"sms","message":{"media":{"type":"image","url":"https://cdn.example.com/p.png"},"text":"Look"},"recipients":[{"to":"+15550000006"}]}'
enqueue '{"type":"broadcast","id":"mail-media","channel":"email","message":{"media":{"type":"image","url":"https://cdn.example.com/p.png"},"text":"x"},"recipients":[{"to":"ana@example.com"}]}'
enqueue '{"type":"broadcast","id":"sms1","channel":"sms","message":{"text":"Oi {{name|amigo}} & cia"},"recipients":[{"to":"+15550000003","vars":{"name":"Caio"}},{"to":"+15550000013"},{"to":"+15550000014"}]}'
enqueue '{"type":"broadcast","id":"hook1","channel":"hook","message":{"text":"ping"},"recipients":[{"to":"user-42"}]}'
enqueue '{"type":"broadcast","id":"mail1","channel":"email","message":{"subject":"Promoção já","text":"Olá {{name}}","html":"<p>Olá {{name}}</p>{{{footer}}}"},"recipients":[{"to":"ana@example.com","vars":{"name":"Ana <b>& Co</b>","footer":"<p><a href=\"https://acme.example/p\">prefs</a></p>"}},{"to":"nobody@example.com","vars":{"name":"X","footer":""}}]}'
enqueue '{"type":"broadcast","id":"down1","channel":"down","message":{"text":"x"},"recipients":[{"to":"u1"}]}'
for c in wa-text wa-tpl wa-rich wa-doc sms-mms sms1 hook1 mail1 down1; do wait_for 90 campaign_done "$c"; done
# media on an email channel is refused at intake, with its reason
wait_for 30 bash -c "redis-cli -p $REDIS_PORT XRANGE omni:dead - + | grep -q 'channel email is email, which takes no media'"
[ "$(rraw EXISTS omni:campaign:mail-media)" = 0 ] || fail "a job with media on email was accepted"

J="$T/prov.jsonl"
py() { python3 - "$J" "$@"; }
py <<'PY'
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1])]
wa = [r for r in reqs if r["path"] == "/v21.0/1234567890/messages"]
ana = [json.loads(r["body"]) for r in wa if json.loads(r["body"])["to"] == "15550000001"]
assert ana == [{"messaging_product": "whatsapp", "recipient_type": "individual", "to": "15550000001",
                "type": "text", "text": {"preview_url": False, "body": "Hi Ana, \"30%\" off"}}], ana
assert all(r["headers"]["authorization"] == "Bearer testtoken" for r in wa)
tpl = [json.loads(r["body"]) for r in wa if json.loads(r["body"])["to"] == "15550000002"][0]
assert tpl["template"] == {"name": "bf_promo", "language": {"code": "pt_BR"},
    "components": [{"type": "body", "parameters": [{"type": "text", "text": "Bia"}]}]}, tpl
rich = [json.loads(r["body"]) for r in wa if json.loads(r["body"])["to"] == "15550000004"]
assert len(rich) == 1, rich
assert rich[0]["type"] == "template", rich
assert rich[0]["template"] == {"name": "spring_sale", "language": {"code": "en_US"}, "components": [
    {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://cdn.example.com/A1.png"}}]},
    {"type": "body", "parameters": [{"type": "text", "parameter_name": "first_name", "text": "Dani \"D\""},
        {"type": "currency", "currency": {"fallback_value": "$100.99", "code": "USD", "amount_1000": 100990}}]},
    {"type": "button", "sub_type": "quick_reply", "index": "0", "parameters": [{"type": "payload", "payload": "more-A1"}]}]}, rich
doc = [json.loads(r["body"]) for r in wa if json.loads(r["body"])["to"] == "15550000005"]
assert doc == [{"messaging_product": "whatsapp", "recipient_type": "individual", "to": "15550000005",
                "type": "document", "document": {"link": "https://files.example.com/77.pdf",
                "caption": "Invoice 77", "filename": "invoice-77.pdf"}}], doc
tw = [r for r in reqs if r["path"] == "/2010-04-01/Accounts/AC0123/Messages.json"]
mms = [r for r in tw if "15550000006" in r["body"]]
assert [m["body"] for m in mms] == ["To=%2B15550000006&From=%2B15551230000&Body=Look&MediaUrl=https%3A%2F%2Fcdn.example.com%2Fp.png"], mms
caio = [r for r in tw if "15550000003" in r["body"]][0]
assert caio["body"] == "To=%2B15550000003&From=%2B15551230000&Body=Oi%20Caio%20%26%20cia", caio["body"]
assert caio["headers"]["authorization"] == "Basic QUMwMTIzOnRvazNu"  # AC0123:tok3n
assert caio["headers"]["content-type"] == "application/x-www-form-urlencoded"
hook = [r for r in reqs if r["path"] == "/hook"][0]
body = json.loads(hook["body"])
assert body == {"to": "user-42", "text": "ping", "campaign": "hook1", "message_id": "hook1.0"}, body
assert hook["headers"]["x-api-key"] == "k1"
import hmac, hashlib
assert hook["headers"]["x-omnicast-signature"] == "sha256=" + hmac.new(b"whsec", hook["body"].encode(), hashlib.sha256).hexdigest()
PY
ok "whatsapp text, template, components and media, twilio form and MMS, signed webhook: the provider saw exactly the right requests"

[ "$(msg_field wa-text whatsapp:+15550000010 state)" = sent ] || fail "500 then 200 should end sent"
[ "$(msg_field wa-text whatsapp:+15550000010 attempts)" = 2 ] || fail "500 then 200 should take 2 attempts"
[ "$(grep -c 15550000010 "$J")" -eq 2 ] || fail "500 then 200: expected exactly 2 requests"
[ "$(msg_field wa-text whatsapp:+15550000011 error)" = undeliverable ] || fail "131026 → undeliverable"
[ "$(grep -c 15550000011 "$J")" -eq 1 ] || fail "a permanent failure must not be retried"
[ "$(msg_field wa-text whatsapp:+15550000012 state)" = uncertain ] || fail "a request read and never answered must end uncertain"
[ "$(msg_field wa-text whatsapp:+15550000012 reason)" = ambiguous_timeout ] || fail "reason ambiguous_timeout"
[ "$(grep -c 15550000012 "$J")" -eq 1 ] || fail "a request the provider may have processed was sent again: $(grep -c 15550000012 "$J") requests"
ok "500 then 200 → sent with attempts=2; 131026 → failed undeliverable once; a provider that reads and never answers → one request, uncertain/ambiguous_timeout"

[ "$(msg_field sms1 sms:+15550000013 error)" = opted_out ] || fail "21610 → opted_out: $(rraw HGETALL omni:msg:sms1 | tr "\n" " ")"
[ "$(rraw SISMEMBER omni:suppress:sms +15550000013)" = 1 ] || fail "21610 must suppress the number"
[ "$(msg_field sms1 sms:+15550000014 error)" = invalid_recipient ] || fail "21211 → invalid_recipient"
ok "twilio 21610 → opted_out and suppressed; 21211 → invalid_recipient"

[ "$(msg_field down1 down:u1 error)" = retries_exhausted ] || fail "refused connections → retries_exhausted"
rraw XRANGE omni:dead - + | q retries_exhausted || fail "retries_exhausted not dead-lettered"
ok "connection refused → retried, then failed retries_exhausted with a dead letter"

# SMTP: parse what arrived
ls "$T/smtp"/*.eml >/dev/null 2>&1 || fail "no email arrived"
/usr/bin/python3 - "$T/smtp" <<'PY'
import email, email.policy, glob, json, sys
files = sorted(glob.glob(sys.argv[1] + "/*.eml"))
assert len(files) == 1, files
raw = open(files[0], "rb").read()
assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b""), "bare LF"
assert max(len(l) for l in raw.split(b"\r\n")) < 998
m = email.message_from_bytes(raw, policy=email.policy.default)
assert str(m["Subject"]) == "Promoção já", m["Subject"]
assert m["To"] == "ana@example.com"
assert m["Message-ID"] == "<mail1.0@acme.example>", m["Message-ID"]
assert m["List-Unsubscribe"] == "<https://acme.example/u?t=mail1.0>"
assert m["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
assert m.get_content_type() == "multipart/alternative"
parts = {p.get_content_type(): p.get_content() for p in m.iter_parts()}
# text as given; html: the value escaped, the {{{trusted}}} one as is
assert parts["text/plain"].strip() == "Olá Ana <b>& Co</b>", parts
assert parts["text/html"].strip() == '<p>Olá Ana &lt;b&gt;&amp; Co&lt;/b&gt;</p><p><a href="https://acme.example/p">prefs</a></p>', parts
env = json.load(open(files[0][:-4] + ".json"))
assert env["mail_from"] == "news@acme.example" and env["rcpt_tos"] == ["ana@example.com"], env
PY
[ "$(msg_field mail1 email:nobody@example.com error)" = invalid_mailbox ] || fail "550 5.1.1 → invalid_mailbox"
[ "$(rraw SISMEMBER omni:suppress:email nobody@example.com)" = 1 ] || fail "550 5.1.1 must suppress the address"
[ "$(msg_field mail1 email:ana@example.com provider_id)" = "mail1.0" ] || fail "email provider id"
ok "smtp: a real SMTP server got a correct MIME message, html values escaped and {{{trusted}}} ones not; 550 5.1.1 → invalid_mailbox, suppressed"

stop_daemon
check_logs_clean
