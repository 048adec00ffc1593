#!/bin/bash
# omnicastd --check-config with the real binary: every out-of-range or
# unparsable value of the [daemon] keys and of the keys every connector
# takes is an error with its file and line, all of them in one run (not
# just the first), the exit status is non-zero, nothing says OK; the same
# file with the values fixed passes with OK. No Redis, no daemon.
source "$(dirname "$0")/lib.sh"

cat >"$T/bad.conf" <<CONF
[daemon]
chunk_size = 0
block_ms = 5s
log_bodies = maybe

[connector.out]
type = outbox
path = $T/out.jsonl
max_inflight = 0
timeout_ms = 0
burst = 20000000
connect_timeout_ms = 3600001
rate_per_s = nan
pipeline = 65
http_client = carrier
retry_ambiguous = perhaps

[channels]
sms = out
CONF
rc=0
"$OMNI_BUILD/omnicastd" --config "$T/bad.conf" --check-config >"$T/out.txt" 2>"$T/check.log" || rc=$?
[ $rc -ne 0 ] || fail "--check-config accepted out-of-range values: $(cat "$T/out.txt" "$T/check.log")"
! grep -q OK "$T/out.txt" || fail "--check-config printed OK for a bad file"
want() { grep -qF -- "$1" "$T/check.log" || { cat "$T/check.log"; fail "missing: $1"; }; }
want "bad.conf:2: [daemon] chunk_size: not an integer in 1..10000"
want "bad.conf:3: [daemon] block_ms: not an integer in 10..60000"
want "bad.conf:4: [daemon] log_bodies: not a boolean (true/false)"
want "bad.conf:9: [connector.out] max_inflight: not an integer in 1..100000"
want "bad.conf:10: [connector.out] timeout_ms: not an integer in 1..3600000"
want "bad.conf:11: [connector.out] burst: not an integer in 0..1000000"
want "bad.conf:12: [connector.out] connect_timeout_ms: not an integer in 1..3600000"
want "bad.conf:13: [connector.out] rate_per_s: not a number in 0..1000000"
want "bad.conf:14: [connector.out] pipeline: not an integer in 1..64"
want "bad.conf:15: [connector.out] http_client: must be curl or native"
want "bad.conf:16: [connector.out] retry_ambiguous: not a boolean (true/false)"
want "bad.conf: configuration has errors"
n=$(grep -c "^$T/bad.conf:[0-9]*: " "$T/check.log")
[ "$n" -eq 11 ] || { cat "$T/check.log"; fail "expected 11 errors with lines, got $n"; }
ok "--check-config rejects max_inflight = 0, timeout_ms = 0, burst = 20000000 and 8 more, each with its line"

# the limits themselves pass, and the defaults
sed -e 's/^chunk_size = 0/chunk_size = 10000/' -e 's/^block_ms = 5s/block_ms = 10/' \
  -e 's/^log_bodies = maybe/log_bodies = false/' -e 's/^max_inflight = 0/max_inflight = 1/' \
  -e 's/^timeout_ms = 0/timeout_ms = 3600000/' -e 's/^burst = 20000000/burst = 1000000/' \
  -e 's/^connect_timeout_ms = 3600001/connect_timeout_ms = 1/' -e 's/^rate_per_s = nan/rate_per_s = 1000000/' \
  -e 's/^pipeline = 65/pipeline = 64/' -e 's/^http_client = carrier/http_client = curl/' \
  -e 's/^retry_ambiguous = perhaps/retry_ambiguous = true/' "$T/bad.conf" >"$T/good.conf"
"$OMNI_BUILD/omnicastd" --config "$T/good.conf" --check-config >"$T/out.txt" 2>"$T/check.log" ||
  { cat "$T/check.log"; fail "the limits were refused"; }
grep -q "good.conf: OK (1 connectors, 1 channels)" "$T/out.txt" || fail "no OK: $(cat "$T/out.txt")"
printf '[connector.out]\ntype = outbox\npath = %s/o.jsonl\n[channels]\nsms = out\n' "$T" >"$T/min.conf"
"$OMNI_BUILD/omnicastd" --config "$T/min.conf" --check-config >/dev/null 2>"$T/check.log" ||
  { cat "$T/check.log"; fail "the defaults were refused"; }
ok "--check-config accepts the limits and the defaults"
