#!/bin/bash
# Walking skeleton end to end: jobs through Redis, campaigns through the
# outbox connector. A 1,000-recipient campaign renders right and its
# counters add up; a malformed job is dead-lettered and the next job still
# runs; the same job id twice sends once.
source "$(dirname "$0")/lib.sh"

start_redis
daemon_conf "$T/omni.conf" "
[connector.out]
type = outbox
path = $T/outbox.jsonl

[channels]
sms = out
email = out"
start_daemon "$T/omni.conf"

# 1,000 recipients, inline, with one missing var that has a default
python3 - "$T/job1000.json" <<'PY'
import json, sys
rs = [{"to": "+1555%07d" % i, "vars": {"name": "User%d" % i}} for i in range(1, 1001)]
rs[9]["vars"] = {}
json.dump({"type": "broadcast", "id": "c1000", "channel": "sms",
           "message": {"text": "Hi {{name|friend}}, 30% off: \"now\""},
           "recipients": rs}, open(sys.argv[1], "w"))
PY
"$OMNI_BUILD/omnicast" --redis "redis://127.0.0.1:$REDIS_PORT/0" enqueue "$T/job1000.json" >/dev/null
wait_for 60 campaign_done c1000
[ "$(wc -l <"$T/outbox.jsonl")" -eq 1000 ] || fail "expected 1000 outbox lines, got $(wc -l <"$T/outbox.jsonl")"
python3 - "$T/outbox.jsonl" <<'PY'
import json, sys
seen = {}
for line in open(sys.argv[1]):
    m = json.loads(line)
    assert m["campaign"] == "c1000" and m["channel"] == "sms", m
    seen[m["to"]] = m["text"]
assert len(seen) == 1000, len(seen)
assert seen["+15550000001"] == 'Hi User1, 30% off: "now"', seen["+15550000001"]
assert seen["+15550000010"] == 'Hi friend, 30% off: "now"', seen["+15550000010"]
PY
[ "$(campaign_field c1000 sent)" -eq 1000 ] || fail "sent counter"
[ "$(campaign_field c1000 total)" -eq 1000 ] || fail "total counter"
counters_add_up c1000 || fail "counters do not add up"
ok "1000-recipient campaign: 1000 lines rendered right, counters add up"

# a malformed job is dead-lettered with its reason; the next job still runs
enqueue '{"type":"broadcast","id":"bad1","channel":"sms","message":{"text":"x"},"recipients":[{"to":"12"}]}'
enqueue 'this is not json'
enqueue '{"type":"broadcast","id":"after-bad","channel":"email","message":{"text":"hello {{name}}"},"recipients":[{"to":"Ana@Example.COM","vars":{"name":"Ana"}},{"to":"bob@example.com"}]}'
wait_for 30 campaign_done after-bad
wait_for 10 sh -c "[ \$(redis-cli -p $REDIS_PORT XLEN omni:dead) -ge 2 ]"
reason=$(rraw XRANGE omni:dead - + | grep -A1 '^reason$' | sed -n 2p)
[ "$reason" = "recipients[0].to: not an E.164 number" ] || fail "dead-letter reason was: $reason"
rraw XRANGE omni:dead - + | q '^this is not json$' || fail "raw job not kept in omni:dead"
grep -q '"to":"Ana@example.com"' "$T/outbox.jsonl" || fail "email domain not normalized"
[ "$(campaign_field after-bad failed)" -eq 1 ] || fail "missing var should fail one recipient"
rraw HGET omni:msg:after-bad email:bob@example.com | q 'missing_var:name' || fail "missing_var reason"
counters_add_up after-bad || fail "after-bad counters"
ok "malformed jobs dead-lettered with reasons; the next job ran"

# the same id twice: one campaign, one send per recipient
job='{"type":"broadcast","id":"twice","channel":"sms","message":{"text":"once"},"recipients":[{"to":"+15551110001"},{"to":"+1 555 111 0001"},{"to":"+15551110002"}]}'
enqueue "$job"
wait_for 30 campaign_done twice
enqueue "$job"
sleep 1
[ "$(grep -c '"campaign":"twice"' "$T/outbox.jsonl")" -eq 2 ] || fail "job sent twice or duplicate address sent"
[ "$(campaign_field twice duplicates)" -eq 1 ] || fail "duplicate recipient not counted"
counters_add_up twice || fail "twice counters"
ok "same job id twice and the same number spelled twice: sent once"

# graceful stop
stop_daemon
grep -q "omnicastd stopped" "$T/daemon.log" || fail "daemon did not stop cleanly"
ok "SIGTERM drains and exits"
check_logs_clean
