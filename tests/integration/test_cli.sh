#!/bin/bash
# The omnicast CLI against a real Redis and daemon: enqueue (local
# validation, exit codes), status, watch, campaigns, campaign control,
# suppress, conversations, dead list/show/replay, --json output.
source "$(dirname "$0")/lib.sh"

start_redis
daemon_conf "$T/omni.conf" "
[connector.out]
type = outbox
path = $T/out.jsonl
rate_per_s = 200

[channels]
sms = out"
start_daemon "$T/omni.conf"
oc() { "$OMNI_BUILD/omnicast" --config "$T/omni.conf" "$@"; }

echo '{"type":"broadcast","id":"x","channel":"fax","message":{"text":"t"},"recipients":[{"to":"+15550000001"}]}' >"$T/bad.json"
rc=0; oc enqueue "$T/bad.json" 2>"$T/err" || rc=$?
[ $rc -eq 3 ] && grep -q 'invalid job: unknown channel: fax' "$T/err" || fail "invalid job: exit $rc $(cat "$T/err")"
[ "$(rraw XLEN omni:jobs)" = 0 ] || fail "an invalid job was queued"
rc=0; "$OMNI_BUILD/omnicast" --redis redis://127.0.0.1:1/0 status x 2>/dev/null || rc=$?
[ $rc -eq 4 ] || fail "no Redis should exit 4, got $rc"
rc=0; oc frobnicate 2>/dev/null || rc=$?
[ $rc -eq 2 ] || fail "usage error should exit 2"
ok "exit codes: 3 invalid job (nothing queued), 4 no Redis, 2 usage"

oc suppress add sms "+1 555 000 0003" >/dev/null
[ "$(oc suppress list sms)" = "+15550000003" ] || fail "suppress add normalizes"
python3 -c 'import json; print(json.dumps({"type":"broadcast","id":"cli1","channel":"sms","message":{"text":"x"},"recipients":[{"to":"+1555000%04d" % i} for i in range(1,301)]}))' | oc enqueue - >/dev/null
oc watch cli1 >"$T/watch" || fail "watch failed"
tail -1 "$T/watch" | q '^done 300/300 sent 299 failed 0' || fail "watch output: $(tail -2 "$T/watch")"
oc --json status cli1 | python3 -c 'import json,sys; s=json.load(sys.stdin); assert s["sent"]==299 and s["suppressed"]==1 and s["pending"]==0, s'
oc campaigns | q '^cli1 .*done .*total 300' || fail "campaigns list"
ok "suppress add/list, enqueue from stdin, watch to the end, status --json, campaigns"

oc suppress remove sms +15550000003 >/dev/null
[ -z "$(oc suppress list sms)" ] || fail "suppress remove"
rc=0; oc campaign pause cli1 2>"$T/err" || rc=$?
[ $rc -eq 1 ] && grep -q 'cannot pause a campaign that is done' "$T/err" || fail "pause of a done campaign"
ok "suppress remove; campaign pause refused for a done campaign (exit 1)"

enqueue 'not json at all'
wait_for 10 sh -c "[ \$(redis-cli -p $REDIS_PORT XLEN omni:dead) -ge 1 ]"
entry=$(oc --json dead list 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
oc dead show "$entry" | q '"job":"not json at all"' || fail "dead show"
oc dead replay "$entry" | q "replayed $entry" || fail "dead replay"
wait_for 10 sh -c "[ \$(redis-cli -p $REDIS_PORT XLEN omni:dead) -ge 2 ]"
ok "dead list/show/replay (the replayed job is dead-lettered again, as it should be)"

oc conversations >/dev/null || fail "conversations"
stop_daemon
check_logs_clean
