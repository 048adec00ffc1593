#!/bin/bash
# Email tokens that cannot be guessed (issue 16 point 5 leftovers): with
# token_secret the List-Unsubscribe URL and the reply+ address carry the
# message id and an HMAC tag; a one-click unsubscribe with a wrong or
# missing tag is 403 bad_token and suppresses nobody, the right one
# suppresses the recipient; without inbound_signing_key an inbound-parse
# post is 403 unsigned_inbound_refused unless inbound_unsigned = true; an
# instance without token_secret warns at load.
source "$(dirname "$0")/lib.sh"

start_redis
start_smtp smtp
HTTP_PORT=$(free_port)
printf 'k9-0123456789abcdef-mail-token\n' >"$T/token_secret"
chmod 600 "$T/token_secret"
daemon_conf "$T/omni.conf" "
http_listen = 127.0.0.1:$HTTP_PORT

[connector.mail]
type = smtp
url = smtp://127.0.0.1:$SMTP_PORT
tls = none
from = Acme News <news@acme.example>
reply_to = reply+{{token}}@acme.example
unsubscribe_url = https://acme.example/webhooks/mail?t={{token}}
token_secret_file = $T/token_secret

[connector.open]
type = smtp
url = smtp://127.0.0.1:$SMTP_PORT
tls = none
from = news@acme.example
unsubscribe_url = https://acme.example/webhooks/open?t={{token}}
inbound_unsigned = true

[channels]
email = mail
email2 = open"
start_daemon "$T/omni.conf"
B="http://127.0.0.1:$HTTP_PORT"
wait_for 20 curl -sf "$B/readyz"

grep 'smtp connector open: no token_secret' "$T/daemon.log" | q 'can be guessed' || fail "no load warning for the instance without token_secret"
! grep -q 'smtp connector mail: no token_secret' "$T/daemon.log" || fail "a warning for the instance with token_secret"
! grep -q 'k9-0123456789abcdef' "$T/daemon.log" || fail "the secret reached the log"
ok "an smtp instance with {{token}} and no token_secret warns at load; the secret is never logged"

enqueue '{"type":"broadcast","id":"m1","channel":"email","message":{"subject":"Hi","text":"Hello"},"recipients":[{"to":"ana@example.com"},{"to":"bob@example.com"}]}'
wait_for 30 campaign_done m1
wait_for 20 bash -c "ls $T/smtp/*.eml 2>/dev/null | wc -l | grep -qx 2"
# the token of each recipient's List-Unsubscribe, checked against the secret
/usr/bin/python3 - "$T/smtp" "$(cat "$T/token_secret")" >"$T/tokens" <<'PY'
import email, email.policy, glob, hashlib, hmac, sys, re
secret = sys.argv[2].encode()
for f in sorted(glob.glob(sys.argv[1] + "/*.eml")):
    m = email.message_from_bytes(open(f, "rb").read(), policy=email.policy.default)
    lu = str(m["List-Unsubscribe"])
    tok = re.fullmatch(r"<https://acme\.example/webhooks/mail\?t=([^>]+)>", lu).group(1)
    mid, tag = tok[:-33], tok[-32:]
    assert tok[-33] == "." and re.fullmatch(r"[0-9a-f]{32}", tag), tok
    want = hmac.new(secret, b"omnicast-token:" + mid.encode(), hashlib.sha256).hexdigest()[:32]
    assert tag == want, (tag, want)
    assert str(m["Reply-To"]) == "reply+%s@acme.example" % tok, m["Reply-To"]
    assert str(m["Message-ID"]) == "<%s@acme.example>" % mid, m["Message-ID"]
    print(m["To"], tok)
PY
[ "$(wc -l <"$T/tokens")" = 2 ] || fail "tokens: $(cat "$T/tokens")"
ok "List-Unsubscribe and Reply-To carry the message id and its HMAC-SHA256 tag"

tok_ana=$(awk '$1 == "ana@example.com" {print $2}' "$T/tokens")
tok_bob=$(awk '$1 == "bob@example.com" {print $2}' "$T/tokens")
mid_ana=${tok_ana%.*}
unsub() { curl -s -m 10 -o "$T/ubody" -w '%{http_code}' --data-binary "List-Unsubscribe=One-Click" "$B/webhooks/$1?t=$2"; }
flipped="${tok_ana%?}$( [ "${tok_ana: -1}" = 0 ] && echo 1 || echo 0)"
for bad in "$mid_ana" "$flipped" "${mid_ana}.${tok_bob##*.}"; do
  code=$(unsub mail "$bad")
  [ "$code" = 403 ] && q bad_token "$T/ubody" || fail "a forged token $bad answered $code: $(cat "$T/ubody")"
done
[ "$(rraw SCARD omni:suppress:email)" = 0 ] || fail "a forged token suppressed someone"
[ "$(campaign_field m1 opted_out)" = "" ] || [ "$(campaign_field m1 opted_out)" = 0 ] || fail "opted_out counted"
# a person (or a mail scanner) opening the link: a page with a button, nothing unsubscribed
code=$(curl -s -m 10 -o "$T/page.html" -w '%{http_code} %{content_type}' "$B/webhooks/mail?t=$tok_ana")
[ "$code" = "200 text/html; charset=utf-8" ] || fail "GET answered $code: $(cat "$T/page.html")"
q "<form method=\"post\" action=\"?t=$tok_ana\">" "$T/page.html" || fail "no confirm form: $(cat "$T/page.html")"
code=$(curl -s -m 10 -o "$T/page.html" -w '%{http_code}' "$B/webhooks/mail?t=$flipped")
[ "$code" = 403 ] && ! q "<form" "$T/page.html" || fail "GET with a forged token answered $code with a form"
[ "$(rraw SCARD omni:suppress:email)" = 0 ] || fail "a GET unsubscribed someone"
ok "GET of the unsubscribe link: an HTML page whose button posts the one-click form; a forged token gets no form; a GET unsubscribes nobody"

# RFC 8058's preferred multipart/form-data (curl -F builds it with its own boundary)
code=$(curl -s -m 10 -o "$T/ubody" -w '%{http_code}' -F "List-Unsubscribe=One-Click" "$B/webhooks/mail?t=$flipped")
[ "$code" = 403 ] || fail "a multipart one-click with a forged token answered $code"
[ "$(rraw SCARD omni:suppress:email)" = 0 ] || fail "a forged multipart one-click suppressed someone"
code=$(curl -s -m 10 -o "$T/ubody" -w '%{http_code}' -F "List-Unsubscribe=One-Click" "$B/webhooks/mail?t=$tok_ana")
[ "$code" = 200 ] || fail "the multipart one-click answered $code: $(cat "$T/ubody")"
[ "$(rraw SISMEMBER omni:suppress:email ana@example.com)" = 1 ] || fail "the multipart one-click did not suppress ana"
[ "$(rraw SISMEMBER omni:suppress:email bob@example.com)" = 0 ] || fail "bob suppressed"
[ "$(campaign_field m1 opted_out)" = 1 ] || fail "opted_out: $(campaign_field m1 opted_out)"
ok "one-click: the bare id, a flipped tag digit, another message's tag → 403 bad_token, nothing; the right token suppresses, multipart/form-data too"

# ---- unsigned inbound-parse posts
post() { curl -s -m 10 -o "$T/pbody" -w '%{http_code}' -H "Content-Type: application/json" --data-binary "$2" "$B/webhooks/$1"; }
code=$(post mail '{"from":"bob@example.com","to":"news@acme.example","text":"STOP"}')
[ "$code" = 403 ] && q unsigned_inbound_refused "$T/pbody" || fail "an unsigned post answered $code: $(cat "$T/pbody")"
[ "$(rraw SISMEMBER omni:suppress:email bob@example.com)" = 0 ] || fail "an unsigned STOP suppressed bob"
[ "$(rraw ZCARD omni:conv:all)" = 0 ] || fail "an unsigned post opened a conversation"
code=$(post open '{"from":"carl@example.com","to":"news@acme.example","text":"hello"}')
[ "$code" = 200 ] || fail "inbound_unsigned = true refused: $code $(cat "$T/pbody")"
[ "$(rraw ZCARD omni:conv:all)" = 1 ] || fail "the unsigned post on the open instance was not stored"
ok "without inbound_signing_key: 403 unsigned_inbound_refused, nothing stored; inbound_unsigned = true takes it"

# the page's button, as a browser posts it (urlencoded, with via=page): a page back
code=$(curl -s -m 10 -o "$T/ubody" -w '%{http_code} %{content_type}' --data "List-Unsubscribe=One-Click&via=page" "$B/webhooks/mail?t=$tok_bob")
[ "$code" = "200 text/html; charset=utf-8" ] || fail "the page's form answered $code: $(cat "$T/ubody")"
[ "$(rraw SISMEMBER omni:suppress:email bob@example.com)" = 1 ] || fail "the page's form did not suppress bob"
ok "the confirmation page's button (urlencoded with via=page) unsubscribes and answers a page"

stop_daemon
check_logs_clean
ok "test_mail_tokens"
