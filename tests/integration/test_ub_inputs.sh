#!/bin/bash
# Issue 16 point 7, end to end (and under the sanitizer build, where any
# undefined behaviour aborts the daemon): a connector rate_per_s of 1e-300,
# a Retry-After of 99999999999999999999, quiet hours "-1:00" and a webhook
# body template with a variable outside a JSON string.
source "$(dirname "$0")/lib.sh"

start_redis

# a provider answering 429 with a Retry-After too big for any integer
HOOK_PORT=$(free_port)
python3 - "$HOOK_PORT" "$T/hook.jsonl" >"$T/hook.log" 2>&1 <<'PY' &
import http.server, json, sys
port, rec = int(sys.argv[1]), sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with open(rec, "a") as f:
            f.write(json.dumps({"body": body.decode()}) + "\n")
        self.send_response(429)
        self.send_header("Retry-After", "99999999999999999999")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
PY
PIDS+=($!)
wait_for 20 python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $HOOK_PORT), 1)"

# ---- a webhook body with {{var}} outside a JSON string is refused at load
daemon_conf "$T/bad.conf" "
[connector.hook]
type = webhook
url = http://127.0.0.1:$HOOK_PORT/
body = {\"to\":\"{{to}}\",\"n\":{{n}}}

[channels]
hook = hook"
# (--check-config runs the connectors' init too, see test_check_config; here
# the daemon itself must refuse to start)
rc=0; timeout 30 "$OMNI_BUILD/omnicastd" --config "$T/bad.conf" >"$T/check.log" 2>&1 || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "a body template with {{n}} outside a string was accepted (rc $rc)"
q -F 'body: {{n}} at offset 19 is outside a JSON string' "$T/check.log" ||
  fail "the refusal does not say why: $(cat "$T/check.log")"
ok "webhook body {{var}} outside a JSON string refused at config load"

daemon_conf "$T/omni.conf" "
[connector.tiny]
type = outbox
path = $T/tiny.jsonl
rate_per_s = 1e-300
burst = 1

[connector.hook]
type = webhook
url = http://127.0.0.1:$HOOK_PORT/
body = {\"to\":\"{{to}}\",\"n\":{{n|json}},\"who\":{{who|json}}}

[channels]
tiny = tiny
hook = hook"
start_daemon "$T/omni.conf"

# ---- rate_per_s = 1e-300: the first message goes (burst 1), the next waits
enqueue '{"type":"broadcast","id":"tiny","channel":"tiny","message":{"text":"x"},"recipients":[{"to":"+15550000001"},{"to":"+15550000002"}]}'
wait_for 20 test -s "$T/tiny.jsonl"
sleep 1
[ "$(wc -l <"$T/tiny.jsonl")" = 1 ] || fail "rate 1e-300 (clamped to 0.01/s) sent $(wc -l <"$T/tiny.jsonl") at once"
kill -0 "$DAEMON_PID" || fail "the daemon died on rate_per_s = 1e-300"
ok "connector rate_per_s = 1e-300 is clamped, not converted out of range"

# ---- Retry-After: 99999999999999999999 on a 429: a retry, no overflow;
# {{n|json}} sent as a number, {{who|json}} as a string
enqueue '{"type":"broadcast","id":"ra","channel":"hook","message":{"text":"x"},"recipients":[{"to":"+15550000010","vars":{"n":"5","who":"Ana \"A\""}}]}'
wait_for 20 test -s "$T/hook.jsonl"
ra_is_retry() { [ "$(msg_field ra hook:+15550000010 state)" = retry ]; }
wait_for 20 ra_is_retry
python3 - "$T/hook.jsonl" <<'PY' || fail "typed body variables"
import json, sys
b = json.loads(json.loads(open(sys.argv[1]).readline())["body"])
assert b == {"to": "+15550000010", "n": 5, "who": "Ana \"A\""}, b
PY
kill -0 "$DAEMON_PID" || fail "the daemon died on Retry-After: 99999999999999999999"
ok "Retry-After: 99999999999999999999 is clamped; {{n|json}} is a JSON number"

# ---- quiet_hours "-1:00" is refused with a reason, not accepted to never send
n0=$(rraw XLEN omni:dead)
enqueue '{"type":"broadcast","id":"qh","channel":"tiny","message":{"text":"x"},"recipients":[{"to":"+15550000020"}],"quiet_hours":{"start":"-1:00","end":"08:00"}}'
wait_for 20 sh -c "[ \$(redis-cli -p $REDIS_PORT XLEN omni:dead) -gt $n0 ]"
rraw XREVRANGE omni:dead + - COUNT 1 | q -F 'quiet_hours.start: must be a time "HH:MM" from 00:00 to 23:59' ||
  fail "quiet hours -1:00: $(rraw XREVRANGE omni:dead + - COUNT 1 | tr '\n' ' ')"
[ -z "$(campaign_field qh state)" ] || fail "a campaign qh was created"
ok "quiet_hours start -1:00 is dead-lettered with its reason"

stop_daemon
check_logs_clean
ok "no sanitizer report"
