#!/bin/bash
# Two daemons against one Redis share one campaign; neither sends what the
# other sent; when one is killed, the other finishes its work.
source "$(dirname "$0")/lib.sh"

start_redis
start_mock wa --latency-ms 5
for i in 1 2; do
  CONSUMER=node-$i CHUNK_SIZE=100 LEASE_MS=1500 CLAIM_IDLE_MS=1500 daemon_conf "$T/omni$i.conf" "
$(wa_section "$MOCK_PORT" "max_inflight = 16")
[channels]
whatsapp = wa"
done
fill_list seg 6000
start_daemon "$T/omni1.conf" node1
p1=$DAEMON_PID
start_daemon "$T/omni2.conf" node2
p2=$DAEMON_PID
enqueue '{"type":"broadcast","id":"shared","channel":"whatsapp","message":{"text":"Hi {{name}}"},"recipients_list":"seg"}'
wait_for 60 sh -c "[ \$(wc -l < $T/wa.jsonl) -gt 2000 ]"
kill -9 "$p2"
wait "$p2" 2>/dev/null || true
ok "node-2 killed after $(wc -l <"$T/wa.jsonl") sends"
wait_for 240 campaign_done shared
recorded_tos "$T/wa.jsonl" | sort >"$T/tos"
[ "$(wc -l <"$T/tos")" -eq "$(sort -u "$T/tos" | wc -l)" ] || fail "a recipient was sent twice"
counters_add_up shared || fail "counters do not add up"
grep -q "reclaimed" "$T/node1.log" || fail "node-1 never took over node-2's chunks"
for n in 1 2; do
  c=$(rraw HVALS omni:msg:shared | grep -c "\"by\":\"node-$n" || true)
  [ "$c" -gt 0 ] || fail "node-$n sent nothing: the campaign was not shared"
  echo "sent by node-$n: $c"
done
ok "two instances shared the campaign; node-1 finished node-2's work; no duplicates"
