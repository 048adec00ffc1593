#!/bin/bash
# Running it: the systemd unit verifies; SIGHUP applies a new connector
# configuration without dropping work and refuses a broken one; readiness
# and health; --check-config reports errors with lines; --version.
source "$(dirname "$0")/lib.sh"

# the unit, pointed at this build, passes systemd-analyze verify
if command -v systemd-analyze >/dev/null; then
  sed "s|/usr/bin/omnicastd|$OMNI_BUILD/omnicastd|g" "$OMNI_SRC/systemd/omnicastd.service" >"$T/omnicastd.service"
  systemd-analyze verify "$T/omnicastd.service" 2>"$T/verify.log" || { cat "$T/verify.log"; fail "systemd-analyze verify"; }
  ok "systemd-analyze verify passes on the unit"
  grep -qx 'LimitCORE=0' "$OMNI_SRC/systemd/omnicastd.service" || fail "the unit does not set LimitCORE=0"
else
  fail "systemd-analyze missing (make deps installs systemd)"
fi

"$OMNI_BUILD/omnicastd" --version | q '^omnicastd [0-9]' || fail "--version"
printf '[daemon]\nchunk_size = lots\ntls_ca_file = %s\n[connector.x]\ntype = nosuch\n[channels]\nsms = y\n' "$T/no-such-ca.pem" >"$T/bad.conf"
rc=0; "$OMNI_BUILD/omnicastd" --config "$T/bad.conf" --check-config 2>"$T/check.log" || rc=$?
[ $rc -ne 0 ] || fail "--check-config accepted a bad file"
grep -q "bad.conf:2: \[daemon\] chunk_size" "$T/check.log" && grep -q "bad.conf:4: \[connector.x\] unknown connector type 'nosuch'" "$T/check.log" && grep -q "bad.conf:7: unknown connector instance 'y'" "$T/check.log" &&
  grep -q "bad.conf: tls_ca_file .*no-such-ca.pem: No such file" "$T/check.log" || { cat "$T/check.log"; fail "--check-config messages"; }
ok "--check-config prints every error with its line and exits non-zero"

start_redis
HTTP_PORT=$(free_port)
conf() { daemon_conf "$T/omni.conf" "
http_listen = 127.0.0.1:$HTTP_PORT
[connector.out]
type = outbox
path = $T/out.jsonl
rate_per_s = $1

[channels]
sms = out"; }
conf 20
"$OMNI_BUILD/omnicastd" --config "$T/omni.conf" --check-config >/dev/null || fail "good config refused"
start_daemon "$T/omni.conf"
wait_for 20 curl -sf "http://127.0.0.1:$HTTP_PORT/readyz"
curl -sf "http://127.0.0.1:$HTTP_PORT/healthz" | q '"ok"' || fail "healthz"
python3 -c 'import json; print(json.dumps({"type":"broadcast","id":"slow","channel":"sms","message":{"text":"x"},"recipients":[{"to":"+1555000%04d" % i} for i in range(1,2001)]}))' >"$T/job.json"
enqueue "$(cat "$T/job.json")"
wait_for 20 sh -c "[ -s $T/out.jsonl ]"
# at 20/s this would take 100 s; reloaded at 5000/s it finishes quickly
conf 5000
kill -HUP "$DAEMON_PID"
wait_for 10 grep -q "reload: configuration applied" "$T/daemon.log"
wait_for 60 campaign_done slow
[ "$(wc -l <"$T/out.jsonl")" -eq 2000 ] || fail "lines after reload"
counters_add_up slow || fail "counters after reload"
ok "SIGHUP applied rate_per_s 20 → 5000 mid-campaign; every recipient sent once"

printf '[daemon]\nredis = nonsense\n' >"$T/omni.conf"
kill -HUP "$DAEMON_PID"
wait_for 10 grep -q "reload refused" "$T/daemon.log"
kill -0 "$DAEMON_PID" || fail "a bad reload killed the daemon"
curl -sf "http://127.0.0.1:$HTTP_PORT/readyz" >/dev/null || fail "not ready after a refused reload"
enqueue '{"type":"broadcast","id":"after","channel":"sms","message":{"text":"x"},"recipients":[{"to":"+15559990000"}]}'
wait_for 20 campaign_done after
ok "a broken config on SIGHUP is refused with a logged error; the daemon keeps working"

stop_daemon

# secrets: the daemon makes itself undumpable before it reads any
LOG_LEVEL=debug conf 20
start_daemon "$T/omni.conf" secrets
wait_for 20 curl -sf "http://127.0.0.1:$HTTP_PORT/readyz"
grep -q "core dumps disabled (PR_SET_DUMPABLE 0)" "$T/secrets.log" || fail "no PR_SET_DUMPABLE line"
stop_daemon
ok "PR_SET_DUMPABLE 0 at start (debug line), LimitCORE=0 in the unit"

# secrets others can read: a 0644 tokens file, an inline secret in a 0644 config
printf 'tok-0123456789\n' >"$T/tokens"
daemon_conf "$T/exposed.conf" "
api_tokens_file = $T/tokens
[connector.hook]
type = webhook
url = http://127.0.0.1:9/hook
signing_secret = inline-s3cret-value
[channels]
sms = hook"
chmod 0644 "$T/tokens" "$T/exposed.conf"
"$OMNI_BUILD/omnicastd" --config "$T/exposed.conf" --check-config >/dev/null 2>"$T/exposed.log" || fail "warnings made --check-config fail"
grep -q "exposed.conf: warning: api_tokens_file $T/tokens is readable by group or others" "$T/exposed.log" ||
  fail "no warning for a 0644 api_tokens_file"
grep -q "exposed.conf:[0-9]*: warning: \[connector.hook\] signing_secret is a secret given inline in a file readable by others" "$T/exposed.log" ||
  fail "no warning for an inline secret in a 0644 config"
! grep -q "inline-s3cret-value\|tok-0123456789" "$T/exposed.log" || fail "a warning shows the secret"
chmod 0600 "$T/tokens"; chmod 0640 "$T/exposed.conf"
"$OMNI_BUILD/omnicastd" --config "$T/exposed.conf" --check-config >/dev/null 2>"$T/exposed.log" || fail "--check-config"
! grep -q warning "$T/exposed.log" || fail "warned about a 0600 tokens file or a 0640 config"
ok "--check-config warns (without the secret) about a 0644 api_tokens_file and an inline secret in a 0644 config"

# token lines are read whole: a 600-byte line is refused with its line
# number (it used to be cut at 511 bytes and each piece accepted)
long=$(head -c 600 /dev/zero | tr '\0' a)
printf '# API tokens\n%s\n' "$long" >"$T/tokens"
daemon_conf "$T/tokens.conf" "
http_listen = 127.0.0.1:$HTTP_PORT
api_tokens_file = $T/tokens
[connector.out]
type = outbox
path = $T/out.jsonl
[channels]
sms = out"
start_daemon "$T/tokens.conf" tokens
wait_for 20 sh -c "! kill -0 $DAEMON_PID"
rc=0; wait "$DAEMON_PID" || rc=$?
[ $rc -ne 0 ] || fail "the daemon started with a 600-byte token line"
grep -q "api_tokens_file $T/tokens:2: token longer than 511 bytes" "$T/tokens.log" || fail "no error naming line 2"
! grep -q "$long" "$T/tokens.log" || fail "the error shows the token"
api_status() { curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $1" "http://127.0.0.1:$HTTP_PORT/v1/campaigns/nosuch"; }
tok=${long:0:511}
printf '%s\n' "$tok" >"$T/tokens"
start_daemon "$T/tokens.conf" tokens2
wait_for 20 curl -sf "http://127.0.0.1:$HTTP_PORT/readyz"
[ "$(api_status "$tok")" = 404 ] || fail "a 511-byte token refused"
[ "$(api_status "${tok:0:510}")" = 401 ] || fail "a prefix of a token accepted"
[ "$(api_status "${tok:0:256}")" = 401 ] || fail "a half of a token accepted"
stop_daemon
ok "a 600-byte api_tokens_file line is refused at start with its line number; a 511-byte token works whole and only whole"

check_logs_clean
