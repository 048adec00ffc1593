#!/bin/bash
# The delivery engine's behaviours end to end: fallback channels with
# per-channel addresses, suppression, scheduling, quiet hours, pause within
# a second, resume, cancel, connector rate limits, per-campaign rates, and
# a 429 Retry-After slowing the whole connector.
source "$(dirname "$0")/lib.sh"

start_redis
start_mock prov --fail-plan "wa_code=131026:to=15550000002,status=429:retry_after=1:to=15550000050:first=1"
daemon_conf "$T/omni.conf" "
$(wa_section "$MOCK_PORT")

[connector.sms]
type = twilio
api_base = http://127.0.0.1:$MOCK_PORT
account_sid = AC1
auth_token = t
from = +15551230000

[connector.slow]
type = outbox
path = $T/slow.jsonl
rate_per_s = 40
burst = 1

[connector.out]
type = outbox
path = $T/out.jsonl

[channels]
whatsapp = wa
sms = sms
slow = slow
mail = out"
start_daemon "$T/omni.conf"
J="$T/prov.jsonl"

# fallback: whatsapp fails permanently for 0002 → its own sms address
rcli SADD omni:suppress:whatsapp +15550000003 >/dev/null
enqueue '{"type":"broadcast","id":"fb","channels":["whatsapp","sms"],"message":{"text":"hi"},"recipients":[{"to":"+15550000001"},{"to":{"whatsapp":"+15550000002","sms":"+15559990002"}},{"to":"+15550000003"}]}'
wait_for 30 campaign_done fb
[ "$(msg_field fb whatsapp:+15550000001 state)" = sent ] || fail "first recipient on whatsapp"
[ "$(msg_field fb whatsapp:+15550000002 error)" = undeliverable ] || fail "whatsapp failure recorded"
[ "$(msg_field fb sms:+15559990002 state)" = sent ] || fail "fell back to sms at the sms address"
[ "$(msg_field fb sms:+15559990002 channel)" = sms ] || fail "record keeps the channel used"
grep -q '%2B15559990002' "$J" || fail "the sms provider never saw the fallback"
[ "$(msg_field fb whatsapp:+15550000003 state)" = suppressed ] || fail "suppressed recipient"
! grep -q '15550000003' "$J" || fail "a suppressed recipient reached a provider"
[ "$(campaign_field fb sent)" = 2 ] && [ "$(campaign_field fb suppressed)" = 1 ] && [ "$(campaign_field fb failed)" = 0 ] || fail "fallback counters: $(rraw HGETALL omni:campaign:fb | tr '\n' ' ')"
ok "fallback to sms with a per-channel address; suppression checked with the claim"

# a 429 with Retry-After: 1 pauses the whole whatsapp connector ~1 s
enqueue '{"type":"broadcast","id":"thr","channel":"whatsapp","message":{"text":"x"},"recipients":[{"to":"+15550000050"},{"to":"+15550000051"},{"to":"+15550000052"}]}'
wait_for 30 campaign_done thr
python3 - "$J" <<'PY'
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1])]
t = {}
for r in rs:
    if r["path"].endswith("/messages"):
        to = json.loads(r["body"])["to"]
        if to in ("15550000050", "15550000051", "15550000052"):
            t.setdefault(to, []).append(r["ts_ms"])
first429 = t["15550000050"][0]
# requests already in flight with the throttled one arrive within a few ms
# of it; anything sent after the 429 came back must wait out the second
later = [ts for k, v in t.items() for ts in v if ts > first429 + 100]
assert len(t["15550000050"]) == 2, t
assert min(later) - first429 >= 900, (first429, sorted(later))
PY
ok "429 Retry-After: 1 held back every send of that connector for a second"

# connector rate limit: 60 messages at 40/s, burst 1: at least ~1.4 s
start=$(date +%s%N)
python3 -c 'import json; print(json.dumps({"type":"broadcast","id":"rate","channel":"slow","message":{"text":"x"},"recipients":[{"to":"u%d" % i} for i in range(60)]}))' >"$T/rate.json"
enqueue "$(cat "$T/rate.json")"
wait_for 60 campaign_done rate
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$ms" -ge 1400 ] || fail "60 messages at 40/s took only ${ms} ms"
ok "rate_per_s = 40: 60 messages took ${ms} ms"

# per-campaign rate on an unlimited connector: 60 at 20/s (a burst of one
# second's worth, then 20/s) take at least ~1.8 s
start=$(date +%s%N)
python3 -c 'import json; print(json.dumps({"type":"broadcast","id":"crate","channel":"mail","rate_per_s":20,"message":{"text":"x"},"recipients":[{"to":"c%d@example.com" % i} for i in range(60)]}))' >"$T/crate.json"
enqueue "$(cat "$T/crate.json")"
wait_for 60 campaign_done crate
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$ms" -ge 1800 ] || fail "60 messages at a campaign rate of 20/s took only ${ms} ms"
ok "job rate_per_s = 20: 60 messages took ${ms} ms"

# scheduled: send_at 5-6 s ahead (room for a loaded machine to read the job first)
at=$(date -u -d '+6 seconds' +%Y-%m-%dT%H:%M:%SZ)
enqueue "{\"type\":\"broadcast\",\"id\":\"sched\",\"channel\":\"mail\",\"send_at\":\"$at\",\"message\":{\"text\":\"later\"},\"recipients\":[{\"to\":\"s@example.com\"}]}"
wait_for 10 sh -c "[ \"\$(redis-cli -p $REDIS_PORT --raw HGET omni:campaign:sched state)\" = scheduled ]"
[ "$(rraw ZSCORE omni:scheduled start:sched)" != "" ] || fail "not in omni:scheduled"
! grep -q '"campaign":"sched"' "$T/out.jsonl" || fail "sent before send_at"
wait_for 30 campaign_done sched
started=$(campaign_field sched started_at)
due=$(( $(date -u -d "$at" +%s) * 1000 ))
[ "$started" -ge "$due" ] || fail "started at $started before send_at $due"
ok "send_at: waited in omni:scheduled, started on time"

# pause stops new sends within a second; resume finishes; cancel ends
python3 -c 'import json; print(json.dumps({"type":"broadcast","id":"pz","channel":"slow","message":{"text":"x"},"recipients":[{"to":"p%d" % i} for i in range(400)]}))' >"$T/pz.json"
enqueue "$(cat "$T/pz.json")"
wait_for 30 sh -c "[ \$(grep -c '\"campaign\":\"pz\"' $T/slow.jsonl) -gt 20 ]"
"$OMNI_BUILD/omnicast" --redis "redis://127.0.0.1:$REDIS_PORT/0" campaign pause pz >/dev/null
sleep 1
n1=$(grep -c '"campaign":"pz"' "$T/slow.jsonl")
sleep 2
n2=$(grep -c '"campaign":"pz"' "$T/slow.jsonl")
[ "$n1" -eq "$n2" ] || fail "sends went on after pause: $n1 then $n2"
[ "$(campaign_field pz state)" = paused ] || fail "state paused"
"$OMNI_BUILD/omnicast" --redis "redis://127.0.0.1:$REDIS_PORT/0" campaign resume pz >/dev/null
wait_for 60 campaign_done pz
[ "$(grep -c '"campaign":"pz"' "$T/slow.jsonl")" -eq 400 ] || fail "resume did not finish the campaign exactly"
ok "pause: no sends a second after it ($n1 → $n2); resume finished all 400 once"

enqueue "$(sed 's/"id": "pz"/"id": "cz"/' "$T/pz.json")"
wait_for 30 sh -c "[ \$(grep -c '\"campaign\":\"cz\"' $T/slow.jsonl) -gt 20 ]"
enqueue '{"type":"cancel","id":"cz"}'
wait_for 30 campaign_done cz cancelled
wait_for 30 counters_add_up cz
[ "$(campaign_field cz cancelled)" -gt 0 ] || fail "nothing cancelled"
ok "cancel: $(campaign_field cz sent) sent, $(campaign_field cz cancelled) cancelled, counters add up"

# quiet hours: a recipient whose local time is inside the window waits
# unclaimed in omni:retry until it ends; one outside is sent now
now_min=$(( 10#$(date -u +%H) * 60 + 10#$(date -u +%M) ))
s=$(( (now_min + 1440 - 5) % 1440 )); e=$(( (now_min + 60) % 1440 ))
hm() { printf '%02d:%02d' $(( $1 / 60 )) $(( $1 % 60 )); }
enqueue "{\"type\":\"broadcast\",\"id\":\"qh\",\"channel\":\"mail\",\"quiet_hours\":{\"start\":\"$(hm $s)\",\"end\":\"$(hm $e)\"},\"message\":{\"text\":\"x\"},\"recipients\":[{\"to\":\"utc@example.com\",\"vars\":{\"tz\":\"UTC\"}},{\"to\":\"far@example.com\",\"vars\":{\"tz\":\"Etc/GMT+12\"}}]}"
wait_for 20 sh -c "grep -q far@example.com $T/out.jsonl"
! grep -q utc@example.com "$T/out.jsonl" || fail "sent inside quiet hours"
due=$(rraw ZSCORE omni:retry 'qh|0|0')
[ -n "$due" ] || fail "the quiet recipient is not waiting in omni:retry"
want=$(( ($(date +%s) / 60 * 60 + 3600) * 1000 ))
[ $(( due - want )) -le 61000 ] && [ $(( want - due )) -le 61000 ] || fail "due $due, want about $want"
ok "quiet hours: the recipient in the window waits until it ends; the other was sent"
"$OMNI_BUILD/omnicast" --redis "redis://127.0.0.1:$REDIS_PORT/0" campaign cancel qh >/dev/null

stop_daemon
check_logs_clean
