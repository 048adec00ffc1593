#!/bin/bash
# `make demo`: a private Redis and omnicastd with the outbox connector, one
# small campaign through the real queue, then what was sent and the
# campaign's counters. Everything started here is stopped by PID on exit.
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
SRC=$(cd "$(dirname "$0")/.." && pwd)
T=$(mktemp -d /tmp/omnicast-demo.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$T"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
http=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

echo "== starting a private redis-server on 127.0.0.1:$port (data in $T)"
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$T" \
  --logfile "$T/redis.log" --daemonize no &
PIDS+=($!)
for _ in $(seq 1 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done

token=$(openssl rand -hex 16)
echo "$token" >"$T/api_tokens"
chmod 600 "$T/api_tokens"
cat >"$T/omnicast.conf" <<CONF
[daemon]
redis = redis://127.0.0.1:$port/0
consumer = demo
block_ms = 200
http_listen = 127.0.0.1:$http
api_tokens_file = $T/api_tokens

[connector.outbox]
type = outbox
path = $T/outbox.jsonl
accept_replies = true

[channels]
sms = outbox
email = outbox
whatsapp = outbox
CONF
echo "== omnicastd --config $T/omnicast.conf"
"$BUILD/omnicastd" --config "$T/omnicast.conf" >"$T/omnicastd.log" 2>&1 &
DAEMON=$!
PIDS+=($DAEMON)

echo "== omnicast enqueue examples/demo-campaign.json"
"$BUILD/omnicast" --config "$T/omnicast.conf" enqueue "$SRC/examples/demo-campaign.json"

for _ in $(seq 1 100); do
  [ "$(redis-cli -p "$port" --raw HGET omni:campaign:demo-black-friday state)" = done ] && break
  sleep 0.1
done
echo
echo "== what the outbox connector sent ($T/outbox.jsonl)"
cat "$T/outbox.jsonl" 2>/dev/null || echo "(nothing)"
echo
echo "== omnicast status demo-black-friday"
"$BUILD/omnicast" --config "$T/omnicast.conf" status demo-black-friday
echo
echo "== Ana replies (POST /webhooks/outbox, quoting message demo-black-friday.0)"
curl -s -X POST -H 'Content-Type: application/json' \
  -d '{"from":"+15550000001","text":"Yes! Is the 30% also on shoes?","id":"in-1","in_reply_to":"outbox-demo-black-friday.0"}' \
  "http://127.0.0.1:$http/webhooks/outbox"; echo
for _ in $(seq 1 50); do
  conv=$(redis-cli -p "$port" --raw HGET omni:contact:sms:+15550000001 open_conv)
  [ -n "$conv" ] && break; sleep 0.1
done
echo "== the sales conversation it opened (omni:conv:$conv), attributed to the campaign"
redis-cli -p "$port" --raw HGETALL "omni:conv:$conv" | paste - - | grep -E '^(id|contact|channel|origin|campaign|state)\b'
echo "-- its log:"
redis-cli -p "$port" --raw XRANGE "omni:conv:$conv:log" - + | grep -A1 '^text$' | sed -n 2p
echo "-- events for the CRM (omni:conversations):"
redis-cli -p "$port" --raw XRANGE omni:conversations - + | grep '^{'
echo
echo "== the funnel: replied is counted on the campaign"
"$BUILD/omnicast" --config "$T/omnicast.conf" status demo-black-friday | grep -E 'sent|replied'
echo
echo "== a bad job goes to omni:dead with its reason"
redis-cli -p "$port" XADD omni:jobs '*' job '{"type":"broadcast","id":"bad","channel":"fax"}' >/dev/null
sleep 1
"$BUILD/omnicast" --config "$T/omnicast.conf" dead list 1
echo
echo "== the dashboard: http://127.0.0.1:$http/ui/#token=$token"
if [ -t 0 ] && [ -t 1 ] && [ -z "${DEMO_EXIT:-}" ]; then
  # a person at a terminal: keep everything running for the browser
  echo "   (open it in a browser on this machine; press Ctrl-C here to stop the demo)"
  trap 'echo; echo "== stopping"' INT
  while kill -0 "$DAEMON" 2>/dev/null; do sleep 1; done || true
  trap - INT
fi
echo "== stopping (SIGTERM: drain, then exit)"
kill -TERM "$DAEMON" 2>/dev/null || true
wait "$DAEMON" 2>/dev/null || true
echo "== demo done"
