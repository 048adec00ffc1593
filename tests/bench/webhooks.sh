#!/bin/bash
# make bench-webhooks: inbound throughput. wrk posts signed WhatsApp status
# webhooks (X-Hub-Signature-256 over each body) to omnicastd for a fixed
# time; every 2xx means the event was written to Redis (inbound.lua) before
# the answer. Prints webhooks_per_s first. BENCH_SECONDS (default 10),
# BENCH_CONNS (wrk connections, default 64).
SECS=${BENCH_SECONDS:-10}
CONNS=${BENCH_CONNS:-64}
BENCH_NAME=wbench
source "$(dirname "$0")/lib.sh"
command -v wrk >/dev/null || { echo "bench: wrk missing (make bench-webhooks installs it)" >&2; exit 1; }
HP=$(free_port)
start_bench_redis
cat >"$T/omni.conf" <<CONF
[daemon]
redis = redis://127.0.0.1:$RP/0
consumer = wbench
log_level = warn
http_listen = 127.0.0.1:$HP
http_max_connections = 4096

[connector.wa]
type = whatsapp
api_base = http://127.0.0.1:9
phone_number_id = 1234567890
access_token = testtoken
app_secret = appsecret

[channels]
whatsapp = wa
CONF
# 20,000 sent messages for the statuses to refer to
python3 - <<'PY' | redis-cli -p "$RP" --pipe >/dev/null
import sys
out = sys.stdout.buffer
def cmd(*a):
    out.write(b"*%d\r\n" % len(a))
    for x in a:
        x = x.encode(); out.write(b"$%d\r\n%s\r\n" % (len(x), x))
cmd("HSET", "omni:campaign:wb", "id", "wb", "state", "done", "total", "20000", "sent", "20000")
for i in range(20000):
    a = "+1555%07d" % i
    cmd("SET", "omni:pmid:wamid.B%d" % i, '{"c":"wb","ch":"whatsapp","a":"%s"}' % a)
    cmd("HSET", "omni:msg:wb", "whatsapp:" + a, '{"state":"sent","slot":"%d","channel":"whatsapp"}' % i)
PY
start_bench_daemon
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$HP/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
# a wrk script cycling through pre-signed status payloads (delivered, read)
python3 - "$T/wrk.lua" <<'PY'
import hashlib, hmac, json, sys
bodies = []
for i in range(20000):
    for st in ("delivered", "read"):
        b = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [{"field": "messages", "value": {"messaging_product": "whatsapp", "metadata": {"display_phone_number": "15551230000", "phone_number_id": "1234567890"}, "statuses": [{"id": "wamid.B%d" % i, "status": st, "timestamp": "1700000000", "recipient_id": "1555%07d" % i}]}}]}]}, separators=(",", ":"))
        bodies.append((b, "sha256=" + hmac.new(b"appsecret", b.encode(), hashlib.sha256).hexdigest()))
with open(sys.argv[1], "w") as f:
    f.write("local bodies = {\n")
    for b, s in bodies:
        f.write("{%s,%s},\n" % (json.dumps(b), json.dumps(s)))
    f.write("}\nlocal i = 0\nrequest = function()\n  i = i % #bodies + 1\n")
    f.write("  return wrk.format('POST', '/webhooks/wa', {['Content-Type']='application/json', ['X-Hub-Signature-256']=bodies[i][2]}, bodies[i][1])\nend\n")
PY
hz=$(getconf CLK_TCK)
d0=$(ticks "$DAEMON_PID"); r0=$(ticks "$REDIS_PID")
wrk -t 1 -c "$CONNS" -d "${SECS}s" -s "$T/wrk.lua" "http://127.0.0.1:$HP" >"$T/wrk.out" 2>&1
d1=$(ticks "$DAEMON_PID"); r1=$(ticks "$REDIS_PID")
stop_perf
rps=$(awk '/Requests\/sec/ {print $2}' "$T/wrk.out")
non2xx=$(awk '/Non-2xx/ {print $5}' "$T/wrk.out")
reqs=$(awk '/requests in/ {print $1}' "$T/wrk.out")
delivered=$(redis-cli -p "$RP" --raw HGET omni:campaign:wb delivered)
python3 - <<PY
print("webhooks_per_s=%.0f" % float("$rps"))
print("requests=$reqs")
print("non_2xx=${non2xx:-0}")
print("delivered_counted=${delivered:-0}")
n = max(int("$reqs"), 1)
print("cpu_us_per_webhook_daemon=%.1f" % (($d1-$d0)/$hz/n*1e6))
print("cpu_us_per_webhook_redis=%.1f" % (($r1-$r0)/$hz/n*1e6))
PY
