#!/bin/bash
# Run every fuzz target for a bounded time on a scratch copy of its seed
# corpus (tests/fuzz/corpus/TARGET); print executions per target.
set -euo pipefail
build=$1
secs=${2:-60}
src=$(cd "$(dirname "$0")" && pwd)
fail=0
for t in "$build"/fuzz/fuzz_*; do
  name=$(basename "$t")
  work=$(mktemp -d /tmp/omni-fuzz.XXXXXX)
  [ -d "$src/corpus/$name" ] && cp -r "$src/corpus/$name/." "$work/"
  if "$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$build/$name-" \
       -print_final_stats=1 "$work" >"$build/$name.log" 2>&1; then
    runs=$(grep -m1 'stat::number_of_executed_units' "$build/$name.log" | awk '{print $2}')
    echo "fuzz: $name ok, ${runs:-?} executions in ${secs}s"
  else
    echo "fuzz: $name FAILED (see $build/$name.log)"; tail -30 "$build/$name.log"; fail=1
  fi
  rm -rf "$work"
done
exit $fail
