#!/bin/bash
# make test's suites (docs/testing.md): ctest in the normal build and, at the
# same time, ctest in the ASan/UBSan build, each running JOBS tests at once,
# and valgrind on the unit tests of BUILD (niced: it only takes the CPU the
# tests leave; it has no time limit, so it checks all the same). The tests
# mostly wait (for the daemon, a provider's delay, a Retry-After), so all
# three side by side take little more than the longest alone. Every line of a suite's output is
# prefixed with its build directory and kept in DIR/ctest.log; both
# summaries (with the list of failed tests) are printed again at the end.
#
# Usage: test-suites.sh BUILD BUILD_ASAN [JOBS]
set -uo pipefail
build=${1:-build}
asan=${2:-build-asan}
jobs=${3:-3}

# suite DIR [VAR=VALUE...]: ctest in DIR, its output in DIR/ctest.log and on
# stdout, each line prefixed with [DIR]; the status is ctest's (pipefail)
suite() {
  local dir=$1
  shift
  (
    cd "$dir" || exit 1
    rc=0
    env "$@" ctest --output-on-failure -j "$jobs" || rc=$?
    # the CPU the tests used (user, system), all their processes together
    times >"ctest.times"
    echo "CPU time of the suite (user, system): $(tail -n 1 ctest.times)"
    rm -f ctest.times
    exit $rc
  ) 2>&1 | tee "$dir/ctest.log" | sed -u "s|^|[$dir] |"
}

start=$SECONDS
# valgrind runs the unit tests of $build: ctest there builds nothing
nice -n 10 bash "$(dirname "$0")/valgrind-unit.sh" "$build" >"$build/valgrind.log" 2>&1 &
pv=$!
suite "$build" &
pn=$!
suite "$asan" ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 &
pa=$!
rn=0
wait "$pn" || rn=$?
ra=0
wait "$pa" || ra=$?
echo "both suites through in $((SECONDS - start)) s"
for d in "$build" "$asan"; do
  echo "=== $d: ctest summary"
  sed -n "/tests passed\|tests failed/,\$p" "$d/ctest.log"
done
[ "$rn" -eq 0 ] || echo "the suite in $build failed (status $rn): its log is $build/ctest.log"
[ "$ra" -eq 0 ] || echo "the suite in $asan failed (status $ra): its log is $asan/ctest.log"
rv=0
wait "$pv" || rv=$?
echo "=== valgrind on the unit tests of $build"
cat "$build/valgrind.log"
[ "$rn" -eq 0 ] && [ "$ra" -eq 0 ] && [ "$rv" -eq 0 ]
