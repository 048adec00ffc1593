#!/bin/bash
# Stop means stop, judged by what the provider received:
# - SIGTERM at a rate-limited connector: nothing more goes on the wire, the
#   claims not yet sent are given back in one call and their chunks handed
#   back at once, so another instance (which would take a stalled chunk
#   only after claim_idle_ms = 60 s) finishes the campaign within seconds;
#   every recipient reaches the provider exactly once, none is uncertain.
# - pause and cancel with 64 requests in flight: once the API answered,
#   at most the requests already on the wire arrive; resume finishes the
#   campaign with every recipient once; a cancelled campaign adds up.
source "$(dirname "$0")/lib.sh"

start_redis
start_mock prov --latency-ms 300
HTTP_PORT=$(free_port)
echo "t0ken" >"$T/tokens"
conf() { # conf FILE RATE
  LEASE_MS=30000 CLAIM_IDLE_MS=60000 daemon_conf "$1" "
drain_timeout_ms = 10000
http_listen = 127.0.0.1:$HTTP_PORT
api_tokens_file = $T/tokens
$(wa_section "$MOCK_PORT" "rate_per_s = $2
max_inflight = 64")
[channels]
whatsapp = wa"
}
# count_to FILE PREFIX: requests and accepted (2xx) requests per recipient
# whose number starts with PREFIX: "requests accepted recipients twice"
count_to() {
  python3 - "$1" "$2" <<'PY'
import sys
from provider import counts
req, acc = counts(sys.argv[1], sys.argv[2])
print(sum(req.values()), sum(acc.values()), len(acc), sum(1 for c in acc.values() if c > 1))
PY
}
J="$T/prov.jsonl"

# ---- SIGTERM at 20 msg/s, then another instance
CONSUMER=a conf "$T/a.conf" 20
start_daemon "$T/a.conf" a
A=$DAEMON_PID
fill_list seg 300
enqueue '{"type":"broadcast","id":"dr","channel":"whatsapp","message":{"text":"x"},"recipients_list":"seg"}'
wait_for 30 sh -c "[ \$(grep -c '\"1555' $J) -ge 30 ]"
stop_daemon "$A"
grep -q "drained: .* claims released unsent, 0 left on the wire" "$T/a.log" || fail "drain summary: $(grep drain "$T/a.log")"
released=$(sed -n 's/.*finished, \([0-9]*\) claims released.*/\1/p' "$T/a.log")
[ "${released:-0}" -ge 20 ] || fail "a rate-limited drain should give back what it claimed ahead (released ${released:-0})"
read -r n1 _ _ _ <<<"$(count_to "$J" 1555)"
sleep 1
read -r n2 _ _ _ <<<"$(count_to "$J" 1555)"
[ "$n1" = "$n2" ] || fail "requests arrived after the drained daemon exited: $n1 then $n2"
[ "$(campaign_field dr uncertain)" = 0 ] || fail "nothing was on the wire, yet uncertain=$(campaign_field dr uncertain)"
CONSUMER=b conf "$T/b.conf" 0
start_daemon "$T/b.conf" b
B=$DAEMON_PID
wait_for 25 campaign_done dr
read -r req acc n twice <<<"$(count_to "$J" 1555)"
[ "$req" = 300 ] && [ "$acc" = 300 ] && [ "$n" = 300 ] && [ "$twice" = 0 ] ||
  fail "drain then takeover: requests=$req accepted=$acc recipients=$n twice=$twice"
[ "$(campaign_field dr sent)" = 300 ] || fail "sent=$(campaign_field dr sent)"
ok "SIGTERM at 20 msg/s: $n1 sent, $released claims given back; another instance finished at once; 300 recipients once each, 0 uncertain"

# ---- pause and cancel with 64 in flight (provider latency 300 ms)
api() { curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer t0ken" "http://127.0.0.1:$HTTP_PORT$1"; }
job() { # job ID PREFIX N
  python3 -c 'import json,sys; print(json.dumps({"type":"broadcast","id":sys.argv[1],"channel":"whatsapp","message":{"text":"x"},"recipients":[{"to":"+%s%07d" % (sys.argv[2], i)} for i in range(int(sys.argv[3]))]}))' "$@"
}
enqueue "$(job pz 1666 1500)"
wait_for 30 sh -c "[ \$(grep -c '\"1666' $J) -ge 200 ]"
[ "$(api /v1/campaigns/pz/pause)" = 200 ] || fail "pause answered"
read -r p1 _ _ _ <<<"$(count_to "$J" 1666)"
sleep 2
read -r p2 _ _ _ <<<"$(count_to "$J" 1666)"
[ $((p2 - p1)) -le 64 ] || fail "pause: $((p2 - p1)) requests arrived after the pause was answered (64 at most were on the wire)"
sleep 1
read -r p3 _ _ _ <<<"$(count_to "$J" 1666)"
[ "$p3" = "$p2" ] || fail "sends went on while paused: $p2 then $p3"
[ "$(api /v1/campaigns/pz/resume)" = 200 ] || fail "resume answered"
wait_for 60 campaign_done pz
read -r req acc n twice <<<"$(count_to "$J" 1666)"
[ "$req" = 1500 ] && [ "$acc" = 1500 ] && [ "$twice" = 0 ] || fail "pause/resume: requests=$req accepted=$acc twice=$twice"
ok "pause with 64 in flight: $((p2 - p1)) arrived after it was answered; resume sent the other $((1500 - p2)), 1500 once each"

enqueue "$(job cz 1777 1500)"
wait_for 30 sh -c "[ \$(grep -c '\"1777' $J) -ge 200 ]"
[ "$(api /v1/campaigns/cz/cancel)" = 200 ] || fail "cancel answered"
read -r c1 _ _ _ <<<"$(count_to "$J" 1777)"
sleep 2
read -r c2 _ _ _ <<<"$(count_to "$J" 1777)"
[ $((c2 - c1)) -le 64 ] || fail "cancel: $((c2 - c1)) requests arrived after the cancel was answered"
wait_for 20 counters_add_up cz
[ "$(campaign_field cz sent)" = "$c2" ] || fail "sent=$(campaign_field cz sent), the provider got $c2"
[ "$(campaign_field cz cancelled)" = $((1500 - c2)) ] || fail "cancelled=$(campaign_field cz cancelled)"
sleep 1
read -r c3 _ _ _ <<<"$(count_to "$J" 1777)"
[ "$c3" = "$c2" ] || fail "sends after the cancel: $c2 then $c3"
ok "cancel with 64 in flight: $((c2 - c1)) arrived after it was answered; $c2 sent + $(campaign_field cz cancelled) cancelled = 1500"

stop_daemon "$B"
check_logs_clean
