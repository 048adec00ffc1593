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

cat >"$T/omnicast.conf" <<CONF
[daemon]
redis = redis://127.0.0.1:$port/0
consumer = demo
block_ms = 200

[connector.outbox]
type = outbox
path = $T/outbox.jsonl

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
echo "== a bad job goes to omni:dead with its reason"
redis-cli -p "$port" XADD omni:jobs '*' job '{"type":"broadcast","id":"bad","channel":"fax"}' >/dev/null
sleep 1
"$BUILD/omnicast" --config "$T/omnicast.conf" dead list 1
echo
echo "== stopping (SIGTERM: drain, then exit)"
kill -TERM "$DAEMON"; wait "$DAEMON" || true
echo "== demo done"
