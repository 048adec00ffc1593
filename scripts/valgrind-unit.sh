#!/bin/bash
# Run every unit test binary under valgrind memcheck: any error or leak fails.
# VALGRIND_JOBS binaries at once (default: the number of CPUs); the report
# is printed in the order of the binaries.
set -u
build=${1:-build}
jobs=${VALGRIND_JOBS:-$(nproc 2>/dev/null || echo 1)}
out=$(mktemp -d /tmp/omni-valgrind.XXXXXX)
trap 'rm -rf "$out"' EXIT

# one BINARY: valgrind's output in $out/NAME.log, the verdict in $out/NAME.rc
one() {
  local t=$1 name rc=0
  name=$(basename "$t")
  valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
    "$t" >"$out/$name.log" 2>&1 || rc=$?
  echo "$rc" >"$out/$name.rc"
}

tests=()
for t in "$build"/tests/test_*; do
  [ -x "$t" ] && tests+=("$t")
done
running=0
for t in "${tests[@]}"; do
  if [ $running -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
  one "$t" &
  running=$((running + 1))
done
wait
fail=0
for t in "${tests[@]}"; do
  name=$(basename "$t")
  if [ "$(cat "$out/$name.rc" 2>/dev/null)" != 0 ]; then
    echo "valgrind: $name FAILED"; tail -40 "$out/$name.log"; fail=1
  else
    echo "valgrind: $name clean"
  fi
done
exit $fail
