#!/bin/bash
# omnicastd --check-config with the real binary: every out-of-range or
# unparsable value of the [daemon] keys and of the keys every connector
# takes is an error with its file and line, all of them in one run (not
# just the first), the exit status is non-zero, nothing says OK; the same
# file with the values fixed passes with OK. Then what it checks beyond
# parsing (issue 17 point 5): URLs by scheme per key, the files the daemon
# reads at start, each connector's own init(); and a file it calls OK
# starts (a real Redis, /readyz).
source "$(dirname "$0")/lib.sh"

cat >"$T/bad.conf" <<CONF
[daemon]
chunk_size = 0
block_ms = 5s
log_bodies = maybe

[connector.out]
type = outbox
path = $T/out.jsonl
max_inflight = 0
timeout_ms = 0
burst = 20000000
connect_timeout_ms = 3600001
rate_per_s = nan
pipeline = 65
http_client = carrier
retry_ambiguous = perhaps

[channels]
sms = out
CONF
rc=0
"$OMNI_BUILD/omnicastd" --config "$T/bad.conf" --check-config >"$T/out.txt" 2>"$T/check.log" || rc=$?
[ $rc -ne 0 ] || fail "--check-config accepted out-of-range values: $(cat "$T/out.txt" "$T/check.log")"
! grep -q OK "$T/out.txt" || fail "--check-config printed OK for a bad file"
want() { grep -qF -- "$1" "$T/check.log" || { cat "$T/check.log"; fail "missing: $1"; }; }
want "bad.conf:2: [daemon] chunk_size: not an integer in 1..10000"
want "bad.conf:3: [daemon] block_ms: not an integer in 10..60000"
want "bad.conf:4: [daemon] log_bodies: not a boolean (true/false)"
want "bad.conf:9: [connector.out] max_inflight: not an integer in 1..100000"
want "bad.conf:10: [connector.out] timeout_ms: not an integer in 1..3600000"
want "bad.conf:11: [connector.out] burst: not an integer in 0..1000000"
want "bad.conf:12: [connector.out] connect_timeout_ms: not an integer in 1..3600000"
want "bad.conf:13: [connector.out] rate_per_s: not a number in 0..1000000"
want "bad.conf:14: [connector.out] pipeline: not an integer in 1..64"
want "bad.conf:15: [connector.out] http_client: must be curl or native"
want "bad.conf:16: [connector.out] retry_ambiguous: not a boolean (true/false)"
want "bad.conf: configuration has errors"
n=$(grep -c "^$T/bad.conf:[0-9]*: " "$T/check.log")
[ "$n" -eq 11 ] || { cat "$T/check.log"; fail "expected 11 errors with lines, got $n"; }
ok "--check-config rejects max_inflight = 0, timeout_ms = 0, burst = 20000000 and 8 more, each with its line"

# the limits themselves pass, and the defaults
sed -e 's/^chunk_size = 0/chunk_size = 10000/' -e 's/^block_ms = 5s/block_ms = 10/' \
  -e 's/^log_bodies = maybe/log_bodies = false/' -e 's/^max_inflight = 0/max_inflight = 1/' \
  -e 's/^timeout_ms = 0/timeout_ms = 3600000/' -e 's/^burst = 20000000/burst = 1000000/' \
  -e 's/^connect_timeout_ms = 3600001/connect_timeout_ms = 1/' -e 's/^rate_per_s = nan/rate_per_s = 1000000/' \
  -e 's/^pipeline = 65/pipeline = 64/' -e 's/^http_client = carrier/http_client = curl/' \
  -e 's/^retry_ambiguous = perhaps/retry_ambiguous = true/' "$T/bad.conf" >"$T/good.conf"
"$OMNI_BUILD/omnicastd" --config "$T/good.conf" --check-config >"$T/out.txt" 2>"$T/check.log" ||
  { cat "$T/check.log"; fail "the limits were refused"; }
grep -q "good.conf: OK (1 connectors, 1 channels)" "$T/out.txt" || fail "no OK: $(cat "$T/out.txt")"
printf '[connector.out]\ntype = outbox\npath = %s/o.jsonl\n[channels]\nsms = out\n' "$T" >"$T/min.conf"
"$OMNI_BUILD/omnicastd" --config "$T/min.conf" --check-config >/dev/null 2>"$T/check.log" ||
  { cat "$T/check.log"; fail "the defaults were refused"; }
ok "--check-config accepts the limits and the defaults"

# ---- URLs by scheme per key, and the files the daemon reads at start: each
# refused with its line and the reason, in one run
cat >"$T/urls.conf" <<CONF
[daemon]
crm_webhook_url = crm.example.com/hook
crm_webhook_secret_file = $T/no-such-secret
api_tokens_file = $T/no-such-tokens
tls_ca_file = $T/not-a-ca.pem
log_file = $T/no-such-dir/omni.log

[connector.wa]
type = whatsapp
api_base = htp://graph.facebook.com
phone_number_id = 1234567890
access_token = t

[connector.sms]
type = twilio
api_base = http://api.twilio.com
account_sid = AC1
auth_token = t
from = +15550001
status_callback = omni.example.com/status

[connector.mail]
type = smtp
url = https://mail.example.com
from = news@example.com

[connector.hook]
type = webhook
url = ftp://hooks.example.com/in

[channels]
sms = sms
CONF
echo "not a certificate" >"$T/not-a-ca.pem"
chmod 600 "$T/urls.conf"
rc=0
"$OMNI_BUILD/omnicastd" --config "$T/urls.conf" --check-config >"$T/out.txt" 2>"$T/check.log" || rc=$?
[ $rc -ne 0 ] || fail "--check-config accepted bad URLs: $(cat "$T/out.txt" "$T/check.log")"
! grep -q OK "$T/out.txt" || fail "--check-config printed OK for bad URLs"
want "urls.conf:2: [daemon] crm_webhook_url: not a URL (want http:// or https://"
want "urls.conf:3: [daemon] crm_webhook_secret_file: cannot read $T/no-such-secret: No such file"
want "urls.conf:4: [daemon] api_tokens_file: cannot read $T/no-such-tokens: No such file"
want "urls.conf:5: [daemon] tls_ca_file: $T/not-a-ca.pem holds no PEM certificate"
want "urls.conf:6: [daemon] log_file: cannot open $T/no-such-dir/omni.log for appending"
want "urls.conf:10: [connector.wa] api_base: scheme htp:// refused (want https://"
want "urls.conf:16: [connector.sms] api_base: must be https:// (plain http:// only to a loopback host"
want "urls.conf:20: [connector.sms] status_callback: not a URL (want http:// or https://"
want "urls.conf:24: [connector.mail] url: scheme https:// refused (want smtp:// or smtps://"
want "urls.conf:29: [connector.hook] url: scheme ftp:// refused (want http:// or https://"
ok "--check-config refuses crm_webhook_url without a scheme, api_base = htp://, http:// to a provider, an https SMTP URL, an ftp webhook, and missing or bad files, each with its line"

# ---- each connector's own init() checks, with the section's line
cat >"$T/init.conf" <<CONF
[connector.both]
type = twilio
account_sid = AC1
auth_token = t
from = +15550001
messaging_service_sid = MG1

[connector.neither]
type = twilio
account_sid = AC1
auth_token = t

[connector.mail]
type = smtp
url = smtp://127.0.0.1:25
from = news@example.com
tls = off

[connector.hook]
type = webhook
url = http://127.0.0.1:9/
body = {"to":"{{to}}","n":{{n}}}

[connector.out]
type = outbox
path = $T/check-outbox.jsonl

[channels]
sms = both
CONF
chmod 600 "$T/init.conf"
rc=0
"$OMNI_BUILD/omnicastd" --config "$T/init.conf" --check-config >"$T/out.txt" 2>"$T/check.log" || rc=$?
[ $rc -ne 0 ] || fail "--check-config accepted what the connectors refuse: $(cat "$T/out.txt" "$T/check.log")"
! grep -q OK "$T/out.txt" || fail "--check-config printed OK for connectors that refuse to start"
want "init.conf:1: [connector.both] give exactly one of from and messaging_service_sid"
want "init.conf:8: [connector.neither] give exactly one of from and messaging_service_sid"
want "init.conf:13: [connector.mail] tls must be starttls or none"
want "init.conf:19: [connector.hook] body: {{n}} at offset 19 is outside a JSON string"
! grep -q "connector.out" "$T/check.log" || fail "the outbox was refused: $(cat "$T/check.log")"
[ ! -e "$T/check-outbox.jsonl" ] || fail "--check-config left the outbox file it created behind"
# the daemon refuses the same file at start, for the same reason
rc=0; timeout 30 "$OMNI_BUILD/omnicastd" --config "$T/init.conf" >"$T/start-refused.log" 2>&1 || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "the daemon started on a file --check-config refuses (rc $rc)"
q -F "give exactly one of from and messaging_service_sid" "$T/start-refused.log" ||
  fail "the daemon's refusal differs: $(cat "$T/start-refused.log")"
ok "--check-config runs each connector's init(): Twilio with both and neither sender, smtp tls = off, a bad webhook body; nothing left behind"

# ---- a file --check-config calls OK starts: every connector type, every
# file, a real Redis, /readyz
start_redis
HTTP_PORT=$(free_port)
DEAD=$(free_port)
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
  -keyout "$T/ca.key" -out "$T/ca.pem" 2>/dev/null || fail "openssl could not make a certificate"
printf 'crm-key\n' >"$T/crm_secret"
printf '# tokens\ntok-check-1\n' >"$T/tokens"
printf 'smtp-pass\n' >"$T/smtp_password"
chmod 600 "$T/crm_secret" "$T/tokens" "$T/smtp_password"
mkdir -p "$T/logs"
daemon_conf "$T/good-all.conf" "
http_listen = 127.0.0.1:$HTTP_PORT
api_tokens_file = $T/tokens
crm_webhook_url = http://127.0.0.1:$DEAD/crm
crm_webhook_secret_file = $T/crm_secret
tls_ca_file = $T/ca.pem
log_file = $T/logs/omni-file.log

[connector.wa]
type = whatsapp
api_base = http://127.0.0.1:$DEAD
phone_number_id = 1234567890
access_token = t

[connector.sms]
type = twilio
api_base = http://localhost:$DEAD
account_sid = AC1
auth_token = t
messaging_service_sid = MG1
status_callback = https://omni.example.com/status

[connector.mail]
type = smtp
url = smtp://127.0.0.1:$DEAD
username = omni
password_file = $T/smtp_password
from = Acme <news@example.com>
unsubscribe_url = https://omni.example.com/u?t={{token}}
token_secret = 0123456789abcdef0123

[connector.hook]
type = webhook
url = http://127.0.0.1:$DEAD/hook

[connector.out]
type = outbox
path = $T/good-outbox.jsonl

[channels]
whatsapp = wa
sms = sms
email = mail
hook = hook
demo = out"
chmod 600 "$T/good-all.conf"
"$OMNI_BUILD/omnicastd" --config "$T/good-all.conf" --check-config >"$T/out.txt" 2>"$T/check.log" ||
  { cat "$T/check.log"; fail "--check-config refused a good file"; }
grep -q "good-all.conf: OK (5 connectors, 5 channels)" "$T/out.txt" || fail "no OK: $(cat "$T/out.txt")"
[ ! -e "$T/good-outbox.jsonl" ] && [ ! -e "$T/logs/omni-file.log" ] ||
  fail "--check-config created the outbox or the log file"
start_daemon "$T/good-all.conf"
wait_for 30 curl -sf "http://127.0.0.1:$HTTP_PORT/readyz"
for c in wa sms mail hook out; do
  q "connector $c: type" "$T/logs/omni-file.log" || fail "connector $c did not start: $(cat "$T/logs/omni-file.log")"
done
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer tok-check-1" \
  "http://127.0.0.1:$HTTP_PORT/v1/campaigns/nosuch")
[ "$code" = 404 ] || fail "the API token from api_tokens_file was not taken (HTTP $code)"
[ -e "$T/good-outbox.jsonl" ] || fail "the daemon did not open the outbox"
stop_daemon
check_logs_clean
ok "a file --check-config calls OK (every connector type, the files) starts: /readyz 200 on a real Redis, the token file taken"

# what works but should not be left so is a warning: OK, the count on stdout,
# the reason on stderr, exit 0; with the reason fixed, no warning
cat >"$T/warn.conf" <<CONF
[daemon]
redis = redis://127.0.0.1:$REDIS_PORT/0

[connector.mail]
type = smtp
url = smtp://127.0.0.1:$DEAD
from = news@example.com
unsubscribe_url = https://mail.example.com/webhooks/mail?t={{token}}
inbound_unsigned = true

[channels]
email = mail
CONF
"$OMNI_BUILD/omnicastd" --config "$T/warn.conf" --check-config >"$T/out.txt" 2>"$T/check.log" ||
  { cat "$T/check.log"; fail "--check-config refused a file that only deserves a warning"; }
grep -q "warn.conf: OK (1 connectors, 1 channels; 1 warning above)" "$T/out.txt" ||
  fail "no warning count: $(cat "$T/out.txt")"
grep -q "warn smtp connector mail: no token_secret" "$T/check.log" || fail "no reason: $(cat "$T/check.log")"
printf 'token_secret = 0123456789abcdef0123\n' >>"$T/warn.conf"
sed -i 's/^\[channels\]$//; s/^email = mail$//' "$T/warn.conf"
printf '[channels]\nemail = mail\n' >>"$T/warn.conf"
"$OMNI_BUILD/omnicastd" --config "$T/warn.conf" --check-config >"$T/out.txt" 2>"$T/check.log" ||
  { cat "$T/check.log"; fail "--check-config refused the fixed file"; }
grep -q "warn.conf: OK (1 connectors, 1 channels)$" "$T/out.txt" || fail "still warned: $(cat "$T/out.txt" "$T/check.log")"
ok "--check-config counts a connector's warning (smtp unsubscribe tokens without token_secret) and says OK without one once fixed"
