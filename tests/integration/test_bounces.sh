#!/bin/bash
# Bounces and complaints (issue 19 point 3) through the real daemon: a
# campaign to four addresses through the SMTP sink with a VERP return_path
# (each envelope sender carries the message's tagged token, the From stays);
# then, posted to the webhook as an inbound-parse service would: an RFC 3464
# DSN failing ana with 5.1.1 (our JSON {"raw"}), an RFC 5965 ARF complaint
# about bob (Mailgun's body-mime form), a delayed DSN for cy (soft), a DSN
# whose VERP token carries dan's id with a wrong tag (forged), and ana's DSN
# again (a provider's retry, another signature token), and Mailgun's event
# webhook with a temporary failure for dan. Then: ana and bob suppressed,
# bounced/complained 1 each, soft_bounced 2 (cy, dan), exactly one
# contact.bounced and one contact.complained published; a second campaign
# to the same four reaches only cy and dan at the sink.
source "$(dirname "$0")/lib.sh"

start_redis
start_smtp smtp
HTTP_PORT=$(free_port)
printf 'k9-0123456789abcdef-bounce-token\n' >"$T/token_secret"
printf 'key-bounces-signing-0123456789\n' >"$T/signing_key"
chmod 600 "$T/token_secret" "$T/signing_key"
daemon_conf "$T/omni.conf" "
http_listen = 127.0.0.1:$HTTP_PORT

[connector.mail]
type = smtp
url = smtp://127.0.0.1:$SMTP_PORT
tls = none
from = Acme News <news@acme.example>
return_path = bounces+{{token}}@acme.example
token_secret_file = $T/token_secret
inbound_signing_key_file = $T/signing_key

[channels]
email = mail"
start_daemon "$T/omni.conf"
B="http://127.0.0.1:$HTTP_PORT"
wait_for 20 curl -sf "$B/readyz"

RCPTS='[{"to":"ana@example.com"},{"to":"bob@example.com"},{"to":"cy@example.com"},{"to":"dan@example.com"}]'
enqueue '{"type":"broadcast","id":"b1","channel":"email","message":{"subject":"Hi","text":"Hello"},"recipients":'"$RCPTS"'}'
wait_for 30 campaign_done b1
wait_for 20 bash -c "ls $T/smtp/*.eml 2>/dev/null | wc -l | grep -qx 4"

# the envelope sender of each message: bounces+MSGID.TAG@acme.example, TAG
# the HMAC of the message id; From unchanged
/usr/bin/python3 - "$T/smtp" "$(cat "$T/token_secret")" >"$T/verp" <<'PY' || fail "envelopes: $(cat "$T/verp")"
import email, glob, hashlib, hmac, json, re, sys
secret = sys.argv[2].encode()
for f in sorted(glob.glob(sys.argv[1] + "/*.json")):
    env = json.load(open(f))
    m = email.message_from_bytes(open(f[:-5] + ".eml", "rb").read())
    assert m["From"] == "Acme News <news@acme.example>", m["From"]
    mid = re.fullmatch(r"<(.+)@acme\.example>", m["Message-ID"]).group(1)
    tag = hmac.new(secret, b"omnicast-token:" + mid.encode(), hashlib.sha256).hexdigest()[:32]
    assert env["mail_from"] == "bounces+%s.%s@acme.example" % (mid, tag), (env["mail_from"], mid)
    print(env["rcpt_tos"][0], env["mail_from"], mid)
PY
[ "$(wc -l <"$T/verp")" = 4 ] || fail "envelopes: $(cat "$T/verp")"
ok "MAIL FROM is bounces+MSGID.TAG@acme.example per message (the tag verifies), the From header stays"

verp() { awk -v a="$1" '$1 == a {print $2}' "$T/verp"; }
VANA=$(verp ana@example.com) VBOB=$(verp bob@example.com) VCY=$(verp cy@example.com) VDAN=$(verp dan@example.com)
DANMID=$(awk '$1 == "dan@example.com" {print $3}' "$T/verp")
# dan's id with a tag that is not its own
VFORGED="bounces+${DANMID}.0123456789abcdef0123456789abcdef@acme.example"

# post KIND VERP ADDR TOKEN FORM: a report about ADDR, signed as Mailgun
# signs (HMAC-SHA256 of timestamp+token); FORM=json (our {"raw"}) or
# mailgun (a route's urlencoded body-mime); prints the HTTP status
post() {
  /usr/bin/python3 - "$B/webhooks/mail" "$(cat "$T/signing_key")" "$@" <<'PY'
import hashlib, hmac, json, sys, time, urllib.error, urllib.parse, urllib.request
url, key, kind, verp, addr, token, form = sys.argv[1:8]
if kind == "arf":
    # RFC 5965 Appendix B.2, from our VERP sender to addr
    raw = ("From: <abusedesk@example.com>\r\nDate: Thu, 8 Mar 2005 17:40:36 EDT\r\n"
           "Subject: FW: Earn money\r\nTo: <abuse@example.net>\r\nMIME-Version: 1.0\r\n"
           "Content-Type: multipart/report; report-type=feedback-report;\r\n"
           "     boundary=\"part1_13d.2e68ed54_boundary\"\r\n\r\n"
           "--part1_13d.2e68ed54_boundary\r\nContent-Type: text/plain; charset=\"US-ASCII\"\r\n"
           "Content-Transfer-Encoding: 7bit\r\n\r\n"
           "This is an email abuse report for an email message received from IP\r\n"
           "192.0.2.1 on Thu, 8 Mar 2005 14:00:00 EDT.\r\n\r\n"
           "--part1_13d.2e68ed54_boundary\r\nContent-Type: message/feedback-report\r\n\r\n"
           "Feedback-Type: abuse\r\nUser-Agent: SomeGenerator/1.0\r\nVersion: 1\r\n"
           "Original-Mail-From: <%s>\r\nOriginal-Rcpt-To: <%s>\r\n"
           "Arrival-Date: Thu, 8 Mar 2005 14:00:00 EDT\r\nReporting-MTA: dns; mail.example.com\r\n"
           "Source-IP: 192.0.2.1\r\n\r\n"
           "--part1_13d.2e68ed54_boundary\r\nContent-Type: message/rfc822\r\n"
           "Content-Disposition: inline\r\n\r\nFrom: <%s>\r\nSubject: Hi\r\n\r\nHello\r\n"
           "--part1_13d.2e68ed54_boundary--\r\n") % (verp, addr, verp)
else:
    # RFC 3464 § 10.1's shape, failed 5.1.1 (hard) or delayed 4.4.7 (soft)
    action, status = ("failed", "5.1.1") if kind == "hard" else ("delayed", "4.4.7")
    raw = ("Date: Thu, 7 Jul 1994 17:16:05 -0400\r\n"
           "From: Mail Delivery Subsystem <MAILER-DAEMON@example.org>\r\n"
           "Subject: Returned mail\r\nTo: <%s>\r\nMIME-Version: 1.0\r\n"
           "Content-Type: multipart/report; report-type=delivery-status;\r\n"
           "    boundary=\"RAA14128.773615765/example.org\"\r\n\r\n"
           "--RAA14128.773615765/example.org\r\n\r\n   ----- delivery problems -----\r\n\r\n"
           "--RAA14128.773615765/example.org\r\ncontent-type: message/delivery-status\r\n\r\n"
           "Reporting-MTA: dns; mx.example.org\r\n\r\n"
           "Final-Recipient: rfc822;%s\r\nAction: %s\r\nStatus: %s\r\n"
           "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n"
           "--RAA14128.773615765/example.org\r\ncontent-type: text/rfc822-headers\r\n\r\n"
           "From: news@acme.example\r\nSubject: Hi\r\n\r\n"
           "--RAA14128.773615765/example.org--\r\n") % (verp, addr, action, status)
ts = str(int(time.time()))
sig = hmac.new(key.encode(), (ts + token).encode(), hashlib.sha256).hexdigest()
if form == "mailgun":
    body = urllib.parse.urlencode({"timestamp": ts, "token": token, "signature": sig,
                                   "recipient": "fbl@acme.example", "sender": "abusedesk@example.com",
                                   "body-mime": raw}).encode()
    ctype = "application/x-www-form-urlencoded"
else:
    body = json.dumps({"timestamp": ts, "token": token, "signature": sig, "raw": raw,
                       "to": verp}).encode()
    ctype = "application/json"
req = urllib.request.Request(url, data=body, headers={"Content-Type": ctype})
try:
    print(urllib.request.urlopen(req, timeout=10).status)
except urllib.error.HTTPError as e:
    print(e.code)
PY
}

[ "$(post hard "$VANA" ana@example.com tok-ana-1 json)" = 200 ] || fail "ana's DSN refused"
[ "$(post arf "$VBOB" bob@example.com tok-bob-1 mailgun)" = 200 ] || fail "bob's ARF refused"
[ "$(post soft "$VCY" cy@example.com tok-cy-1 json)" = 200 ] || fail "cy's DSN refused"
[ "$(post hard "$VFORGED" dan@example.com tok-dan-1 json)" = 200 ] || fail "the forged DSN was not answered 200"
[ "$(post hard "$VANA" ana@example.com tok-ana-2 json)" = 200 ] || fail "ana's DSN again refused"
[ "$(post hard "$VANA" ana@example.com tok-ana-2 json)" = 409 ] || fail "a replayed token was not 409"
# Mailgun's event webhook: dan's message failed with severity temporary
# (soft), signed in its "signature" object; a wrong signature stores nothing
mgevent() {
  /usr/bin/python3 - "$B/webhooks/mail" "$(cat "$T/signing_key")" "$@" <<'PY'
import hashlib, hmac, json, sys, time, urllib.error, urllib.request
url, key, mid, severity, token, good = sys.argv[1:7]
ts = str(int(time.time()))
sig = hmac.new(key.encode(), (ts + token).encode(), hashlib.sha256).hexdigest()
if good != "1":
    sig = "0" * 64
body = {"signature": {"timestamp": ts, "token": token, "signature": sig},
        "event-data": {"event": "failed", "severity": severity, "reason": "generic",
                       "log-level": "warn", "recipient": "dan@example.com",
                       "recipient-domain": "example.com",
                       "message": {"headers": {"to": "dan@example.com", "message-id": mid,
                                               "from": "Acme News <news@acme.example>",
                                               "subject": "Hi"}},
                       "delivery-status": {"attempt-no": 1, "code": 452,
                                           "message": "4.2.2 The email account that you tried to reach is over quota",
                                           "description": ""}}}
req = urllib.request.Request(url, data=json.dumps(body).encode(),
                             headers={"Content-Type": "application/json"})
try:
    print(urllib.request.urlopen(req, timeout=10).status)
except urllib.error.HTTPError as e:
    print(e.code)
PY
}
[ "$(mgevent "$DANMID@acme.example" permanent mg-bad 0)" = 401 ] || fail "a Mailgun event with a wrong signature was taken"
[ "$(mgevent "$DANMID@acme.example" temporary mg-dan-1 1)" = 200 ] || fail "dan's Mailgun event refused"
wait_for 10 bash -c "[ \"\$(redis-cli -p $REDIS_PORT --raw HGET omni:campaign:b1 soft_bounced)\" = 2 ]" \
  || fail "soft_bounced: $(campaign_field b1 soft_bounced)"

[ "$(rraw SMEMBERS omni:suppress:email | sort | tr '\n' ' ')" = "ana@example.com bob@example.com " ] \
  || fail "suppressed: $(rraw SMEMBERS omni:suppress:email | tr '\n' ' ')"
for f in bounced:1 complained:1 soft_bounced:2; do
  [ "$(campaign_field b1 "${f%%:*}")" = "${f#*:}" ] || fail "${f%%:*}: $(campaign_field b1 "${f%%:*}")"
done
[ "$(rraw SMEMBERS omni:campaign:b1:bounces)" = ana@example.com ] || fail "bounces set"
[ "$(rraw SMEMBERS omni:campaign:b1:complaints)" = bob@example.com ] || fail "complaints set"
[ "$(rraw SMEMBERS omni:campaign:b1:soft_bounces | sort | tr '\n' ' ')" = "cy@example.com dan@example.com " ] || fail "soft_bounces set"
grep -q 'VERP token whose tag is wrong' "$T/daemon.log" || fail "the forged DSN was not logged"
ok "hard DSN and ARF suppress ana and bob; the soft DSN and a Mailgun temporary failure count cy and dan only (a badly signed Mailgun event is 401); the forged token changes nothing; a retry counts nothing twice; a replayed token is 409"

rraw XRANGE omni:conversations - + >"$T/events"
/usr/bin/python3 - "$T/events" <<'PY' || fail "events: $(cat "$T/events")"
import json, sys
lines = open(sys.argv[1]).read().split("\n")
evs = [json.loads(lines[i + 1]) for i, l in enumerate(lines) if l == "data"]
got = [(e["type"], e["contact"], e["campaign"], e["channel"], e.get("via")) for e in evs]
assert got == [("contact.bounced", "ana@example.com", "b1", "email", "dsn"),
               ("contact.complained", "bob@example.com", "b1", "email", "arf")], got
assert evs[0]["error"].startswith("5.1.1 smtp; 550"), evs[0]
assert evs[1]["feedback_type"] == "abuse", evs[1]
PY
ok "exactly one contact.bounced (ana, via dsn, the status) and one contact.complained (bob, via arf, abuse)"

enqueue '{"type":"broadcast","id":"b2","channel":"email","message":{"subject":"Again","text":"Hello"},"recipients":'"$RCPTS"'}'
wait_for 30 campaign_done b2
sleep 1
/usr/bin/python3 - "$T/smtp" >"$T/second" <<'PY'
import email, glob, sys
for f in sorted(glob.glob(sys.argv[1] + "/*.eml")):
    m = email.message_from_bytes(open(f, "rb").read())
    if m["Subject"] == "Again":
        print(m["To"])
PY
[ "$(sort "$T/second" | tr '\n' ' ')" = "cy@example.com dan@example.com " ] || fail "the second campaign reached: $(cat "$T/second" | tr '\n' ' ')"
[ "$(campaign_field b2 suppressed)" = 2 ] || fail "b2 suppressed: $(campaign_field b2 suppressed)"
ok "a second campaign skips the suppressed ana and bob: the sink got only cy and dan"

stop_daemon
check_logs_clean
ok "test_bounces"
