#!/bin/bash
# make bench-export: the recipients export's memory (issue 20). A campaign
# of BENCH_N recipient records (default 1,000,000) written straight into a
# private redis-server, then exported whole through GET
# /v1/campaigns/{id}/recipients (NDJSON at full speed, and CSV read by a
# client capped at BENCH_RATE, default 20 MB/s: the slow client) and through
# omnicast export. Measured: the daemon's resident memory before and its
# peak (VmHWM) after each, the CLI's peak (VmHWM, sampled), the lines and
# the time. Not a timed test: it fails only when a line is missing or the
# daemon grew by BENCH_MAX_MIB (default 16) or more. Prints key=value lines.
N=${BENCH_N:-1000000}
RATE=${BENCH_RATE:-20M}
MAX_MIB=${BENCH_MAX_MIB:-16}
BENCH_NAME=xbench
source "$(dirname "$0")/lib.sh"
HP=$(free_port)
start_bench_redis
echo "t0ken-bench" >"$T/tokens"
cat >"$T/omni.conf" <<CONF
[daemon]
redis = redis://127.0.0.1:$RP/0
consumer = xbench
log_level = warn
http_listen = 127.0.0.1:$HP
api_tokens_file = $T/tokens

[connector.out]
type = outbox
path = $T/out.jsonl

[channels]
whatsapp = out
CONF

# the records as outcome.lua writes them: sent with a provider id, some
# failed, some suppressed, a delivery status on a part
python3 - "$N" <<'PY' | redis-cli -p "$RP" --pipe >/dev/null
import sys
n = int(sys.argv[1])
out = sys.stdout.buffer
def cmd(*a):
    out.write(b"*%d\r\n" % len(a))
    for x in a:
        x = x.encode(); out.write(b"$%d\r\n%s\r\n" % (len(x), x))
cmd("HSET", "omni:campaign:xb", "id", "xb", "type", "broadcast", "state", "done",
    "total", str(n), "created_at", "1764500000000")
for b in range(0, n, 1000):
    args = []
    for i in range(b, min(b + 1000, n)):
        if i % 10 == 3:
            v = '{"state":"failed","channel":"whatsapp","slot":"%d","attempts":1,"at":1764500000123,"error":"undeliverable"}' % i
        elif i % 50 == 7:
            v = '{"state":"suppressed","channel":"whatsapp","slot":"%d","at":1764500000100}' % i
        else:
            v = ('{"state":"sent","channel":"whatsapp","slot":"%d","attempts":1,"at":1764500000123,'
                 '"by":"xbench/1","provider_id":"wamid.HBgLMTU1NTAwMDAwMDEVAgARGBI5QTNDQTVC%08d"%s}') % (
                     i, i, ',"dlv":"delivered","dlv_at":1764500009000' if i % 3 == 0 else "")
        args += ["whatsapp:+1555%07d" % i, v]
    cmd("HSET", "omni:msg:xb", *args)
PY
[ "$(redis-cli -p "$RP" HLEN omni:msg:xb)" = "$N" ] || { echo "bench: the hash was not filled" >&2; exit 1; }

"$BUILD/omnicastd" --config "$T/omni.conf" >"$T/daemon.log" 2>&1 &
DAEMON_PID=$!; PIDS+=($DAEMON_PID)
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$HP/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
sleep 1
kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
URL="http://127.0.0.1:$HP/v1/campaigns/xb/recipients"
AUTH="Authorization: Bearer t0ken-bench"

# the peak is VmHWM: reset it before each run (Linux: write 5 to clear_refs)
run_api() { # NAME CURL_ARGS...: lines, seconds, RSS before, peak
  local name=$1; shift
  echo 5 >"/proc/$DAEMON_PID/clear_refs" 2>/dev/null || true
  local before t0 t1 lines peak
  before=$(kib "$DAEMON_PID" VmRSS)
  t0=$(date +%s.%N)
  lines=$(curl -s -N -H "$AUTH" "$@" | wc -l)
  t1=$(date +%s.%N)
  peak=$(kib "$DAEMON_PID" VmHWM)
  echo "${name}_lines=$lines"
  echo "${name}_s=$(echo "$t1 - $t0" | bc -l | xargs printf '%.1f')"
  echo "${name}_daemon_rss_before_kib=$before"
  echo "${name}_daemon_peak_kib=$peak"
  echo "${name}_daemon_growth_kib=$((peak - before))"
  [ "$((peak - before))" -lt $((MAX_MIB * 1024)) ] || { echo "bench: $name grew the daemon by $((peak - before)) KiB" >&2; FAILED=1; }
  eval "${name}_LINES=$lines"
}
FAILED=0
echo "records=$N"
run_api ndjson "$URL"
run_api csv_slow --limit-rate "$RATE" "$URL?format=csv"
[ "$ndjson_LINES" = "$N" ] || { echo "bench: ndjson gave $ndjson_LINES lines" >&2; FAILED=1; }
[ "$csv_slow_LINES" = "$((N + 1))" ] || { echo "bench: csv gave $csv_slow_LINES lines" >&2; FAILED=1; }

# the CLI: its peak resident memory, sampled by /usr/bin/time when present
t0=$(date +%s.%N)
if [ -x /usr/bin/time ]; then
  /usr/bin/time -f '%M' -o "$T/cli.rss" "$BUILD/omnicast" --redis "redis://127.0.0.1:$RP/0" export xb --csv | wc -l >"$T/cli.lines"
  echo "cli_peak_kib=$(cat "$T/cli.rss")"
else
  "$BUILD/omnicast" --redis "redis://127.0.0.1:$RP/0" export xb --csv >"$T/cli.out" &
  CP=$!; peak=0
  while kill -0 "$CP" 2>/dev/null; do
    v=$(kib "$CP" VmHWM 2>/dev/null || echo 0); [ "${v:-0}" -gt "$peak" ] && peak=$v; sleep 0.05
  done
  wait "$CP" || true
  wc -l <"$T/cli.out" >"$T/cli.lines"
  echo "cli_peak_kib=$peak"
fi
t1=$(date +%s.%N)
echo "cli_lines=$(cat "$T/cli.lines")"
echo "cli_s=$(echo "$t1 - $t0" | bc -l | xargs printf '%.1f')"
[ "$(cat "$T/cli.lines")" = "$((N + 1))" ] || { echo "bench: the CLI gave $(cat "$T/cli.lines") lines" >&2; FAILED=1; }
echo "redis_used_memory_mib=$(( $(redis-cli -p "$RP" INFO memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p') / 1048576 ))"
exit $FAILED
