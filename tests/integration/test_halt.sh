#!/bin/bash
# Halt (OC_HALT, issue 18 point 4): a WhatsApp account-level error halts its
# connector instance instead of failing the campaign. No recipient fails,
# none falls back, the instance sends nothing more (other instances keep
# going), and the metric, /readyz and omni:events say so. It resumes with
# `omnicast connector resume`, with POST /v1/connectors/{name}/resume, or
# after halt_probe_s with a probe (another halt waits again). Each
# recipient reaches the provider accepted exactly once.
source "$(dirname "$0")/lib.sh"

start_redis
# the first request of all: 190 (expired token); 2000201 once: 368 (policy
# block); 0301 twice: 131031 (account locked)
start_mock prov --fail-plan "wa_code=190:first=1,wa_code=368:to=15552000201:first=1,wa_code=131031:to=15550000301:first=2"
HTTP_PORT=$(free_port)
printf 'tok-halt-0123456789\n' >"$T/tokens"
chmod 0600 "$T/tokens"
daemon_conf "$T/omni.conf" "
http_listen = 127.0.0.1:$HTTP_PORT
api_tokens_file = $T/tokens

$(wa_section "$MOCK_PORT" "rate_per_s = 20
max_inflight = 4")

[connector.wa2]
type = whatsapp
api_base = http://127.0.0.1:$MOCK_PORT
phone_number_id = 2234567890
access_token = testtoken
app_secret = appsecret
verify_token = verifytoken
halt_probe_s = 8
session_window_s = 0

[connector.sms]
type = twilio
api_base = http://127.0.0.1:$MOCK_PORT
account_sid = AC1
auth_token = t
from = +15551230000

[channels]
whatsapp = wa
whatsapp2 = wa2
sms = sms"
start_daemon "$T/omni.conf"
wait_for 20 curl -sf "http://127.0.0.1:$HTTP_PORT/readyz"
J="$T/prov.jsonl"
oc() { "$OMNI_BUILD/omnicast" --config "$T/omni.conf" "$@"; }
metric() { curl -sf "http://127.0.0.1:$HTTP_PORT/metrics" | grep "^omnicast_connector_halted{connector=\"$1\"}" | awk '{print $2}'; }
halted() { [ "$(metric "$1")" = 1 ]; }
running() { [ "$(metric "$1")" = 0 ]; }
# wa_requests PHONE_NUMBER_ID: requests the mock saw for that instance
wa_requests() { grep -c "/$1/messages" "$J" || true; }
# accepted_once PREFIX N: every one of N recipients accepted (200) exactly once
accepted_once() {
  python3 - "$J" "$1" "$2" <<'PY'
import json, sys
path, prefix, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
ok = {}
for l in open(path):
    r = json.loads(l)
    if r["path"].endswith("/messages") and r["status"] == 200:
        to = json.loads(r["body"])["to"]
        if to.startswith(prefix):
            ok[to] = ok.get(to, 0) + 1
bad = {k: v for k, v in ok.items() if v != 1}
assert not bad and len(ok) == n, (len(ok), bad)
PY
}
# sends_to NUMBER: requests the mock saw for that WhatsApp number
sends_to() {
  python3 - "$J" "$1" <<'PY'
import json, sys
print(sum(1 for l in open(sys.argv[1]) if json.loads(l)["path"].endswith("/messages")
          and json.loads(json.loads(l)["body"])["to"] == sys.argv[2]))
PY
}
recipients() { # PREFIX N
  python3 -c "import json,sys; print(json.dumps([{'to':'+%s%03d' % (sys.argv[1], i)} for i in range(1, int(sys.argv[2]) + 1)]))" "$1" "$2"
}

# ---- a campaign halts on 190 (whatsapp then sms: nothing falls back)
enqueue "{\"type\":\"broadcast\",\"id\":\"h1\",\"channels\":[\"whatsapp\",\"sms\"],\"message\":{\"text\":\"hi\"},\"recipients\":$(recipients 1555000 40)}"
wait_for 30 halted wa
sleep 2
n1=$(wa_requests 1234567890)
[ "$n1" -ge 1 ] && [ "$n1" -le 4 ] || fail "after the halt the provider saw $n1 requests (at most max_inflight = 4)"
sleep 2
[ "$(wa_requests 1234567890)" = "$n1" ] || fail "the halted instance kept sending"
! grep -q '/Messages.json' "$J" || fail "a halted recipient fell back to sms"
[ "$(campaign_field h1 failed)" = 0 ] || fail "a halted recipient counted failed"
! campaign_done h1 || fail "the campaign finished while halted"
curl -s "http://127.0.0.1:$HTTP_PORT/readyz" | tee "$T/readyz.json" | q '"degraded"' || fail "readyz: $(cat "$T/readyz.json")"
q '"wa"' "$T/readyz.json" || fail "readyz does not name the halted instance"
curl -sf -o /dev/null "http://127.0.0.1:$HTTP_PORT/readyz" || fail "readyz is not 200 while degraded"
rraw XRANGE omni:events - + | tr '\n' ' ' | q 'connector.halted connector wa .*reason auth_expired' ||
  fail "no connector.halted event: $(rraw XRANGE omni:events - + | tr '\n' ' ')"
[ "$(grep -c 'connector wa: halted' "$T/daemon.log")" = 1 ] || fail "the halt is not logged once"
ok "190 halted wa: $n1 requests, no failure, no fallback, metric, readyz degraded, event, one log line"

# other instances keep going while wa is halted
enqueue "{\"type\":\"broadcast\",\"id\":\"o1\",\"channel\":\"whatsapp2\",\"message\":{\"text\":\"hi\"},\"recipients\":$(recipients 1555100 5)}"
wait_for 30 campaign_done o1
halted wa || fail "wa resumed on its own"
ok "wa2 sends while wa is halted"

# ---- resume through the CLI
oc connector resume wa | q 'resume requested' || fail "connector resume"
wait_for 30 running wa
wait_for 60 campaign_done h1
[ "$(campaign_field h1 sent)" = 40 ] && [ "$(campaign_field h1 failed)" = 0 ] ||
  fail "h1 counters: $(rraw HGETALL omni:campaign:h1 | tr '\n' ' ')"
accepted_once 1555000 40 || fail "a recipient was not accepted exactly once"
! grep -q '/Messages.json' "$J" || fail "something fell back to sms"
rraw XRANGE omni:events - + | tr '\n' ' ' | q 'connector.resumed connector wa .*by operator' || fail "no resumed event"
curl -s "http://127.0.0.1:$HTTP_PORT/readyz" | q '"ready"' || fail "readyz not ready after resume"
rc=0; oc connector resume 2>/dev/null || rc=$?
[ "$rc" = 2 ] || fail "connector resume without a name: exit $rc"
rc=0; oc connector resume nope 2>/dev/null || rc=$?
[ "$rc" = 1 ] || fail "resume of an unknown instance: exit $rc"
ok "omnicast connector resume wa: the campaign completed, each recipient accepted once"

# ---- resume through the API (368 once for 2000201)
enqueue "{\"type\":\"broadcast\",\"id\":\"h2\",\"channel\":\"whatsapp\",\"message\":{\"text\":\"hi\"},\"recipients\":[{\"to\":\"+15552000201\"},{\"to\":\"+15552000202\"},{\"to\":\"+15552000203\"}]}"
wait_for 30 halted wa
rraw XRANGE omni:events - + | tr '\n' ' ' | q 'reason policy_block' || fail "no policy_block halt"
code=$(curl -s -o "$T/res.json" -w '%{http_code}' -X POST -H 'Authorization: Bearer tok-halt-0123456789' \
  "http://127.0.0.1:$HTTP_PORT/v1/connectors/wa/resume")
[ "$code" = 202 ] || fail "API resume: $code $(cat "$T/res.json")"
q '"was_halted":true' "$T/res.json" || fail "API resume body: $(cat "$T/res.json")"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Authorization: Bearer tok-halt-0123456789' \
  "http://127.0.0.1:$HTTP_PORT/v1/connectors/nope/resume")
[ "$code" = 404 ] || fail "API resume of an unknown instance: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/v1/connectors/wa/resume" \
  -H 'Authorization: Bearer tok-halt-0123456789')
[ "$code" = 405 ] || fail "GET resume: $code"
wait_for 30 campaign_done h2
[ "$(campaign_field h2 sent)" = 3 ] && [ "$(campaign_field h2 failed)" = 0 ] || fail "h2 counters"
accepted_once 155520002 3 || fail "h2: not accepted exactly once"
ok "POST /v1/connectors/wa/resume: 202, the campaign completed"

# ---- the probe after halt_probe_s = 8: refused once more (re-armed), then it resumes
t0=$(date +%s)
enqueue '{"type":"broadcast","id":"p1","channel":"whatsapp2","message":{"text":"hi"},"recipients":[{"to":"+15550000301"}]}'
wait_for 30 halted wa2
wait_for 60 campaign_done p1
dt=$(( $(date +%s) - t0 ))
[ "$dt" -ge 15 ] || fail "the probe resumed wa2 after only ${dt}s (two waits of 8 s)"
[ "$(sends_to 15550000301)" = 3 ] || fail "0301: $(sends_to 15550000301) requests (halt, refused probe, probe)"
[ "$(campaign_field p1 sent)" = 1 ] && [ "$(campaign_field p1 failed)" = 0 ] || fail "p1 counters"
rraw XRANGE omni:events - + | tr '\n' ' ' | q 'connector.resumed connector wa2 .*by probe' || fail "no probe resume event"
grep -q 'connector wa2: the probe was refused' "$T/daemon.log" || fail "the refused probe is not logged"
running wa2 || fail "wa2 still halted"
ok "halt_probe_s: a refused probe waited again, the next one resumed wa2 after ${dt}s"

stop_daemon
check_logs_clean
ok "halt"
