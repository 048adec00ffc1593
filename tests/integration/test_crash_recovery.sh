#!/bin/bash
# kill -9 the daemon several times during a 20,000-recipient WhatsApp
# campaign and restart it each time: the provider receives each recipient at
# most once, and the campaign ends with counters that add up to 20,000.
source "$(dirname "$0")/lib.sh"

start_redis
start_mock wa --latency-ms 2
CHUNK_SIZE=200 LEASE_MS=1500 CLAIM_IDLE_MS=1500 daemon_conf "$T/omni.conf" "
$(wa_section "$MOCK_PORT" "max_inflight = 32")
[channels]
whatsapp = wa"
fill_list crm:segment:big 20000
enqueue '{"type":"broadcast","id":"crash","channel":"whatsapp","message":{"text":"Hi {{name}}"},"recipients_list":"crm:segment:big"}'

for round in 1 2 3 4; do
  start_daemon "$T/omni.conf"
  pid=$DAEMON_PID
  # let it send a while, then kill it hard in the middle of the campaign
  before=$(wc -l <"$T/wa.jsonl" 2>/dev/null || echo 0)
  wait_for 60 sh -c "[ \$(wc -l < $T/wa.jsonl) -gt $((before + 1500)) ]"
  campaign_done crash && break
  kill -9 "$pid"
  wait "$pid" 2>/dev/null || true
  ok "round $round: killed -9 after $(wc -l <"$T/wa.jsonl") provider requests"
done
start_daemon "$T/omni.conf"
wait_for 240 campaign_done crash

recorded_tos "$T/wa.jsonl" | sort >"$T/tos"
total=$(wc -l <"$T/tos")
unique=$(sort -u "$T/tos" | wc -l)
[ "$total" -eq "$unique" ] || fail "duplicates at the provider: $total requests for $unique recipients"
counters_add_up crash || fail "counters do not add up: $(rraw HGETALL omni:campaign:crash | tr '\n' ' ')"
[ "$(campaign_field crash total)" -eq 20000 ] || fail "total"
sent=$(campaign_field crash sent) unc=$(campaign_field crash uncertain)
[ "$sent" -le "$unique" ] || fail "sent $sent > provider saw $unique"
[ $((sent + unc)) -ge "$unique" ] || fail "provider saw $unique but sent+uncertain = $((sent + unc))"
ok "20,000 recipients, 4 kill -9s: $unique at the provider, each once; sent $sent, uncertain $unc"

# the operator resends the uncertain ones: they reach the provider, the
# campaign finishes again with uncertain = 0
if [ "$unc" -gt 0 ]; then
  "$OMNI_BUILD/omnicast" --redis "redis://127.0.0.1:$REDIS_PORT/0" campaign resend-uncertain crash
  wait_for 120 sh -c "[ \$(redis-cli -p $REDIS_PORT --raw HGET omni:campaign:crash uncertain) -eq 0 ] && [ \$(redis-cli -p $REDIS_PORT --raw HGET omni:campaign:crash state) = done ]"
  counters_add_up crash || fail "counters after resend"
  [ "$(campaign_field crash sent)" -eq 20000 ] || fail "after resend all 20000 should be sent: $(campaign_field crash sent)"
  ok "resend-uncertain: $unc more sent, uncertain 0, campaign done again"
fi
stop_daemon
check_logs_clean
