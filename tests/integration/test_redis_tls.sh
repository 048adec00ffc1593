#!/bin/bash
# rediss://: a Redis that only speaks TLS (--port 0), its certificate from
# a CA the test makes, an ACL user with a password file and the default
# user off, as a managed Redis is set up. The daemon (every connection)
# and the CLI connect over TLS, verify the certificate and the host name
# (a name and an IP address), and a campaign runs through the outbox; a
# wrong CA or a wrong name is refused with a clear error and /readyz 503;
# a Redis that requires client certificates lets in the daemon and the CLI
# with redis_tls_cert_file + redis_tls_key_file and refuses them without.
source "$(dirname "$0")/lib.sh"


# a CA, a server certificate for localhost and 127.0.0.1, a client
# certificate from the same CA, and an unrelated CA
cd "$T"
ossl() { openssl "$@" >>"$T/openssl.out" 2>&1 || fail "openssl $1 failed: $(tail -3 "$T/openssl.out")"; }
ossl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=omnicast test CA"
ossl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.pem -days 2 -subj "/CN=some other CA"
ossl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost"
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >server.ext
ossl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile server.ext
ossl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj "/CN=omnicast client"
printf 'extendedKeyUsage=clientAuth\n' >client.ext
ossl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2 -extfile client.ext
chmod 600 ./*.key
cd - >/dev/null

REDIS_PORT=$(free_port)
rcli() {
  redis-cli --tls --cacert "$T/ca.pem" --cert "$T/client.pem" --key "$T/client.key" -h localhost \
    -p "$REDIS_PORT" --user omni --pass s3cret-pw --no-auth-warning --no-raw "$@"
}
rraw() {
  redis-cli --tls --cacert "$T/ca.pem" --cert "$T/client.pem" --key "$T/client.key" -h localhost \
    -p "$REDIS_PORT" --user omni --pass s3cret-pw --no-auth-warning --raw "$@"
}
# the ACL of a managed Redis: a user for omnicast, the default user off
mkdir -p "$T/redis"
printf 'user default off\nuser omni on >s3cret-pw ~* &* +@all\n' >"$T/redis/users.acl"
REDIS_ACL=(--aclfile "$T/redis/users.acl")
start_tls_redis_acl() {
  mkdir -p "$T/redis"
  redis-server --port 0 --tls-port "$REDIS_PORT" --bind 127.0.0.1 --tls-cert-file "$T/server.pem" \
    --tls-key-file "$T/server.key" --tls-ca-cert-file "$T/ca.pem" --tls-auth-clients "$1" \
    "${REDIS_ACL[@]}" --save '' --appendonly no --dir "$T/redis" --logfile "$T/redis.log" \
    --daemonize no &
  REDIS_PID=$!
  PIDS+=("$REDIS_PID")
  wait_for 20 rcli ping
}
start_tls_redis_acl no
# nothing but TLS, and only the omni user
redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && fail "Redis answered in plain text"
redis-cli --tls --cacert "$T/ca.pem" -h localhost -p "$REDIS_PORT" ping 2>&1 | grep -q PONG &&
  fail "the default user still works"

printf 's3cret-pw\n' >"$T/redis.pw"
chmod 600 "$T/redis.pw"
HTTP_PORT=$(free_port)
REDIS_URL="rediss://omni@localhost:$REDIS_PORT/0"
daemon_conf "$T/omni.conf" "
redis_password_file = $T/redis.pw
redis_tls_ca_file = $T/ca.pem
http_listen = 127.0.0.1:$HTTP_PORT

[connector.out]
type = outbox
path = $T/outbox.jsonl

[channels]
sms = out"
sed -i "s|^redis = .*|redis = $REDIS_URL|" "$T/omni.conf"
chmod 600 "$T/omni.conf"
"$OMNI_BUILD/omnicastd" --config "$T/omni.conf" --check-config >"$T/check.log" 2>&1 ||
  fail "check-config refused a good TLS configuration: $(cat "$T/check.log")"
start_daemon "$T/omni.conf"
wait_for 30 curl -sf "http://127.0.0.1:$HTTP_PORT/readyz"
# every connection of the daemon is a TLS client of the omni user
n=$(rraw CLIENT LIST | grep -c 'user=omni' || true)
[ "$n" -ge 4 ] || fail "expected the daemon's 3 connections (and ours) as omni: $(rraw CLIENT LIST)"

echo '{"type":"broadcast","id":"tls1","channel":"sms","message":{"text":"Hi {{name}}"},"recipients":[{"to":"+15550000001","vars":{"name":"Ana"}},{"to":"+15550000002","vars":{"name":"Bo"}},{"to":"+15550000003","vars":{"name":"Cy"}}]}' >"$T/job.json"
"$OMNI_BUILD/omnicast" --config "$T/omni.conf" enqueue "$T/job.json" >/dev/null ||
  fail "the CLI could not enqueue over TLS"
wait_for 60 campaign_done tls1
[ "$(wc -l <"$T/outbox.jsonl")" -eq 3 ] || fail "expected 3 outbox lines: $(cat "$T/outbox.jsonl")"
grep -q '"Hi Bo"' "$T/outbox.jsonl" || fail "outbox: $(cat "$T/outbox.jsonl")"
[ "$(campaign_field tls1 sent)" = 3 ] || fail "sent: $(rraw HGETALL omni:campaign:tls1 | tr '\n' ' ')"
counters_add_up tls1 || fail "counters do not add up"
out=$("$OMNI_BUILD/omnicast" --config "$T/omni.conf" --json status tls1) || fail "CLI status failed: $out"
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["id"]=="tls1" and d["sent"]==3, d' "$out" ||
  fail "CLI status: $out"
# an IP address in the URL is checked against the certificate's IP entry
sed "s|^redis = .*|redis = rediss://omni@127.0.0.1:$REDIS_PORT/0|" "$T/omni.conf" >"$T/ip.conf"
"$OMNI_BUILD/omnicast" --config "$T/ip.conf" --json status tls1 >/dev/null ||
  fail "the CLI could not connect to 127.0.0.1 (IP SAN)"
grep -q 's3cret-pw' "$T"/daemon.log && fail "the password reached the log"
ok "rediss:// with a private CA, an ACL user and a password file: daemon and CLI over TLS, a campaign runs"

# refused certificates: a clear error naming the address, /readyz 503, no crash
stop_daemon
check_refused() { # CONF WHAT-IN-THE-LOG
  : >"$T/daemon.log"
  start_daemon "$1"
  wait_for 30 grep -q "redis localhost:$REDIS_PORT: connect failed: $2" "$T/daemon.log"
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/readyz")
  [ "$code" = 503 ] || fail "/readyz answered $code with $1"
  sleep 2
  kill -0 "$DAEMON_PID" || fail "the daemon died on $2"
  n=$(grep -c "connect failed" "$T/daemon.log")
  [ "$n" -le 12 ] || fail "$n connect failures in ~2 s: the retries do not back off"
  stop_daemon
  out=$("$OMNI_BUILD/omnicast" --config "$1" status tls1 2>&1) && fail "the CLI connected with $1"
  echo "$out" | grep -q "cannot connect to Redis at localhost:$REDIS_PORT: $2" || fail "CLI error: $out"
}
sed "s|^redis_tls_ca_file = .*|redis_tls_ca_file = $T/other.pem|" "$T/omni.conf" >"$T/wrong-ca.conf"
check_refused "$T/wrong-ca.conf" "certificate verify failed"
printf 'redis_tls_server_name = redis.example.com\n' >"$T/name.ini"
sed "/^redis_tls_ca_file/r $T/name.ini" "$T/omni.conf" >"$T/wrong-name.conf"
check_refused "$T/wrong-name.conf" "certificate verify failed: hostname mismatch"
ok "a certificate from another CA and a wrong host name are refused: named error, /readyz 503, backoff"

# client certificates required
stop_redis
start_tls_redis_acl yes
: >"$T/daemon.log"
start_daemon "$T/omni.conf"
# the alert, or (when the server's reset beat it to the daemon's read) the
# named guess at it
wait_for 30 grep -Eq "redis localhost:$REDIS_PORT: .*(alert certificate required|if it requires a client certificate, set redis_tls_cert_file)" "$T/daemon.log"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/readyz")
[ "$code" = 503 ] || fail "/readyz answered $code without a client certificate"
stop_daemon
out=$("$OMNI_BUILD/omnicast" --config "$T/omni.conf" status tls1 2>&1) &&
  fail "the CLI got in without a client certificate"
echo "$out" | grep -q "cannot connect to Redis at localhost:$REDIS_PORT: .*certificate required" ||
  fail "CLI error without a client certificate: $out"
printf 'redis_tls_cert_file = %s\nredis_tls_key_file = %s\n' "$T/client.pem" "$T/client.key" >"$T/cert.ini"
sed "/^redis_tls_ca_file/r $T/cert.ini" "$T/omni.conf" >"$T/cert.conf"
chmod 600 "$T/cert.conf"
"$OMNI_BUILD/omnicastd" --config "$T/cert.conf" --check-config >"$T/check.log" 2>&1 ||
  fail "check-config refused the client certificate: $(cat "$T/check.log")"
: >"$T/daemon.log"
start_daemon "$T/cert.conf"
wait_for 30 curl -sf "http://127.0.0.1:$HTTP_PORT/readyz"
sed 's/"tls1"/"tls2"/' "$T/job.json" >"$T/job2.json"
"$OMNI_BUILD/omnicast" --config "$T/cert.conf" enqueue "$T/job2.json" >/dev/null ||
  fail "the CLI could not enqueue with a client certificate"
wait_for 60 campaign_done tls2
[ "$(wc -l <"$T/outbox.jsonl")" -eq 6 ] || fail "expected 6 outbox lines: $(cat "$T/outbox.jsonl")"
out=$("$OMNI_BUILD/omnicast" --config "$T/cert.conf" --json status tls2) || fail "CLI status: $out"
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["sent"]==3, d' "$out" || fail "status: $out"
ok "tls-auth-clients yes: refused without a client certificate, a campaign runs with cert + key"

# Redis goes away and comes back: the TLS connections are rebuilt
stop_redis
wait_for 30 grep -q "redis: connection lost" "$T/daemon.log"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/readyz")
[ "$code" = 503 ] || fail "/readyz answered $code with Redis down"
start_tls_redis_acl yes
wait_for 60 curl -sf "http://127.0.0.1:$HTTP_PORT/readyz"
sed 's/"tls1"/"tls3"/' "$T/job.json" >"$T/job3.json"
"$OMNI_BUILD/omnicast" --config "$T/cert.conf" enqueue "$T/job3.json" >/dev/null || fail "enqueue tls3"
wait_for 60 campaign_done tls3
[ "$(wc -l <"$T/outbox.jsonl")" -eq 9 ] || fail "expected 9 outbox lines: $(cat "$T/outbox.jsonl")"
stop_daemon
ok "a restarted Redis: TLS connections rebuilt, /readyz 503 meanwhile, the next campaign runs"

# a key that is not the certificate's stops --check-config, as does the
# TLS settings without rediss://
sed "s|^redis_tls_key_file = .*|redis_tls_key_file = $T/server.key|" "$T/cert.conf" >"$T/badkey.conf"
"$OMNI_BUILD/omnicastd" --config "$T/badkey.conf" --check-config >"$T/bad.log" 2>&1 &&
  fail "--check-config accepted a key that is not the certificate's"
grep -q "redis_tls_key_file" "$T/bad.log" || fail "bad key: $(cat "$T/bad.log")"
sed "s|^redis = .*|redis = redis://omni@localhost:$REDIS_PORT/0|" "$T/omni.conf" >"$T/plain.conf"
"$OMNI_BUILD/omnicastd" --config "$T/plain.conf" --check-config >"$T/bad.log" 2>&1 &&
  fail "--check-config accepted redis_tls_ca_file with redis://"
grep -q "redis_tls_ca_file is for a rediss://" "$T/bad.log" || fail "plain: $(cat "$T/bad.log")"
ok "--check-config loads the TLS files and refuses a mismatched key and TLS settings without rediss://"

# a server that resets right after the handshake, its alert (if any) lost:
# the daemon names the likely reason instead of a bare close
python3 "$OMNI_SRC/tests/mock/tls_reset_server.py" "$T/server.pem" "$T/server.key" >"$T/reset.port" &
PIDS+=("$!")
wait_for 20 test -s "$T/reset.port"
RESET_PORT=$(cat "$T/reset.port")
sed "s|^redis = .*|redis = rediss://omni@localhost:$RESET_PORT/0|" "$T/omni.conf" >"$T/reset.conf"
: >"$T/daemon.log"
start_daemon "$T/reset.conf"
wait_for 30 grep -q "redis localhost:$RESET_PORT: .*closed by the server right after the TLS handshake (if it requires a client certificate, set redis_tls_cert_file)" "$T/daemon.log"
stop_daemon
ok "a reset right after the handshake is logged with the client certificate as the likely reason"
check_logs_clean
