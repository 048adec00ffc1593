#!/bin/bash
# Redis killed and restarted mid-campaign (with persistence, as production
# runs it): the daemon logs, reconnects, and the campaign completes with
# every recipient sent exactly once and counters that add up.
source "$(dirname "$0")/lib.sh"

start_redis --appendonly yes --appendfsync always
daemon_conf "$T/omni.conf" "
[connector.out]
type = outbox
path = $T/outbox.jsonl
rate_per_s = 400
burst = 20

[channels]
sms = out"
start_daemon "$T/omni.conf"
python3 -c '
import json
print(json.dumps({"type":"broadcast","id":"rr","channel":"sms","message":{"text":"hi"},
  "recipients":[{"to":"+1555%07d" % i} for i in range(1,2001)]}))' >"$T/job.json"
enqueue "$(cat "$T/job.json")"
wait_for 20 sh -c "[ -s $T/outbox.jsonl ]"
sleep 1
stop_redis
ok "redis stopped mid-campaign after $(wc -l <"$T/outbox.jsonl") sends"
sleep 2
restart_redis
wait_for 120 campaign_done rr
n=$(wc -l <"$T/outbox.jsonl")
u=$(python3 -c "import json,sys; print(len({json.loads(l)['to'] for l in open('$T/outbox.jsonl')}))")
[ "$n" -eq "$u" ] || fail "duplicates: $n lines for $u recipients"
counters_add_up rr || fail "counters do not add up"
[ "$(campaign_field rr sent)" -eq "$n" ] || fail "sent counter $(campaign_field rr sent) != outbox lines $n"
grep -q "reconnect" "$T/daemon.log" || fail "no reconnect logged"
ok "campaign completed after a Redis restart: $n sent once each, counters add up"
stop_daemon
check_logs_clean
