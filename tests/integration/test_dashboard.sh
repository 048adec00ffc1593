#!/bin/bash
# The dashboard (/ui/) as a person sees it, in headless Chromium against a
# running daemon with a finished campaign, a running one and a reply: the
# campaign's numbers equal the API's, Pause on the page pauses it, the
# conversation shows the reply, connectors are listed; a phone in the dark;
# a refused token in words; no script error and no CSP violation. The
# pages' screenshots go to the build folder (dashboard/*.png). Also the
# serving itself: CSP, ETag / 304, /ui redirect, 404, methods.
source "$(dirname "$0")/lib.sh"
command -v chromium >/dev/null || fail "chromium is not installed (make deps installs it)"

start_redis
# the provider refuses the account once (WhatsApp 190: the token expired): the wa instance halts
start_mock prov --fail-plan "wa_code=190:first=1"
HTTP=$(free_port)
TOKEN=dash-token-$RANDOM$RANDOM
READ_TOKEN=dash-read-$RANDOM$RANDOM
printf '%s\n%s read\n' "$TOKEN" "$READ_TOKEN" >"$T/tokens"
chmod 600 "$T/tokens"
daemon_conf "$T/d.conf" "http_listen = 127.0.0.1:$HTTP
api_tokens_file = $T/tokens

[connector.outbox]
type = outbox
path = $T/outbox.jsonl
accept_replies = true

[connector.slow]
type = outbox
path = $T/slow.jsonl
rate_per_s = 2
burst = 1

$(wa_section "$MOCK_PORT")

[channels]
sms = outbox
email = slow
whatsapp = wa"
start_daemon "$T/d.conf"
BASE=http://127.0.0.1:$HTTP
wait_for 30 curl -sf "$BASE/readyz"

# ---- serving
h=$(curl -si "$BASE/ui/")
echo "$h" | q -i "^content-security-policy: default-src 'none'; script-src 'self'" || fail "no strict CSP on /ui/: $h"
echo "$h" | q -i '^content-type: text/html' || fail "/ui/ is not html"
etag=$(echo "$h" | tr -d '\r' | sed -n 's/^[Ee][Tt]ag: //p')
[ -n "$etag" ] || fail "no ETag on /ui/"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$BASE/ui/")" = 304 ] || fail "If-None-Match with the ETag is not 304"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H 'If-None-Match: "other"' "$BASE/ui/")" = 200 ] || fail "another ETag is not 200"
curl -si "$BASE/ui" | q -i '^location: /ui/' || fail "/ui does not redirect to /ui/"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/ui/nope.js")" = 404 ] || fail "an unknown file is not 404"
[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$BASE/ui/")" = 405 ] || fail "POST /ui/ is not 405"
curl -sI "$BASE/ui/app.js" | q -i '^content-type: text/javascript' || fail "app.js type"
# the page has no inline script or style (the CSP would block them)
page=$(curl -s "$BASE/ui/")
echo "$page" | grep -E '<script>|<script [^>]*>[^<]|<style|style="|onclick=' && fail "inline script or style in index.html"
ok "served with a strict CSP, ETag/304, /ui redirect, 404 and 405"

# ---- a finished campaign with a reply, a running one
enqueue '{"type":"broadcast","id":"dash-done","channel":"sms","message":{"text":"Hi {{name|there}}, 30% off today"},"recipients":[{"to":"+15550000001","vars":{"name":"Ana"}},{"to":"+15550000002"},{"to":"+15550000003"},{"to":"+15550000004"}]}'
wait_for 30 campaign_done dash-done
REPLY="Is the 30% also on shoes?"
curl -sf -X POST -H 'Content-Type: application/json' \
  -d "{\"from\":\"+15550000001\",\"text\":\"$REPLY\",\"id\":\"in-1\",\"in_reply_to\":\"outbox-dash-done.0\"}" \
  "$BASE/webhooks/outbox" >/dev/null || fail "the reply was refused"
wait_for 20 test -n "$(rraw HGET omni:contact:sms:+15550000001 open_conv)"
CONV=$(rraw HGET omni:contact:sms:+15550000001 open_conv)
[ "$(campaign_field dash-done replied)" = 1 ] || fail "the reply was not counted"
python3 - "$T/running.json" <<'PY'
import json, sys
r = [{"to": "user%d@example.com" % i} for i in range(400)]
json.dump({"type": "broadcast", "id": "dash-running", "channel": "email",
           "message": {"subject": "Sale", "text": "30% off"}, "recipients": r}, open(sys.argv[1], "w"))
PY
enqueue "$(cat "$T/running.json")"
enqueue '{"type":"broadcast","id":"dash-bad","channel":"fax","message":{"text":"x"},"recipients":[{"to":"+15550000001"}]}'
wait_for 20 test "$(rraw XLEN omni:dead)" -ge 1
enqueue '{"type":"broadcast","id":"dash-wa","channel":"whatsapp","message":{"text":"hello"},"recipients":[{"to":"+15550000201"}]}'
wait_for 30 sh -c "curl -sf $BASE/metrics | grep -q '^omnicast_connector_halted{connector=\"wa\"} 1'"
wait_for 30 test "$(campaign_field dash-running state)" = running
ok "a finished campaign ($CONV from its reply), a running one, a dead letter, a halted connector"

OUT="$OMNI_BUILD/dashboard"
rm -rf "$OUT"
mkdir -p "$OUT"
set +e
timeout 400 python3 "$OMNI_SRC/tests/integration/dashboard_check.py" "$BASE" "$TOKEN" "$OUT" \
  dash-done dash-running "$CONV" "$REPLY" "$READ_TOKEN" >"$T/check.log" 2>&1 &
CHECK=$!
PIDS+=("$CHECK")
wait "$CHECK"
rc=$?
set -e
# chromium, by the PID the check wrote, if it is still there
if [ -f "$OUT/chromium.pid" ]; then
  cpid=$(cat "$OUT/chromium.pid")
  kill -0 "$cpid" 2>/dev/null && { kill -TERM "$cpid" 2>/dev/null || true; }
  rm -f "$OUT/chromium.pid"
fi
cat "$T/check.log"
[ "$rc" -eq 0 ] || fail "the dashboard check failed (exit $rc)"
# the recipient the halted instance held went out after Resume on the page
wait_for 30 campaign_done dash-wa
[ "$(recorded_tos "$T/prov.jsonl" | grep -c '^15550000201$')" = 2 ] || fail "the held recipient was not sent after the resume (refused once, then once accepted)"
ok "after Resume on the page the held recipient reached the provider"
# the agent's answer typed on the page reached the contact once
[ "$(grep -c 'shoes too: 30% off until Sunday' "$T/outbox.jsonl")" = 1 ] || fail "the agent's message did not go out once"
grep 'shoes too: 30% off until Sunday' "$T/outbox.jsonl" | q '+15550000001' || fail "the agent's message went to someone else"
ok "the reply typed on the page went out once, to the contact"
for p in campaigns campaign-done campaign-running conversations conversation operations campaign-phone-dark; do
  [ -s "$OUT/$p.png" ] || fail "no screenshot $p.png"
done
ok "screenshots in $OUT"

stop_daemon
check_logs_clean
