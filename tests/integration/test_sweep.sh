#!/bin/bash
# The consistency sweep end to end: a running campaign in the state lost
# Redis writes leave behind (records gone, a claim whose owner is gone, a
# retry without its retry entry, a fallback never claimed, no chunk left)
# is finished by the daemon alone: each recipient nothing had finished is
# sent exactly once, nothing already sent or possibly sent goes out again,
# and the counters add up to done.
source "$(dirname "$0")/lib.sh"

start_redis
HTTP_PORT=$(free_port)
daemon_conf "$T/omni.conf" "
http_listen = 127.0.0.1:$HTTP_PORT
sweep_interval_ms = 500
sweep_idle_ms = 1000
[connector.out]
type = outbox
path = $T/outbox.jsonl

[channels]
sms = out
email = out"
start_daemon "$T/omni.conf"
wait_for 20 curl -sf "http://127.0.0.1:$HTTP_PORT/readyz"

# the campaign is created by the daemon (its real spec and recipient list),
# scheduled far ahead so that nothing of it runs yet
python3 - "$T/job.json" <<'PY'
import json, sys
rs = [{"to": {"sms": "+1555%07d" % i, "email": "u%d@example.com" % i}} for i in range(40)]
json.dump({"type": "broadcast", "id": "lw", "channels": ["sms", "email"],
           "send_at": "2099-01-01T00:00:00Z", "message": {"text": "hello", "subject": "s"},
           "recipients": rs}, open(sys.argv[1], "w"))
PY
enqueue "$(cat "$T/job.json")"
wait_for 20 campaign_done lw scheduled
[ "$(campaign_field lw total)" = 40 ] || fail "campaign not created"

# what Redis kept after losing writes: the campaign running, 0-9 sent, 10-11
# claimed by an instance long dead, 12-13 waiting to retry on sms with
# their retry entries lost, 14-15 failed on sms with the fallback to email
# never claimed, 16 suppressed, 17-39 no record at all, and no chunk
python3 - <<'PY' | redis-cli -p "$REDIS_PORT" >/dev/null
import json
def rec(slot, state, **kw):
    r = {"state": state, "channel": kw.pop("channel", "sms"), "slot": str(slot), "attempts": 1, "at": 1000}
    r.update(kw)
    return json.dumps(r, separators=(",", ":"))
def hset(field, value):
    print("HSET omni:msg:lw %s '%s'" % (field, value))
for i in range(10):
    hset("sms:+1555%07d" % i, rec(i, "sent", by="dead-1/1", provider_id="old%d" % i))
for i in (10, 11):
    hset("sms:+1555%07d" % i, rec(i, "claimed", owner="dead-1/1", lease=2000))
for i in (12, 13):
    hset("sms:+1555%07d" % i, rec(i, "retry", error="http_5xx", due=1500))
for i in (14, 15):
    hset("sms:+1555%07d" % i, rec(i, "failed", error="rejected", next=True))
hset("sms:+1555%07d" % 16, rec(16, "suppressed"))
print("ZREM omni:scheduled start:lw")
print("HSET omni:campaign:lw state running started_at 1000 sent 10 suppressed 1")
print("ZADD omni:active 1000 lw")
PY
# running, or (on a slow machine, the sweep being quick) already repaired
# and done: the sweep's log line and counts below prove what it found
st=$(campaign_field lw state)
[ "$st" = running ] || [ "$st" = done ] || fail "lost-write state not set up ($st)"

wait_for 60 campaign_done lw
counters_add_up lw || fail "counters do not add up: $(rraw HGETALL omni:campaign:lw | tr '\n' ' ')"
[ "$(campaign_field lw sent)" = 37 ] && [ "$(campaign_field lw uncertain)" = 2 ] &&
  [ "$(campaign_field lw suppressed)" = 1 ] && [ "$(campaign_field lw failed)" = 0 ] ||
  fail "counters: $(rraw HGETALL omni:campaign:lw | tr '\n' ' ')"
for i in 10 11; do
  [ "$(msg_field lw sms:+15550000$(printf %03d $i) state)" = uncertain ] &&
    [ "$(msg_field lw sms:+15550000$(printf %03d $i) reason)" = owner_lost ] || fail "slot $i not uncertain/owner_lost"
done
# a little longer: nothing else may go out
sleep 2
python3 - "$T/outbox.jsonl" <<'PY' || fail "outbox: see above"
import collections, json, sys
got = collections.Counter()
for line in open(sys.argv[1]):
    m = json.loads(line)
    assert m["campaign"] == "lw", m
    got[(m["channel"], m["to"])] += 1
want = {("sms", "+1555%07d" % i) for i in list(range(12, 14)) + list(range(17, 40))}
want |= {("email", "u%d@example.com" % i) for i in (14, 15)}
twice = [k for k, n in got.items() if n > 1]
extra = set(got) - want
missing = want - set(got)
if twice or extra or missing:
    print("twice:", twice, "extra:", sorted(extra), "missing:", sorted(missing))
    sys.exit(1)
PY
ok "lost writes: 27 unfinished recipients sent once each, none of the sent or uncertain again, campaign done"

[ -z "$(rraw ZSCORE omni:active lw)" ] || fail "a done campaign left in omni:active"
grep -q "sweep: campaign lw: 23 recipients chunked again (never claimed), 2 declared uncertain (owner lost), 4 queued to retry" "$T/daemon.log" ||
  fail "sweep log line"
! grep -E '\+1555000(00[0-9]{2}|0[0-9]{3})|u[0-9]+@example' "$T/daemon.log" | grep -i sweep || fail "an address in clear in a sweep log line"
curl -sf "http://127.0.0.1:$HTTP_PORT/metrics" | q '^omnicast_sweep_repairs_total 29$' || fail "metric: $(curl -sf "http://127.0.0.1:$HTTP_PORT/metrics" | grep sweep)"
ok "sweep logged (no addresses) and counted in omnicast_sweep_repairs_total"

# a campaign too big for one call of the sweep (it reads 10,000 records a
# call and goes on where it stopped): 25,000 recipients, all sent but 20
# whose records were lost
fill_list src:big 25000
enqueue '{"type":"broadcast","id":"big","channel":"sms","send_at":"2099-01-01T00:00:00Z","message":{"text":"hi"},"recipients_list":"src:big"}'
wait_for 20 campaign_done big scheduled
python3 - <<'PY' | redis-cli -p "$REDIS_PORT" --pipe >/dev/null
import sys
from resp import cmd
lost = set(range(5000, 5010)) | set(range(24990, 25000))
for b in range(0, 25000, 1000):
    args = []
    for i in range(b, b + 1000):
        if i not in lost:
            args += ["sms:+1555%07d" % (i + 1), '{"state":"sent","channel":"sms","slot":"%d","attempts":1,"at":1000,"by":"dead-1/1","provider_id":"o%d"}' % (i, i)]
    cmd("HSET", "omni:msg:big", *args)
cmd("ZREM", "omni:scheduled", "start:big")
cmd("HSET", "omni:campaign:big", "state", "running", "started_at", "1000", "sent", "24980")
cmd("ZADD", "omni:active", "1000", "big")
PY
wait_for 60 campaign_done big
counters_add_up big && [ "$(campaign_field big sent)" = 25000 ] || fail "big: $(rraw HGETALL omni:campaign:big | tr '\n' ' ')"
python3 - "$T/outbox.jsonl" <<'PY' || fail "big: outbox"
import collections, json, sys
got = collections.Counter(m["to"] for m in map(json.loads, open(sys.argv[1])) if m["campaign"] == "big")
want = {"+1555%07d" % (i + 1) for i in list(range(5000, 5010)) + list(range(24990, 25000))}
assert set(got) == want and max(got.values()) == 1, (sorted(got.items()), sorted(want))
PY
grep -q "sweep: campaign big: 20 recipients chunked again" "$T/daemon.log" || fail "big: sweep log line"
[ "$(rraw EXISTS omni:sweep:big omni:sweep:big:seen)" = 0 ] || fail "big: scan state left behind"
ok "a campaign of 25,000 swept over several calls: the 20 lost recipients sent once each"

stop_daemon
check_logs_clean
