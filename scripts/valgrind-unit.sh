#!/bin/bash
# Run every unit test binary under valgrind memcheck: any error or leak fails.
set -u
build=${1:-build}
fail=0
for t in "$build"/tests/test_*; do
  [ -x "$t" ] || continue
  if ! valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
       "$t" >/tmp/valgrind.$$.log 2>&1; then
    echo "valgrind: $(basename "$t") FAILED"; tail -40 /tmp/valgrind.$$.log; fail=1
  else
    echo "valgrind: $(basename "$t") clean"
  fi
done
rm -f /tmp/valgrind.$$.log
exit $fail
