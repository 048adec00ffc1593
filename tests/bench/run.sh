#!/bin/bash
# make bench: whatsapp-text-N end to end on this machine. A private
# redis-server (no persistence) and nginx as the mock WhatsApp Cloud API
# (constant 200 answer with a message id), omnicastd with the whatsapp
# connector pointed at it, one broadcast of N recipients from a Redis list,
# timed from XADD to state=done. Prints key=value lines, msgs_per_s first.
# BENCH_N (default 100000) sets N. Everything stops by PID on exit.
# Knobs: BENCH_TLS (1, the default: nginx on https with a self-signed
# certificate the daemon trusts through tls_ca_file, as towards a real
# provider; 0: plain http), BENCH_HTTP2 (with TLS: 1, the default with the
# native client, nginx offers h2 and the connector runs with its default,
# http2 = auto: the native HTTP/2 client, h2.c; with BENCH_CLIENT=curl it
# asks libcurl's HTTP/2, http2 = true; 0: nginx without h2 and http2 =
# false, HTTP/1.1 keep-alive through the native client over TLS), BENCH_INFLIGHT (max_inflight, 512; 128 with libcurl's HTTP/2: each
# libcurl transfer holds ~30 KiB), BENCH_CONNS (connections: 64 over TLS with
# HTTP/1.1, 4 otherwise), BENCH_PIPELINE (the connector's pipeline: 1 over
# TLS, the connector's default and what a real deployment uses; 64 on plain
# http, where nginx takes pipelined requests), BENCH_CHUNK (chunk_size,
# 500), BENCH_PERF=FILE (perf record the daemon), BENCH_CALIBRATE=0 (skip
# the 3 s nginx-alone calibration, same scheme), BENCH_KEEP=1 (keep the
# temp dir), BENCH_CLIENT=curl (http_client = curl: libcurl's HTTP/1.1, the
# path https took before the native client spoke TLS), BENCH_WAIT_REPLICAS=N (a replica of the private redis-server
# and redis_wait_replicas = N: the cost of WAIT after every claim batch).
N=${BENCH_N:-100000}
TLS=${BENCH_TLS:-1}
# the connector's default (http2 = auto) gives HTTP/2 where the native
# client carries the request, HTTP/1.1 through libcurl
HTTP2=$([ "$TLS" = 1 ] && echo "${BENCH_HTTP2:-$([ "${BENCH_CLIENT:-native}" = native ] && echo 1 || echo 0)}" || echo 0)
H1TLS=$([ "$TLS" = 1 ] && [ "$HTTP2" = 0 ] && echo 1 || echo 0)
CONNS=${BENCH_CONNS:-$([ "$H1TLS" = 1 ] && echo 64 || echo 4)}
PIPELINE=${BENCH_PIPELINE:-$([ "$TLS" = 1 ] && echo 1 || echo 64)}
source "$(dirname "$0")/lib.sh"
command -v nginx >/dev/null || { echo "bench: nginx missing (make deps installs nginx-light)" >&2; exit 1; }
NP=$(free_port)
start_bench_redis
WAITR=${BENCH_WAIT_REPLICAS:-0}
# BENCH_REPLICA=1: the replica without WAIT (what replication alone costs)
REPLICA=${BENCH_REPLICA:-$([ "$WAITR" -gt 0 ] && echo 1 || echo 0)}
if [ "$REPLICA" = 1 ]; then
  RP2=$(free_port)
  mkdir -p "$T/replica"
  redis-server --port "$RP2" --bind 127.0.0.1 --save '' --appendonly no --dir "$T/replica" \
    --logfile "$T/replica.log" --daemonize no --replicaof 127.0.0.1 "$RP" &
  PIDS+=($!)
  for _ in $(seq 1 100); do
    redis-cli -p "$RP2" INFO replication 2>/dev/null | grep -q master_link_status:up && break
    sleep 0.1
  done
fi

mkdir -p "$T/nginx"
# 128 in flight for libcurl's HTTP/2 (each transfer holds ~30 KiB); 512
# for the native clients, HTTP/2 included (a stream is a few hundred bytes)
INFLIGHT=${BENCH_INFLIGHT:-$([ "$HTTP2" = 1 ] && [ "${BENCH_CLIENT:-native}" = curl ] && echo 128 || echo 512)}
CP=$NP # stub_status, always plain http
SCHEME=http LISTEN="127.0.0.1:$NP" TLS_CONF=""
if [ "$TLS" = 1 ]; then
  command -v openssl >/dev/null || { echo "bench: openssl missing (make deps installs it)" >&2; exit 1; }
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null
  CP=$(free_port)
  SCHEME=https LISTEN="127.0.0.1:$NP ssl$([ "$HTTP2" = 1 ] && echo " http2" || true)"
  TLS_CONF="ssl_certificate $T/cert.pem; ssl_certificate_key $T/key.pem; listen 127.0.0.1:$CP;"
fi
# The answer: with HTTP/2 nginx reads the request body first, as a real API
# does. Answering an HTTP/2 request before its body arrived ends the stream
# with RST_STREAM NO_ERROR, and libcurl 7.88 then sometimes drops the
# answer: an ambiguous failure, retried, sent twice. The body is read by the
# mirror module (mirror_request_body reads it whole before the request goes
# on; the mirror subrequest is an internal 204), then the content phase finds
# no file and error_page answers from @answer. This used to be a proxy_pass
# to a plain location of the same nginx: a second request per message that
# cost nginx ~100 us of CPU per message instead of ~35 (h2load, 2026-11-30),
# CPU the 2-core machine took from the daemon. Over plain HTTP/1.1 nginx
# reads and discards the body anyway.
ANSWER="return 200 '{\"messaging_product\":\"whatsapp\",\"contacts\":[{\"input\":\"15550000001\",\"wa_id\":\"15550000001\"}],\"messages\":[{\"id\":\"wamid.HBgLMTU1NTAwMDAwMDEVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA\"}]}';"
MESSAGES=$ANSWER
[ "$HTTP2" = 1 ] && MESSAGES="mirror /_drain; mirror_request_body on; root $T/nginx/none; error_page 403 404 405 = @answer;"
cat >"$T/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  client_body_temp_path $T/nginx/body;
  proxy_temp_path $T/nginx/proxy;
  fastcgi_temp_path $T/nginx/fastcgi;
  uwsgi_temp_path $T/nginx/uwsgi;
  scgi_temp_path $T/nginx/scgi;
  server {
    listen $LISTEN;
    $TLS_CONF
    location = /_count { stub_status; }
    location = /v21.0/1234567890/messages {
      default_type application/json;
      $MESSAGES
    }
    location = /_drain { internal; return 204; }
    location @answer {
      default_type application/json;
      $ANSWER
    }
  }
}
CONF
nginx -c "$T/nginx/nginx.conf" -p "$T/nginx" &
NGINX_PID=$!; PIDS+=($NGINX_PID)
for _ in $(seq 1 100); do curl -s "127.0.0.1:$CP/_count" >/dev/null && break; sleep 0.1; done

# calibration: what nginx alone answers on this machine right now (wrk, one
# thread, 64 connections, 3 s, the same POST); BENCH_CALIBRATE=0 skips it
calib=""
if [ "${BENCH_CALIBRATE:-1}" != 0 ] && command -v wrk >/dev/null; then
  cat >"$T/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"messaging_product":"whatsapp","recipient_type":"individual","to":"+15550000001","type":"text","text":{"preview_url":false,"body":"Hi User1, our Black Friday sale starts now: 30% off everything."}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer testtoken"
LUA
  calib=$(wrk -t1 -c64 -d3s -s "$T/post.lua" "$SCHEME://127.0.0.1:$NP/v21.0/1234567890/messages" |
    awk '/Requests\/sec/ {printf "%.0f", $2}')
fi
# with HTTP/2 and h2load (Debian's nghttp2-client) also nginx's own HTTP/2
# ceiling: the same POST over 4 connections, 32 streams each, 3 s
calib_h2=""
if [ "${BENCH_CALIBRATE:-1}" != 0 ] && [ "$HTTP2" = 1 ] && command -v h2load >/dev/null; then
  printf '%s' '{"messaging_product":"whatsapp","recipient_type":"individual","to":"+15550000001","type":"text","text":{"preview_url":false,"body":"Hi User1, our Black Friday sale starts now: 30% off everything."}}' >"$T/post.json"
  calib_h2=$(h2load -t1 -c4 -m32 -D3 -d "$T/post.json" -H 'Content-Type: application/json' \
    -H 'Authorization: Bearer testtoken' "$SCHEME://127.0.0.1:$NP/v21.0/1234567890/messages" 2>/dev/null |
    awk '/^finished in/ {gsub(",", "", $4); printf "%.0f", $4}')
fi
fill_bench_list bench:list "$N" '{"to":"+1555%07d","vars":{"name":"User%d"}}'

cat >"$T/omni.conf" <<CONF
[daemon]
redis = redis://127.0.0.1:$RP/0
consumer = bench
log_level = warn
chunk_size = ${BENCH_CHUNK:-500}
max_host_connections = $CONNS
max_total_connections = $CONNS
redis_wait_replicas = $WAITR
$([ "$TLS" = 1 ] && echo "tls_ca_file = $T/cert.pem")

[connector.wa]
type = whatsapp
api_base = $SCHEME://127.0.0.1:$NP
phone_number_id = 1234567890
access_token = testtoken
max_inflight = $INFLIGHT
pipeline = $PIPELINE
http2 = $([ "$HTTP2" = 0 ] && echo false || { [ "${BENCH_CLIENT:-native}" = native ] && echo auto || echo true; })
http_client = ${BENCH_CLIENT:-native}
# unpaced: the benchmark measures the daemon, not a number's 80/s tier (the whatsapp default)
rate_per_s = 0
# the bench measures text sends (whatsapp-text, comparable with the figures
# in docs/performance.md) to a mock: no customer service window, else the
# whatsapp default (86400) refuses a text broadcast at intake
session_window_s = 0

[channels]
whatsapp = wa
CONF
start_bench_daemon
for _ in $(seq 1 100); do redis-cli -p "$RP" EXISTS omni:jobs | grep -q 1 && break; sleep 0.05; done

hz=$(getconf CLK_TCK)
nginx_worker=$(pgrep -P "$NGINX_PID" | head -1 || echo "$NGINX_PID")
d0=$(ticks "$DAEMON_PID"); r0=$(ticks "$REDIS_PID"); n0=$(ticks "$nginx_worker")
req0=$(curl -s "127.0.0.1:$CP/_count" | awk '/^ *[0-9]+ +[0-9]+ +[0-9]+/ {print $3}')
m0=$(redis-cli -p "$RP" INFO memory | awk -F: '/^used_memory:/ {print $2+0}')
redis-cli -p "$RP" CONFIG RESETSTAT >/dev/null
t0=$(date +%s.%N)
redis-cli -p "$RP" XADD omni:jobs '*' job '{"type":"broadcast","id":"bench","channel":"whatsapp","message":{"text":"Hi {{name}}, our Black Friday sale starts now: 30% off everything."},"recipients_list":"bench:list"}' >/dev/null
wait_campaign_done bench
t1=$(date +%s.%N)
d1=$(ticks "$DAEMON_PID"); r1=$(ticks "$REDIS_PID"); n1=$(ticks "$nginx_worker")
req1=$(curl -s "127.0.0.1:$CP/_count" | awk '/^ *[0-9]+ +[0-9]+ +[0-9]+/ {print $3}')
rss=$(awk '/VmHWM/ {print $2}' "/proc/$DAEMON_PID/status")
m1=$(redis-cli -p "$RP" INFO memory | awk -F: '/^used_memory:/ {print $2+0}')
stop_perf
cmdstats=$(redis-cli -p "$RP" INFO commandstats | tr -d '\r')
sent=$(redis-cli -p "$RP" --raw HGET omni:campaign:bench sent)
send_figures whatsapp-text nginx "$n0" "$n1"
python3 - <<PY
n = $N
# what the campaign left in Redis per message: its record, the provider-id
# index, the contact, the recipients snapshot (the source list was there
# before the clock started)
print("redis_bytes_per_msg=%.0f" % (($m1 - $m0) / n))
print("connections=$CONNS")
print("max_inflight=$INFLIGHT")
print("pipeline=$PIPELINE")
print("redis_wait_replicas=$WAITR")
print("replica=$REPLICA")
print("transport=%s" % (("libcurl, https, HTTP/2" if "${BENCH_CLIENT:-native}" == "curl" else "native HTTP/2 over TLS") if "$HTTP2" == "1" else
                         "libcurl HTTP/1.1" + (" over TLS" if "$TLS" == "1" else "") if "${BENCH_CLIENT:-native}" == "curl" else
                         "native HTTP/1.1 over TLS" if "$TLS" == "1" else "native HTTP/1.1, plain http"))
# nginx counts client requests only (not the mirror's subrequests)
print("nginx_requests=%d" % ($req1 - $req0 - 1))
if "$calib": print("nginx_alone_rps=$calib")
if "$calib_h2": print("nginx_alone_h2_rps=$calib_h2")
print("scheme=$SCHEME")
# Redis's own accounting (INFO commandstats, reset as the clock started):
# script calls per 1,000 messages (each claim, outcome and next batch is
# one EVALSHA), Redis's time inside them per message, and the commands the
# scripts ran per message
st = {}
for line in """$cmdstats""".splitlines():
    m = __import__("re").match(r"cmdstat_([a-z|]+):calls=(\d+),usec=(\d+)", line)
    if m: st[m.group(1)] = (int(m.group(2)), int(m.group(3)))
ev = st.get("evalsha", (0, 0))
print("redis_scripts_per_1k_msgs=%.1f" % (ev[0] * 1000 / n))
print("redis_script_us_per_msg=%.1f" % (ev[1] / n))
print("redis_commands_per_msg=%.2f" % (sum(c for k, (c, u) in st.items() if k != "evalsha") / n))
PY
