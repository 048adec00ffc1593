#!/bin/bash
# Nobody is starved, judged by when the provider got the messages:
# - a campaign on connector B starts at once while connector A works
#   through a big campaign (its chunks are added to the stream as others
#   finish, so B's chunk is never behind all of A's);
# - a tiny campaign on A interleaves with the big one on A (each campaign
#   waits in its own queue on the connector, served in turn);
# - a campaign paced by its own slow rate_per_s holds up nobody on its
#   connector, and its chunks do not fill the memory every campaign shares.
source "$(dirname "$0")/lib.sh"

start_redis
start_mock prov
CHUNK_SIZE=100 LEASE_MS=30000 daemon_conf "$T/omni.conf" "
$(wa_section "$MOCK_PORT" "rate_per_s = 300
max_inflight = 16")
[connector.sms]
type = twilio
api_base = http://127.0.0.1:$MOCK_PORT
account_sid = AC1
auth_token = t
from = +15551230000

[channels]
whatsapp = wa
sms = sms"
start_daemon "$T/omni.conf"
J="$T/prov.jsonl"
job() { # job ID CHANNEL PREFIX N [EXTRA JSON FIELDS]
  python3 -c 'import json,sys
j={"type":"broadcast","id":sys.argv[1],"channel":sys.argv[2],"message":{"text":"x"},"recipients":[{"to":"+%s%06d" % (sys.argv[3], i)} for i in range(int(sys.argv[4]))]}
if len(sys.argv) > 5: j.update(json.loads(sys.argv[5]))
print(json.dumps(j))' "$@"
}
ms_now() { date +%s%3N; }

# a big campaign on A: 30,000 recipients at 300/s (100 s alone)
fill_list big 30000
enqueue '{"type":"broadcast","id":"big","channel":"whatsapp","message":{"text":"x"},"recipients_list":"big"}'
wait_for 30 sh -c "[ \$(grep -c '\"1555' $J) -ge 300 ]"
[ "$(rraw XLEN omni:chunks)" -lt 100 ] || fail "all of the big campaign's chunks went to the stream at once: $(rraw XLEN omni:chunks)"

# B starts at once
t0=$(ms_now)
enqueue "$(job onb sms 1666 5)"
wait_for 20 campaign_done onb
tb=$(( $(ms_now) - t0 ))
# (counted by recipient: the big campaign's numbers, +1555001666 and such, hold 1666 too)
b_sent=$(recorded_tos "$J" | grep -c '^+1666' || true)
[ "$b_sent" = 5 ] || fail "B's campaign: $b_sent requests"

# a tiny campaign on A interleaves with the big one
t0=$(ms_now)
enqueue "$(job tiny whatsapp 1777 10)"
wait_for 20 campaign_done tiny
ta=$(( $(ms_now) - t0 ))
[ "$(campaign_field big state)" = running ] || fail "the big campaign should still be running"
[ "$(grep -c '"1777' "$J")" = 10 ] || fail "tiny: $(grep -c '"1777' "$J") requests"
ok "while A sends a 30,000-recipient campaign: a campaign on B done in ${tb} ms, a tiny one on A in ${ta} ms"

# a campaign paced by its own rate holds up nobody on A
enqueue "$(job slow whatsapp 1888 3000 '{"rate_per_s":0.05}')"
wait_for 20 sh -c "[ \$(grep -c '\"1888' $J) -ge 1 ]"
t0=$(ms_now)
enqueue "$(job after whatsapp 1999 50)"
wait_for 20 campaign_done after
tc=$(( $(ms_now) - t0 ))
[ "$(grep -c '"1888' "$J")" -le 3 ] || fail "the slow campaign went faster than its rate: $(grep -c '"1888' "$J")"
ok "a campaign at rate_per_s 0.05 (3,000 recipients) held up nobody: the next on A done in ${tc} ms"

"$OMNI_BUILD/omnicast" --redis "redis://127.0.0.1:$REDIS_PORT/0" campaign cancel slow >/dev/null
"$OMNI_BUILD/omnicast" --redis "redis://127.0.0.1:$REDIS_PORT/0" campaign cancel big >/dev/null
wait_for 30 counters_add_up big
wait_for 30 counters_add_up slow
# nothing twice at the provider
python3 - "$J" <<'PY'
import collections, json, sys
c = collections.Counter()
for l in open(sys.argv[1]):
    r = json.loads(l)
    b = r.get("body") or ""
    if r["path"].endswith("/messages"):
        c[json.loads(b)["to"]] += 1
twice = [k for k, v in c.items() if v > 1]
assert not twice, twice[:5]
PY
# a chunk whose claims Redis keeps refusing (its message hash is a string)
# is dead-lettered with the error and acked, not retried in a loop
rcli SET omni:msg:bad not-a-hash >/dev/null
enqueue "$(job bad whatsapp 1444 3)"
wait_for 30 sh -c "redis-cli -p $REDIS_PORT --raw XRANGE omni:dead - + | grep -q 'claim failed 6 times: WRONGTYPE'"
wait_for 10 sh -c "[ \"\$(redis-cli -p $REDIS_PORT --raw XPENDING omni:chunks omnicast | head -1)\" = 0 ]"
[ "$(grep -c '"1444' "$J")" = 0 ] || fail "a recipient of the refused chunk was sent"
ok "a chunk whose claims keep failing: dead-lettered after 6 errors, acked"

stop_daemon
check_logs_clean
