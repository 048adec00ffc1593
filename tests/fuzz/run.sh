#!/bin/bash
# Run every fuzz target for a bounded time on a scratch copy of its seed
# corpus (tests/fuzz/corpus/TARGET); print executions per target. FUZZ_JOBS
# targets at once (default: the number of CPUs; each target is one process
# on one CPU, so each still gets its whole time).
set -euo pipefail
build=$1
secs=${2:-60}
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
src=$(cd "$(dirname "$0")" && pwd)

# one TARGET: its line of the report in $build/TARGET.result, its status
one() {
  local t=$1 name work rc=0 runs
  name=$(basename "$t")
  work=$(mktemp -d /tmp/omni-fuzz.XXXXXX)
  [ -d "$src/corpus/$name" ] && cp -r "$src/corpus/$name/." "$work/"
  "$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$build/$name-" \
    -print_final_stats=1 "$work" >"$build/$name.log" 2>&1 || rc=$?
  if [ $rc -eq 0 ]; then
    runs=$(grep -m1 'stat::number_of_executed_units' "$build/$name.log" | awk '{print $2}') || true
    echo "fuzz: $name ok, ${runs:-?} executions in ${secs}s" >"$build/$name.result"
  else
    { echo "fuzz: $name FAILED (see $build/$name.log)"; tail -30 "$build/$name.log"; } >"$build/$name.result"
  fi
  rm -rf "$work"
  return $rc
}

fail=0
running=0
targets=("$build"/fuzz/fuzz_*)
for t in "${targets[@]}"; do
  if [ $running -ge "$jobs" ]; then
    wait -n || fail=1
    running=$((running - 1))
  fi
  one "$t" &
  running=$((running + 1))
done
while [ $running -gt 0 ]; do
  wait -n || fail=1
  running=$((running - 1))
done
for t in "${targets[@]}"; do
  cat "$build/$(basename "$t").result"
  rm -f "$build/$(basename "$t").result"
done
exit $fail
