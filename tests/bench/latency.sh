#!/bin/bash
# make bench-latency: the send path against a provider far away. A TLS
# provider that answers every send BENCH_DELAY_MS (100) after it read it
# (tests/bench/latency_server.py: HTTP/2 or HTTP/1.1 keep-alive, as ALPN
# decides), a private redis-server, omnicastd with the whatsapp connector
# at its defaults (max_inflight 512 here: the bench's), one broadcast of
# BENCH_N (5000) recipients; run once with http2 = auto (the default: HTTP/2)
# and once with http2 = false (HTTP/1.1, max_host_connections = 64, no
# pipelining). Prints key=value lines per run. On loopback a request costs
# no time on the wire, which hides what multiplexing is for; this puts the
# round trip of a real provider back. Everything stops by PID on exit.
BENCH_NAME=latency
source "$(dirname "$0")/lib.sh"
N=${BENCH_N:-5000}
DELAY=${BENCH_DELAY_MS:-100}
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null
start_bench_redis
/usr/bin/python3 "$(dirname "$0")/latency_server.py" --cert "$T/cert.pem" --key "$T/key.pem" \
  --port-file "$T/port" --record "$T/conns.jsonl" --delay-ms "$DELAY" >"$T/server.log" 2>&1 &
SERVER_PID=$!; PIDS+=($SERVER_PID)
for _ in $(seq 1 100); do [ -s "$T/port" ] && break; sleep 0.1; done
PORT=$(cat "$T/port")

run() { # run NAME HTTP2
  local name=$1 h2=$2
  fill_bench_list "lat:$name" "$N" '{"to":"+1555%07d","vars":{"name":"User%d"}}'
  cat >"$T/omni-$name.conf" <<CONF
[daemon]
redis = redis://127.0.0.1:$RP/0
consumer = lat-$name
log_level = warn
tls_ca_file = $T/cert.pem

[connector.wa]
type = whatsapp
api_base = https://127.0.0.1:$PORT
phone_number_id = 1234567890
access_token = testtoken
max_inflight = 512
http2 = $h2
rate_per_s = 0
session_window_s = 0

[channels]
whatsapp = wa
CONF
  cp "$T/omni-$name.conf" "$T/omni.conf"
  start_bench_daemon
  for _ in $(seq 1 100); do redis-cli -p "$RP" EXISTS omni:jobs | grep -q 1 && break; sleep 0.05; done
  hz=$(getconf CLK_TCK)
  d0=$(ticks "$DAEMON_PID")
  t0=$(date +%s.%N)
  redis-cli -p "$RP" XADD omni:jobs '*' job "{\"type\":\"broadcast\",\"id\":\"lat-$name\",\"channel\":\"whatsapp\",\"message\":{\"text\":\"Hi {{name}}\"},\"recipients_list\":\"lat:$name\"}" >/dev/null
  wait_campaign_done "lat-$name"
  t1=$(date +%s.%N)
  d1=$(ticks "$DAEMON_PID")
  sent=$(redis-cli -p "$RP" --raw HGET "omni:campaign:lat-$name" sent)
  kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null || true
  python3 - <<PY
n, el = $N, $t1 - $t0
print("run=$name http2=$h2 msgs_per_s=%.0f elapsed_s=%.2f sent=$sent daemon_cpu_us_per_msg=%.1f"
      % (n / el, el, ($d1 - $d0) / $hz / n * 1e6))
PY
}
run auto auto
run h1 false
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
python3 - "$T/conns.jsonl" <<'PY'
import collections, json, sys
by = collections.defaultdict(lambda: [0, 0])
for line in open(sys.argv[1]):
    r = json.loads(line)
    by[r["alpn"]][0] += 1
    by[r["alpn"]][1] += r["requests"]
for alpn, (c, n) in sorted(by.items()):
    print("provider alpn=%s connections=%d requests=%d" % (alpn, c, n))
PY
echo "delay_ms=$DELAY recipients=$N"
