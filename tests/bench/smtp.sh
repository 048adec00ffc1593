#!/bin/bash
# make bench-smtp: email-text-N end to end. A private redis-server and
# postfix's smtp-sink (a real SMTP server that accepts and discards mail,
# announcing PIPELINING) on 127.0.0.1, omnicastd with the smtp connector
# (plain SMTP, no TLS) pointed at it, one broadcast of N recipients
# (user<i>@example.com, var name) from a Redis list, timed from XADD to
# state=done. Prints key=value lines, msgs_per_s first; sink_messages is
# what smtp-sink counted (must equal N). BENCH_N (default 20000),
# BENCH_INFLIGHT (default 64), BENCH_CONNS (default 32) and
# BENCH_SMTP_CLIENT (smtp_client: native, the default, or curl).
N=${BENCH_N:-20000}
BENCH_NAME=sbench
source "$(dirname "$0")/lib.sh"
SINK=$(command -v smtp-sink || echo /usr/sbin/smtp-sink)
[ -x "$SINK" ] || { echo "bench: smtp-sink missing (make bench-smtp installs postfix)" >&2; exit 1; }
SP=$(free_port)
start_bench_redis

# -c: count deliveries on stdout; -u: drop root after binding; backlog 512
user=$(id -un); [ "$(id -u)" = 0 ] && user=nobody
"$SINK" -c -u "$user" "127.0.0.1:$SP" 512 >"$T/sink.out" 2>"$T/sink.err" &
SINK_PID=$!; PIDS+=($SINK_PID)
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$SP") 2>/dev/null && break; sleep 0.1; done

fill_bench_list bench:mail "$N" '{"to":"user%d@example.com","vars":{"name":"User%d"}}'

cat >"$T/omni.conf" <<CONF
[daemon]
redis = redis://127.0.0.1:$RP/0
consumer = sbench
log_level = warn
chunk_size = ${BENCH_CHUNK:-500}
max_host_connections = ${BENCH_CONNS:-32}
max_total_connections = ${BENCH_CONNS:-32}
smtp_client = ${BENCH_SMTP_CLIENT:-native}

[connector.mail]
type = smtp
url = smtp://127.0.0.1:$SP
tls = none
from = Acme News <news@acme.example>
max_inflight = ${BENCH_INFLIGHT:-64}

[channels]
email = mail
CONF
start_bench_daemon
for _ in $(seq 1 100); do redis-cli -p "$RP" EXISTS omni:jobs | grep -q 1 && break; sleep 0.05; done

hz=$(getconf CLK_TCK)
d0=$(ticks "$DAEMON_PID"); r0=$(ticks "$REDIS_PID"); s0=$(ticks "$SINK_PID")
t0=$(date +%s.%N)
redis-cli -p "$RP" XADD omni:jobs '*' job '{"type":"broadcast","id":"sbench","channel":"email","message":{"subject":"Black Friday","text":"Hi {{name}}, our Black Friday sale starts now: 30% off everything."},"recipients_list":"bench:mail"}' >/dev/null
wait_campaign_done sbench
t1=$(date +%s.%N)
d1=$(ticks "$DAEMON_PID"); r1=$(ticks "$REDIS_PID"); s1=$(ticks "$SINK_PID")
rss=$(awk '/VmHWM/ {print $2}' "/proc/$DAEMON_PID/status")
stop_perf
sent=$(redis-cli -p "$RP" --raw HGET omni:campaign:sbench sent)
# smtp-sink -c rewrites one counter line with \r; the last number is the total
sink=$(tr '\r' '\n' <"$T/sink.out" | grep -Eo '[0-9]+' | tail -1 || true)
send_figures email-text sink "$s0" "$s1"
echo "sink_messages=${sink:-0}"
