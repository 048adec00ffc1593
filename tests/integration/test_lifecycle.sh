#!/bin/bash
# Campaign lifecycle edges (issue 14): ids that would collide with another
# campaign's keys are refused; a job whose create script keeps failing is
# dead-lettered after bounded retries, not retried forever; control of an
# unknown or finished campaign is dead-lettered and answered 404 / 409; a
# scheduled campaign paused past its send_at starts on resume; a cancel ends
# at once the recipients waiting in omni:retry (retries, quiet hours); and
# restarts leave no dead consumers in the stream groups. Each counts what
# the provider received.
source "$(dirname "$0")/lib.sh"

start_redis
start_mock prov
P1=$MOCK_PORT
# the second provider throttles (503, Retry-After 30) three recipients
start_mock slow --fail-plan "status=503:retry_after=30:to=+15550003001,status=503:retry_after=30:to=+15550003002,status=503:retry_after=30:to=+15550003003"
P2=$MOCK_PORT
HTTP_PORT=$(free_port)
echo "t0ken-life" >"$T/tokens"
CLAIM_IDLE_MS=1000 daemon_conf "$T/omni.conf" "
http_listen = 127.0.0.1:$HTTP_PORT
api_tokens_file = $T/tokens
$(wa_section "$P1")

[connector.wa2]
type = whatsapp
api_base = http://127.0.0.1:$P2
phone_number_id = 1234567890
access_token = testtoken
app_secret = appsecret
verify_token = verifytoken
session_window_s = 0

[channels]
whatsapp = wa
slow = wa2"
# a Retry-After of 30 s is honoured as given (the shared config caps at 1 s)
sed -i 's/^retry_cap_ms = .*/retry_cap_ms = 60000/' "$T/omni.conf"
start_daemon "$T/omni.conf"
B="http://127.0.0.1:$HTTP_PORT"
wait_for 20 curl -sf "$B/readyz"
AUTH="Authorization: Bearer t0ken-life"
api() { curl -s -o "$T/body" -w '%{http_code}' -H "$AUTH" "$@"; }
body_code() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["error"]["code"])' "$T/body"; }
# dead_reason N: the reason of the Nth dead letter (1 = the oldest)
dead_reason() { rraw XRANGE omni:dead - + | python3 -c '
import sys
lines = sys.stdin.read().split("\n"); n = int(sys.argv[1]); seen = 0
for i, l in enumerate(lines):
    if l == "reason":
        seen += 1
        if seen == n: print(lines[i + 1]); break' "$1"; }
dead_count() { rraw XLEN omni:dead; }
# seen_by FILE NUMBER: requests a mock provider got for one recipient
seen_by() { [ -f "$1" ] || { echo 0; return; }; recorded_tos "$1" | sed 's/^+//' | grep -c -x -- "${2#+}" || true; }
rcpts() { # rcpts FIRST N [VARS]: a JSON array of N recipients from +1555000FIRST
  python3 -c 'import json,sys; f,n=int(sys.argv[1]),int(sys.argv[2]); v=json.loads(sys.argv[3])
print(json.dumps([dict({"to":"+1555%07d" % (f+i)}, **({"vars":v} if v else {})) for i in range(n)]))' "$1" "$2" "${3:-null}"; }
COLLIDE="id: ':' is not allowed (it would collide with another campaign's keys)"

# ---- 1. colliding ids: "victim:rcpt" would be the recipient list of "victim"
enqueue "{\"type\":\"broadcast\",\"id\":\"victim:rcpt\",\"channel\":\"whatsapp\",\"message\":{\"text\":\"x\"},\"recipients\":$(rcpts 1001 2)}"
wait_for 10 sh -c "[ \$(redis-cli -p $REDIS_PORT XLEN omni:dead) -ge 1 ]"
[ "$(dead_reason 1)" = "$COLLIDE" ] || fail "victim:rcpt: dead letter reason: $(dead_reason 1)"
enqueue "{\"type\":\"broadcast\",\"id\":\"victim\",\"channel\":\"whatsapp\",\"message\":{\"text\":\"x\"},\"recipients\":$(rcpts 1011 3)}"
wait_for 20 campaign_done victim
[ "$(campaign_field victim sent)" = 3 ] || fail "victim: sent $(campaign_field victim sent)"
[ "$(rraw EXISTS omni:campaign:victim:rcpt:rcpt)" = 0 ] && [ "$(rraw TYPE omni:campaign:victim:rcpt)" = list ] ||
  fail "victim:rcpt left keys behind"
for i in 1011 1012 1013; do [ "$(seen_by "$T/prov.jsonl" +1555000$i)" = 1 ] || fail "victim: +1555000$i not sent once"; done
for i in 1001 1002; do [ "$(seen_by "$T/prov.jsonl" +1555000$i)" = 0 ] || fail "victim:rcpt was sent"; done
# the API and the CLI refuse it the same way
code=$(api -d "{\"type\":\"broadcast\",\"id\":\"a:b\",\"channel\":\"whatsapp\",\"message\":{\"text\":\"x\"},\"recipients\":$(rcpts 1 1)}" "$B/v1/broadcasts")
[ "$code" = 400 ] && [ "$(body_code)" = invalid_job ] && q -F "$COLLIDE" "$T/body" || fail "API: $code $(cat "$T/body")"
echo "{\"type\":\"message\",\"id\":\"a:b\",\"channel\":\"whatsapp\",\"message\":{\"text\":\"x\"},\"to\":\"+15550000001\"}" >"$T/colon.json"
rc=0; "$OMNI_BUILD/omnicast" --config "$T/omni.conf" enqueue "$T/colon.json" 2>"$T/err" || rc=$?
[ $rc -eq 3 ] && q -F "$COLLIDE" "$T/err" || fail "CLI: exit $rc $(cat "$T/err")"
ok "colliding ids: victim:rcpt dead-lettered with the reason, victim sent 3 (each once); API 400, CLI exit 3"

# ---- 2. a create script that errors every time (the campaign's key is a
# string: WRONGTYPE) is retried, then dead-lettered and acked
rcli SET omni:campaign:broken "not a hash" >/dev/null
n0=$(dead_count)
enqueue "{\"type\":\"broadcast\",\"id\":\"broken\",\"channel\":\"whatsapp\",\"message\":{\"text\":\"x\"},\"recipients\":$(rcpts 1021 2)}"
wait_for 40 sh -c "[ \$(redis-cli -p $REDIS_PORT XLEN omni:dead) -gt $n0 ]"
reason=$(dead_reason $((n0 + 1)))
case "$reason" in "gave up after 6 deliveries: WRONGTYPE"*) ;; *) fail "broken: reason: $reason" ;; esac
rraw XREVRANGE omni:dead + - COUNT 1 | q -F '"id":"broken"' || fail "broken: the job is not in the dead letter"
[ "$(rraw XPENDING omni:jobs omnicast | head -1)" = 0 ] || fail "broken: still pending: $(rcli XPENDING omni:jobs omnicast)"
fails=$(grep -c 'campaign broken: create failed' "$T/daemon.log" || true)
[ "$fails" -ge 6 ] || fail "broken: $fails create attempts"
sleep 3
[ "$(grep -c 'campaign broken: create failed' "$T/daemon.log" || true)" = "$fails" ] || fail "broken: still retried"
[ "$(seen_by "$T/prov.jsonl" +15550001021)" = 0 ] || fail "broken: sent"
ok "a create that fails (WRONGTYPE) $fails times: dead-lettered with the error, acked, not retried again"

# ---- 3. control of an unknown or finished campaign
n0=$(dead_count)
enqueue '{"type":"cancel","id":"nosuch"}'
enqueue '{"type":"pause","id":"victim"}'
enqueue '{"type":"cancel","id":"victim:rcpt"}'
wait_for 10 sh -c "[ \$(redis-cli -p $REDIS_PORT XLEN omni:dead) -ge $((n0 + 3)) ]"
[ "$(dead_reason $((n0 + 1))) $(dead_reason $((n0 + 2))) $(dead_reason $((n0 + 3)))" = \
  "unknown_campaign campaign_finished unknown_campaign" ] ||
  fail "control dead letters: $(dead_reason $((n0 + 1))) $(dead_reason $((n0 + 2))) $(dead_reason $((n0 + 3)))"
for a in pause resume cancel; do
  code=$(api -X POST "$B/v1/campaigns/nosuch/$a")
  [ "$code" = 404 ] && [ "$(body_code)" = unknown_campaign ] || fail "$a unknown: $code $(cat "$T/body")"
  code=$(api -X POST "$B/v1/campaigns/victim/$a")
  [ "$code" = 409 ] && [ "$(body_code)" = campaign_finished ] || fail "$a done: $code $(cat "$T/body")"
done
code=$(api -X POST "$B/v1/campaigns/old:one/cancel")
[ "$code" = 404 ] && [ "$(body_code)" = unknown_campaign ] || fail "cancel old:one: $code $(cat "$T/body")"
[ "$(campaign_field victim state)" = done ] || fail "victim changed state"
ok "control of an unknown / finished campaign: dead letters unknown_campaign / campaign_finished; API 404 / 409"

# ---- 4. pause of a scheduled campaign, resumed after its send_at: it starts
at() { python3 -c 'import datetime,sys,time; print(datetime.datetime.fromtimestamp(time.time()+float(sys.argv[1]), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]+"Z")' "$1"; }
enqueue "{\"type\":\"broadcast\",\"id\":\"sched1\",\"channel\":\"whatsapp\",\"message\":{\"text\":\"x\"},\"send_at\":\"$(at 20)\",\"recipients\":$(rcpts 1031 3)}"
enqueue "{\"type\":\"broadcast\",\"id\":\"sched2\",\"channel\":\"whatsapp\",\"message\":{\"text\":\"x\"},\"send_at\":\"$(at 21)\",\"recipients\":$(rcpts 1041 2)}"
# 20 s ahead: a loaded machine took 8 s from XADD to the campaign
wait_for 18 campaign_done sched1 scheduled
wait_for 18 campaign_done sched2 scheduled
code=$(api -X POST "$B/v1/campaigns/sched1/pause")
[ "$code" = 200 ] && q '"state":"paused"' "$T/body" || fail "pause sched1: $code $(cat "$T/body")"
# sched2: paused and resumed before its send_at: scheduled again
[ "$(api -X POST "$B/v1/campaigns/sched2/pause")" = 200 ] || fail "pause sched2"
code=$(api -X POST "$B/v1/campaigns/sched2/resume")
[ "$code" = 200 ] && q '"state":"scheduled"' "$T/body" || fail "resume sched2: $code $(cat "$T/body")"
# past sched1's send_at (the start entry comes due while it is paused)
wait_for 40 sh -c "[ -z \"\$(redis-cli -p $REDIS_PORT ZSCORE omni:scheduled start:sched1)\" ]"
sleep 1
[ "$(campaign_field sched1 state)" = paused ] || fail "sched1 not paused: $(campaign_field sched1 state)"
for i in 1031 1032 1033; do [ "$(seen_by "$T/prov.jsonl" +1555000$i)" = 0 ] || fail "sched1 sent while paused"; done
code=$(api -X POST "$B/v1/campaigns/sched1/resume")
[ "$code" = 200 ] && q '"state":"running"' "$T/body" || fail "resume sched1: $code $(cat "$T/body")"
wait_for 40 campaign_done sched1
wait_for 40 campaign_done sched2
[ "$(campaign_field sched1 sent)" = 3 ] && [ "$(campaign_field sched2 sent)" = 2 ] || fail "sched sent counts"
for i in 1031 1032 1033 1041 1042; do [ "$(seen_by "$T/prov.jsonl" +1555000$i)" = 1 ] || fail "+1555000$i not sent once"; done
ok "scheduled campaigns: paused past send_at then resumed starts at once (3 sent, each once); paused and resumed before it starts at send_at"

# ---- 5. cancel with recipients waiting in omni:retry: three throttled
# (503, Retry-After 30) and three in quiet hours (UTC now is inside the
# window; the throttled ones live at UTC+12, outside it)
qh=$(python3 -c 'import time; m=int(time.time()//60)%1440; f=lambda x: "%02d:%02d" % divmod(x%1440,60); print("{\"start\":\"%s\",\"end\":\"%s\"}" % (f(m-60), f(m+60)))')
far=$(rcpts 3001 3 '{"tz":"Etc/GMT-12"}')
near=$(rcpts 3011 3)
all=$(python3 -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1]) + json.loads(sys.argv[2])))' "$far" "$near")
enqueue "{\"type\":\"broadcast\",\"id\":\"cq\",\"channel\":\"slow\",\"message\":{\"text\":\"x\"},\"quiet_hours\":$qh,\"recipients\":$all}"
retry_members() { rraw ZRANGE omni:retry 0 -1 | grep -c '^cq|' || true; }
wait_for 20 sh -c "[ \$(redis-cli -p $REDIS_PORT ZRANGE omni:retry 0 -1 | grep -c '^cq|') -eq 6 ]"
wait_for 20 sh -c "[ \$(redis-cli -p $REDIS_PORT HVALS omni:msg:cq | grep -c '\"state\":\"retry\"') -eq 3 ]"
[ "$(campaign_field cq cancelled)" = 0 ] && [ "$(campaign_field cq sent)" = 0 ] || fail "cq: counters before the cancel"
code=$(api -X POST "$B/v1/campaigns/cq/cancel")
[ "$code" = 200 ] && q '"state":"cancelled"' "$T/body" || fail "cancel cq: $code $(cat "$T/body")"
# right after the cancel: every recipient counted, nothing left waiting
counters_add_up cq || fail "cq: counters do not add up: $(rcli HGETALL omni:campaign:cq | paste -sd' ')"
[ "$(campaign_field cq cancelled)" = 6 ] || fail "cq: cancelled $(campaign_field cq cancelled)"
[ "$(retry_members)" = 0 ] || fail "cq: retry members left"
[ -n "$(campaign_field cq finished_at)" ] || fail "cq: not finished"
[ -z "$(rraw ZSCORE omni:active cq)" ] || fail "cq: still active"
code=$(api "$B/v1/campaigns/cq")
[ "$code" = 200 ] && python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); assert c["pending"]==0 and c["state"]=="cancelled", c' "$T/body" ||
  fail "cq: GET: $code $(cat "$T/body")"
[ "$(rraw HVALS omni:msg:cq | grep -c '"state":"cancelled"')" = 6 ] || fail "cq: records not cancelled"
# cancelling it again: finished
code=$(api -X POST "$B/v1/campaigns/cq/cancel")
[ "$code" = 409 ] && [ "$(body_code)" = campaign_finished ] || fail "cancel cq again: $code $(cat "$T/body")"
sleep 2
for i in 3001 3002 3003; do [ "$(seen_by "$T/slow.jsonl" +1555000$i)" = 1 ] || fail "cq: +1555000$i asked $(seen_by "$T/slow.jsonl" +1555000$i) times"; done
for i in 3011 3012 3013; do [ "$(seen_by "$T/slow.jsonl" +1555000$i)" = 0 ] || fail "cq: quiet-hours recipient sent"; done
ok "cancel: 3 retrying and 3 quiet-hours recipients cancelled at once (counters add up, pending 0, finished); provider got each throttled one once"

# ---- 6. restarts leave no dead consumers; one with pending entries stays
stop_daemon
sed -i '/^consumer = /d' "$T/omni.conf"
for i in 1 2 3 4; do
  start_daemon "$T/omni.conf" "restart$i"
  wait_for 20 sh -c "redis-cli -p $REDIS_PORT XINFO CONSUMERS omni:jobs omnicast | grep -q -- '-$DAEMON_PID\$'"
  if [ $((i % 2)) = 1 ]; then kill -KILL "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null || true; else stop_daemon; fi
done
# a consumer that still holds an entry: never removed
rcli XADD omni:chunks '*' c ghostcamp s 0 e 1 >/dev/null
rcli XREADGROUP GROUP omnicast ghost COUNT 1 STREAMS omni:chunks '>' >/dev/null
consumers() { rraw XINFO CONSUMERS "$1" omnicast | awk 'p{print; p=0} $0=="name"{p=1}' | sort | paste -sd' '; }
[ "$(rraw XINFO CONSUMERS omni:jobs omnicast | grep -c '^name$')" -ge 5 ] || fail "no dead consumers to remove: $(consumers omni:jobs)"
sed -i 's/^claim_idle_ms = .*/claim_idle_ms = 600000/' "$T/omni.conf"
printf 'consumer_idle_remove_ms = 1000\n' >"$T/extra"
sed -i "/^\[daemon\]/r $T/extra" "$T/omni.conf"
start_daemon "$T/omni.conf" last
live="$(hostname)-$DAEMON_PID"
wait_for 20 sh -c "[ \"\$(redis-cli -p $REDIS_PORT --raw XINFO CONSUMERS omni:jobs omnicast | grep -c -x name)\" = 1 ]"
wait_for 20 sh -c "[ \"\$(redis-cli -p $REDIS_PORT --raw XINFO CONSUMERS omni:chunks omnicast | grep -c -x name)\" = 2 ]"
[ "$(consumers omni:jobs)" = "$live" ] || fail "jobs group: $(consumers omni:jobs), want $live"
[ "$(consumers omni:chunks)" = "$(printf '%s\n' ghost "$live" | sort | paste -sd' ')" ] ||
  fail "chunks group: $(consumers omni:chunks), want ghost and $live"
q 'removed consumer test-1 from omni:jobs' "$T/last.log" || fail "no log line for the removal"
# the live instance still works
enqueue "{\"type\":\"broadcast\",\"id\":\"after\",\"channel\":\"whatsapp\",\"message\":{\"text\":\"x\"},\"recipients\":$(rcpts 1051 2)}"
wait_for 20 campaign_done after
[ "$(seen_by "$T/prov.jsonl" +15550001051)" = 1 ] || fail "after restarts: not sent once"
stop_daemon
check_logs_clean
ok "4 restarts (2 kill -9, 2 SIGTERM): dead consumers removed from both groups, one with a pending entry kept, the live one works"
