#!/bin/bash
# A Redis with ACL users and the default user disabled, as a managed Redis
# is set up: the daemon and the CLI authenticate with redis_username and
# redis_password_file (AUTH first on every connection) and a campaign runs
# through the outbox; a wrong password is a clear error naming the address
# and the server's answer, retried with backoff, /readyz 503, never a crash
# or a log flood, and the daemon recovers once the password is right; a
# password in the URL is refused by --check-config with the reason, never
# echoing the secret (rediss:// is tested in test_redis_tls.sh).
source "$(dirname "$0")/lib.sh"

start_redis
# the ACL of a managed Redis: a user for omnicast, the default user off
rcli ACL SETUSER omni on '>s3cret-pw' '~*' '&*' '+@all' >/dev/null
rcli ACL SETUSER default off >/dev/null
rcli() { redis-cli -p "$REDIS_PORT" --user omni --pass s3cret-pw --no-auth-warning --no-raw "$@"; }
rraw() { redis-cli -p "$REDIS_PORT" --user omni --pass s3cret-pw --no-auth-warning --raw "$@"; }
[ "$(redis-cli -p "$REDIS_PORT" PING 2>&1)" != PONG ] || fail "the default user still works"

printf 's3cret-pw\n' >"$T/redis.pw"
chmod 600 "$T/redis.pw"
HTTP_PORT=$(free_port)
daemon_conf "$T/omni.conf" "
redis_username = omni
redis_password_file = $T/redis.pw
http_listen = 127.0.0.1:$HTTP_PORT

[connector.out]
type = outbox
path = $T/outbox.jsonl

[channels]
sms = out"
sed -i "s|^redis = .*|redis = redis://127.0.0.1:$REDIS_PORT/0|" "$T/omni.conf"
chmod 600 "$T/omni.conf"
"$OMNI_BUILD/omnicastd" --config "$T/omni.conf" --check-config >"$T/check.log" 2>&1 ||
  fail "check-config refused a good ACL configuration: $(cat "$T/check.log")"
start_daemon "$T/omni.conf"
wait_for 30 curl -sf "http://127.0.0.1:$HTTP_PORT/readyz"

echo '{"type":"broadcast","id":"acl1","channel":"sms","message":{"text":"Hi {{name}}"},"recipients":[{"to":"+15550000001","vars":{"name":"Ana"}},{"to":"+15550000002","vars":{"name":"Bo"}}]}' >"$T/job.json"
"$OMNI_BUILD/omnicast" --config "$T/omni.conf" enqueue "$T/job.json" >/dev/null ||
  fail "the CLI could not enqueue through the ACL user"
wait_for 60 campaign_done acl1
[ "$(wc -l <"$T/outbox.jsonl")" -eq 2 ] || fail "expected 2 outbox lines"
out=$("$OMNI_BUILD/omnicast" --config "$T/omni.conf" --json status acl1) || fail "CLI status failed"
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["id"]=="acl1" and d["sent"]==2, d' "$out" ||
  fail "CLI status: $out"
# the user from the URL works as well (no redis_username)
sed -e '/^redis_username/d' -e "s|^redis = .*|redis = redis://omni@127.0.0.1:$REDIS_PORT/0|" \
  "$T/omni.conf" >"$T/url-user.conf"
chmod 600 "$T/url-user.conf"
"$OMNI_BUILD/omnicast" --config "$T/url-user.conf" --json status acl1 >/dev/null ||
  fail "the CLI could not authenticate as the URL's user"
grep -q 's3cret-pw' "$T"/daemon.log && fail "the password reached the log"
ok "ACL user with a password file: daemon and CLI authenticate, a campaign runs, the secret stays out of the log"

# a wrong password: a clear error with the address and Redis's answer, /readyz 503
stop_daemon
printf 'wrong-pw\n' >"$T/redis.pw"
: >"$T/daemon.log"
start_daemon "$T/omni.conf"
wait_for 20 grep -q "redis 127.0.0.1:$REDIS_PORT: authentication as omni refused: WRONGPASS" "$T/daemon.log"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/readyz")
[ "$code" = 503 ] || fail "/readyz answered $code with a wrong password"
sleep 3
kill -0 "$DAEMON_PID" || fail "the daemon died on a wrong password"
n=$(grep -c "authentication as omni refused" "$T/daemon.log")
[ "$n" -le 12 ] || fail "$n refusal lines in ~3 s: the retries do not back off"
grep -q 'wrong-pw' "$T/daemon.log" && fail "the password reached the log"
out=$("$OMNI_BUILD/omnicast" --config "$T/omni.conf" status acl1 2>&1) && fail "the CLI worked with a wrong password"
echo "$out" | grep -q "refused the authentication as omni: WRONGPASS" || fail "CLI error: $out"
# the password fixed on the server's side (rotated to what the file says)
rcli ACL SETUSER omni '>wrong-pw' >/dev/null
wait_for 60 curl -sf "http://127.0.0.1:$HTTP_PORT/readyz"
stop_daemon
ok "wrong password: named error with WRONGPASS, backoff ($n lines), /readyz 503, recovers when the password is right"

# what cannot work is refused before start, with the reason and without the secret
for url in "redis://omni:hunter2@127.0.0.1:$REDIS_PORT/0" "rediss://omni:hunter2@127.0.0.1:$REDIS_PORT"; do
  sed "s|^redis = .*|redis = $url|" "$T/omni.conf" >"$T/bad.conf"
  if "$OMNI_BUILD/omnicastd" --config "$T/bad.conf" --check-config >"$T/bad.log" 2>&1; then
    fail "--check-config accepted $url"
  fi
  grep -q "redis: " "$T/bad.log" || fail "no reason for $url: $(cat "$T/bad.log")"
  grep -q hunter2 "$T/bad.log" && fail "the password in the URL was echoed"
done
printf 'x' >"$T/also.pw"
sed "s|^redis_username = omni|redis_username = omni\nredis_password = inline|" "$T/omni.conf" >"$T/both.conf"
"$OMNI_BUILD/omnicastd" --config "$T/both.conf" --check-config >"$T/both.log" 2>&1 &&
  fail "--check-config accepted redis_password and redis_password_file together"
grep -q "redis_password and redis_password_file: give one" "$T/both.log" || fail "both: $(cat "$T/both.log")"
ok "--check-config refuses a password in the URL (also after rediss://) and two passwords, with reasons"
check_logs_clean
