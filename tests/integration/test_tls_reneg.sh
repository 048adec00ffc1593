#!/bin/bash
# The native HTTP/1.1 client and a server that asks for renegotiation (TLS
# 1.2 HelloRequest) or updates its keys (TLS 1.3 KeyUpdate), judged by what
# the server (tests/mock/tls_reneg_server.c) received. The client refuses
# renegotiation (SSL_OP_NO_RENEGOTIATION: a no_renegotiation warning alert)
# and goes on reading: an answer the server sends anyway is an answer
# (sent); a server that insists (waits for the renegotiation, fails its
# handshake, drops the connection) leaves the request written and
# unanswered: uncertain, never written again. A KeyUpdate is not a
# renegotiation: the client updates its keys too and the connection goes on.
# KeyUpdates answered while the socket is full (the server reads nothing for
# a while) go out as soon as it takes them, and the client does not spin on
# its read event meanwhile.
source "$(dirname "$0")/lib.sh"

SRV="$OMNI_BUILD/tests/tls_reneg_server"
[ -x "$SRV" ] || fail "no $SRV (build the mocks)"
start_redis
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$T/srv.key" -out "$T/srv.pem" 2>/dev/null ||
  fail "openssl: the certificate"
reneg_server() { # NAME TLS-VERSION [ARGS...]
  local name=$1 v=$2; shift 2
  "$SRV" --cert "$T/srv.pem" --key "$T/srv.key" --tls "$v" --port-file "$T/$name.port" \
    --log "$T/$name.log" "$@" >"$T/$name.out" 2>&1 &
  PIDS+=($!)
  wait_for 20 test -s "$T/$name.port"
}
reneg_server r12 1.2
reneg_server k13 1.3
reneg_server ks13 1.3 --rcvbuf 4096 --sndbuf 65536 --mss 536
R12=$(cat "$T/r12.port")
K13=$(cat "$T/k13.port")
KS13=$(cat "$T/ks13.port")
HTTP=$(free_port)
hook() { # NAME PORT PATH: a webhook connector, one request at a time
  printf '\n[connector.%s]\ntype = webhook\nurl = https://127.0.0.1:%s/%s\nhttp2 = false\nmax_inflight = 1\ntimeout_ms = 10000\n' "$1" "$2" "$3"
}
daemon_conf "$T/omni.conf" "
http_listen = 127.0.0.1:$HTTP
tls_ca_file = $T/srv.pem
max_attempts = 3
$(hook before "$R12" r/reneg-before)
$(hook mid "$R12" r/reneg-mid)
$(hook wait "$R12" r/reneg-wait)
$(hook ku "$K13" k/keyupdate)
$(hook kus "$KS13" k/keyupdate-stall | sed 's/^timeout_ms = .*/timeout_ms = 40000/')

[channels]
before = before
mid = mid
wait = wait
ku = ku
kus = kus"
start_daemon "$T/omni.conf"
wait_for 20 curl -sf "http://127.0.0.1:$HTTP/readyz"

for c in before mid wait; do
  enqueue "{\"type\":\"broadcast\",\"id\":\"rn-$c\",\"channel\":\"$c\",\"message\":{\"text\":\"x\"},\"recipients\":[{\"to\":\"u1\"},{\"to\":\"u2\"}]}"
done
enqueue '{"type":"broadcast","id":"rn-ku","channel":"ku","message":{"text":"x"},"recipients":[{"to":"u1"},{"to":"u2"},{"to":"u3"}]}'
for c in before mid wait ku; do wait_for 60 campaign_done "rn-$c"; done
metric() { curl -sf "http://127.0.0.1:$HTTP/metrics" | awk -v k="$1" '$1 == k {print $2}'; }
nat_tls=$(metric 'omnicast_transfers_total{client="native_tls"}')
curl_n=$(metric 'omnicast_transfers_total{client="curl"}')
[ "${nat_tls:-0}" -ge 9 ] && [ "${curl_n:-1}" = 0 ] ||
  fail "the native client did not carry them: native_tls $nat_tls, curl $curl_n"
state() { rraw HGET "omni:msg:rn-$1" "$1:$2"; }
reqs() { grep -c "^req /$1\$" "$T/$2.log"; }

# ---- a HelloRequest before or inside the answer, the answer sent anyway
for c in before mid; do
  for u in u1 u2; do
    s=$(state "$c" "$u")
    echo "$s" | q '"state":"sent"' || fail "reneg-$c: $u is not sent: $s"
    echo "$s" | q 'unreadable_answer' && fail "reneg-$c: the answer of $u was not read whole: $s"
  done
  [ "$(reqs "r/reneg-$c" r12)" = 2 ] || fail "reneg-$c: the server read $(reqs "r/reneg-$c" r12) requests, not 2"
done
grep -q 'alert=no renegotiation' "$T/r12.log" ||
  fail "the client did not refuse renegotiation with a no_renegotiation alert: $(cat "$T/r12.log")"
ok "a HelloRequest before and inside an answer: refused (no_renegotiation), the answer read whole, each request once"

# ---- a server that insists on renegotiating drops the connection: the
# request went and got no answer: uncertain, never written again
for u in u1 u2; do
  s=$(state wait "$u")
  echo "$s" | q '"state":"uncertain"' || fail "reneg-wait: $u is not uncertain: $s"
  echo "$s" | q 'ambiguous_reset' || fail "reneg-wait: $u is not ambiguous_reset: $s"
done
[ "$(reqs r/reneg-wait r12)" = 2 ] ||
  fail "reneg-wait: the server read $(reqs r/reneg-wait r12) requests for 2 recipients (a request written twice?)"
ok "a server that waits for the renegotiation: the connection dies, each request uncertain (ambiguous_reset), read once"

# ---- TLS 1.3 KeyUpdate (update_requested) before and inside each answer:
# answered, the client's keys updated, the connection kept
for u in u1 u2 u3; do
  s=$(state ku "$u")
  echo "$s" | q '"state":"sent"' || fail "keyupdate: $u is not sent: $s"
done
[ "$(reqs k/keyupdate k13)" = 3 ] || fail "keyupdate: the server read $(reqs k/keyupdate k13) requests, not 3"
# the connections end when the daemon stops (or at keepalive_idle_ms)
stop_daemon
wait_for 20 grep -q '^conn ' "$T/k13.log"
python3 - "$T/k13.log" <<'PY' || fail "keyupdate: $(cat "$T/k13.log")"
import re, sys
conns = [l for l in open(sys.argv[1]) if l.startswith("conn ")]
reqs = sum(int(re.search(r"requests=(\d+)", l).group(1)) for l in conns)
kus = sum(int(re.search(r"client_keyupdates=(\d+)", l).group(1)) for l in conns)
assert reqs == 3, conns
# each answer carries two KeyUpdates asking for one back
assert kus >= 3, conns
# kept alive: fewer connections than requests
assert len(conns) < 3, conns
PY
ok "TLS 1.3 KeyUpdate inside answers: each answered, the client updated its keys, the connection kept ($(grep -c '^conn ' "$T/k13.log") connection(s) for 3 requests)"

# ---- KeyUpdates asking for one back while the server reads nothing (a 4
# KiB receive buffer, a 536-byte MSS): the client's answers fill its socket and it has
# nothing of its own to write. It must not spin on its readable socket
# meanwhile (SSL_read would only ask for the write again), and the answers
# must go out as soon as the socket takes them, before the server (quiet
# for a second) answers the request.
start_daemon "$T/omni.conf" daemon2
wait_for 20 curl -sf "http://127.0.0.1:$HTTP/readyz"
cpu() { awk '{print $14 + $15}' "/proc/$DAEMON_PID/stat"; }
# what the daemon uses idle over 2 s (a sanitizer build uses more)
c0=$(cpu)
sleep 2
idle=$(($(cpu) - c0))
enqueue '{"type":"broadcast","id":"rn-kus","channel":"kus","message":{"text":"x"},"recipients":[{"to":"u1"}]}'
# the daemon's CPU over 2 s of the server's 4 s stall, from 1.5 s into it
# (a slow build may still be answering what OpenSSL read ahead)
wait_for 60 grep -q '^flood ' "$T/ks13.log"
sleep 1.5
c0=$(cpu)
sleep 2
ticks=$(($(cpu) - c0))
hz=$(getconf CLK_TCK)
wait_for 60 campaign_done rn-kus
s=$(state kus u1)
echo "$s" | q '"state":"sent"' || fail "keyupdate-stall: u1 is not sent: $s"
stall=$(grep '^stall ' "$T/ks13.log")
python3 - "$stall" <<'PY' ||
import re, sys
n, k = map(int, re.match(r"stall keyupdates=(\d+) client_keyupdates=(\d+)$", sys.argv[1]).groups())
# each KeyUpdate answered (OpenSSL answers one as it reads the next, RFC
# 8446 4.6.3 allows it to wait for its next write: the last one waits)
assert n >= 100 and k >= n - 1, (n, k)
PY
  fail "keyupdate-stall: the client's KeyUpdates did not all leave once the socket took them: $stall (daemon CPU $ticks/$hz s)"
[ "$ticks" -lt $((idle + hz * 2 / 5)) ] ||
  fail "keyupdate-stall: the daemon used $ticks/$hz s of CPU over 2 s of the server's stall, $idle/$hz idle (a spin)"
stop_daemon
ok "$(echo "$stall" | sed "s/stall keyupdates=\([0-9]*\) client_keyupdates=\([0-9]*\)/\1 KeyUpdates asking for one back while the server read nothing: \2 answered once it read/"), $((ticks * 1000 / hz)) ms of daemon CPU over 2 s of its stall ($((idle * 1000 / hz)) ms idle)"

check_logs_clean
