# Shared by the benchmark scripts: a temp dir, processes stopped by PID on
# exit, free ports, a private redis-server, CPU ticks of a process.
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
T=$(mktemp -d "/tmp/omnicast-${BENCH_NAME:-bench}.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -n "${BENCH_KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_bench_redis: sets RP and REDIS_PID (no persistence, 127.0.0.1)
start_bench_redis() {
  RP=$(free_port)
  redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no --dir "$T" \
    --logfile "$T/redis.log" --daemonize no &
  REDIS_PID=$!; PIDS+=($REDIS_PID)
  for _ in $(seq 1 100); do redis-cli -p "$RP" ping >/dev/null 2>&1 && return; sleep 0.1; done
  echo "bench: redis-server did not start" >&2; exit 1
}

# fill_bench_list KEY N FORMAT: RPUSH N recipients, FORMAT a Python %-format
# of (i, i) for i = 1..N, before the clock starts
fill_bench_list() {
  python3 - "$1" "$2" "$3" <<'PY' | redis-cli -p "$RP" --pipe >/dev/null
import sys
key, n, fmt = sys.argv[1], int(sys.argv[2]), sys.argv[3]
out = sys.stdout.buffer
def cmd(*a):
    out.write(b"*%d\r\n" % len(a))
    for x in a:
        x = x.encode(); out.write(b"$%d\r\n%s\r\n" % (len(x), x))
for b in range(1, n + 1, 1000):
    cmd("RPUSH", key, *[fmt % (i, i) for i in range(b, min(b + 1000, n + 1))])
PY
}

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# wait_campaign_done ID: poll the campaign's state (30 minutes at most)
wait_campaign_done() {
  # one redis-cli polling every 10 ms on one connection: a new redis-cli
  # process per poll cost a third of a core on a 2-core machine, taken from
  # what is measured
  local st
  st=$(set +o pipefail; timeout 1800 redis-cli -p "$RP" --raw -r -1 -i 0.01 HGET "omni:campaign:$1" state 2>/dev/null |
    grep -m1 -x done)
  [ "$st" = done ] || { echo "bench: timed out" >&2; exit 1; }
}

# start_bench_daemon: omnicastd on $T/omni.conf (log in $T/daemon.log), and
# with BENCH_PERF=FILE a perf profile of it; BENCH_WRAP="valgrind
# --tool=callgrind ..." runs it under a wrapper (exact instruction counts
# where the VM has no PMU; the rates are then meaningless); sets DAEMON_PID
start_bench_daemon() {
  # shellcheck disable=SC2086
  ${BENCH_WRAP:-} "$BUILD/omnicastd" --config "$T/omni.conf" >"$T/daemon.log" 2>&1 &
  DAEMON_PID=$!; PIDS+=($DAEMON_PID)
  if [ -n "${BENCH_PERF:-}" ]; then
    perf record -F 2000 ${BENCH_PERF_CG:--g} -p "$DAEMON_PID" -o "$BENCH_PERF" >/dev/null 2>&1 &
    PERF_PID=$!
  fi
}

# stop_perf: end the profile (if any) so perf.data is complete
stop_perf() {
  if [ -n "${PERF_PID:-}" ]; then kill -INT "$PERF_PID"; wait "$PERF_PID" 2>/dev/null || true; fi
}

# send_figures WORKLOAD PEER PEER_TICKS0 PEER_TICKS1: the key=value lines
# every send bench prints first (msgs_per_s first); reads N t0 t1 hz d0 d1
# r0 r1 sent rss. Each bench prints its own lines after.
send_figures() {
  python3 - "$@" <<PY
import sys
workload, peer, p0, p1 = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
n = $N; el = $t1 - $t0; hz = $hz
per = 100000 / n
print("msgs_per_s=%.0f" % (n / el))
print("workload=%s-%d" % (workload, n))
print("elapsed_s=%.3f" % el)
print("sent=$sent")
print("cpu_s_per_100k_daemon=%.3f" % (($d1 - $d0) / hz * per))
print("cpu_s_per_100k_redis=%.3f" % (($r1 - $r0) / hz * per))
print("cpu_s_per_100k_%s=%.3f" % (peer, (p1 - p0) / hz * per))
print("cpu_us_per_msg_daemon_redis=%.1f" % ((($d1 - $d0) + ($r1 - $r0)) / hz / n * 1e6))
print("daemon_peak_rss_kib=$rss")
PY
}
