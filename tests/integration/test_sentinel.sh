#!/bin/bash
# Sentinel failover without duplicates: a primary, a replica and three
# sentinels on loopback; the daemon finds the primary through the
# sentinels, WAITs for one replica after every claim batch
# (redis_wait_replicas = 1), and sends to the mock provider slowly enough
# that a campaign spans the failover.
#
#   1. kill -9 the primary mid-campaign: the sentinels promote the replica;
#      with no replica left WAIT comes back short (nothing is sent, /readyz
#      degraded, the metric counts it); the old node comes back as a replica
#      and the campaign finishes on the new primary.
#   2. SENTINEL FAILOVER mid-campaign: the same, without a crash.
# Each time the provider accepted nobody twice, everyone once, and the
# counters add up.
source "$(dirname "$0")/lib.sh"

N=300

# --check-config: the sentinel keys come together and every address parses
cat >"$T/bad.conf" <<CONF
[daemon]
redis_sentinels = 127.0.0.1:1,,127.0.0.1:2
redis_sentinel_password = x
redis_sentinel_password_file = /nonexistent

[connector.out]
type = outbox
path = $T/out.jsonl

[channels]
sms = out
CONF
rc=0
"$OMNI_BUILD/omnicastd" --config "$T/bad.conf" --check-config >/dev/null 2>"$T/check.log" || rc=$?
[ $rc -ne 0 ] || fail "--check-config accepted bad sentinel settings"
grep -qF "bad.conf:2: [daemon] redis_sentinels and redis_sentinel_master go together" "$T/check.log" ||
  fail "no error for a missing redis_sentinel_master: $(cat "$T/check.log")"
grep -qF "redis_sentinel_password and redis_sentinel_password_file: give one" "$T/check.log" ||
  fail "no error for both sentinel passwords: $(cat "$T/check.log")"
sed -i 's/^redis_sentinel_password.*$//' "$T/bad.conf"
sed -i 's/^\[daemon\]$/[daemon]\nredis_sentinel_master = m/' "$T/bad.conf"
"$OMNI_BUILD/omnicastd" --config "$T/bad.conf" --check-config >/dev/null 2>"$T/check.log" || true
grep -qF "[daemon] redis_sentinels: an empty entry" "$T/check.log" ||
  fail "no error for an empty sentinel entry: $(cat "$T/check.log")"
ok "--check-config refuses incomplete or malformed sentinel settings"
P1=$(free_port)
P2=$(free_port)
S=($(free_port) $(free_port) $(free_port))

node() { # node PORT [ARGS...]: a data node; sets NODE_PID
  local port=$1
  shift
  mkdir -p "$T/n$port"
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$T/n$port" \
    --logfile "$T/node$port.log" --daemonize no "$@" &
  NODE_PID=$!
  PIDS+=("$NODE_PID")
  wait_for 20 redis-cli -p "$port" ping
}

node "$P1"
P1_PID=$NODE_PID
node "$P2" --replicaof 127.0.0.1 "$P1"
for s in "${S[@]}"; do
  mkdir -p "$T/s$s"
  cat >"$T/s$s/sentinel.conf" <<CONF
port $s
bind 127.0.0.1
dir $T/s$s
logfile $T/sentinel$s.log
sentinel monitor m 127.0.0.1 $P1 2
sentinel down-after-milliseconds m 1000
sentinel failover-timeout m 4000
sentinel parallel-syncs m 1
CONF
  redis-server "$T/s$s/sentinel.conf" --sentinel &
  PIDS+=("$!")
done
for s in "${S[@]}"; do wait_for 20 redis-cli -p "$s" ping; done

sentinel_field() { # sentinel_field FIELD: from SENTINEL MASTER m on the first sentinel
  redis-cli -p "${S[0]}" --raw SENTINEL MASTER m | awk -v f="$1" 'p { print; exit } $0 == f { p = 1 }'
}
primary_port() { redis-cli -p "${S[0]}" --raw SENTINEL get-master-addr-by-name m | tail -n 1; }
primary_is() { [ "$(primary_port)" = "$1" ]; }
sentinels_ready() {
  [ "$(sentinel_field num-other-sentinels)" = 2 ] && [ "$(sentinel_field num-slaves)" -ge 1 ]
}
wait_for 40 sentinels_ready
ok "three sentinels monitor primary :$P1 with replica :$P2"

REDIS_PORT=$P1
start_mock wa --latency-ms 30
HTTP_PORT=$(free_port)
LEASE_MS=10000 daemon_conf "$T/omni.conf" "
redis_sentinels = 127.0.0.1:${S[0]}, 127.0.0.1:${S[1]},127.0.0.1:${S[2]}
redis_sentinel_master = m
redis_wait_replicas = 1
redis_wait_timeout_ms = 300
redis_timeout_ms = 2000
sweep_interval_ms = 1000
sweep_idle_ms = 5000
http_listen = 127.0.0.1:$HTTP_PORT
$(wa_section "$MOCK_PORT" "rate_per_s = 12
burst = 2")
[channels]
whatsapp = wa"
# the URL's host is not used with sentinels: only its database
sed -i "s|^redis = .*|redis = redis://sentinel-managed/0|" "$T/omni.conf"
"$OMNI_BUILD/omnicastd" --config "$T/omni.conf" --check-config >"$T/cc.out" 2>&1 ||
  fail "--check-config refused the sentinel configuration: $(cat "$T/cc.out")"
start_daemon "$T/omni.conf"
wait_for 30 sh -c "curl -fsS http://127.0.0.1:$HTTP_PORT/readyz | grep -q '\"ready\"'"
grep -q "sentinel 127.0.0.1:${S[0]} names 127.0.0.1:$P1 as the primary of m" "$T/daemon.log" ||
  fail "no log line naming the sentinel and the primary"
ok "daemon found primary :$P1 through the sentinels"

# the CLI asks the sentinels too
"$OMNI_BUILD/omnicast" --config "$T/omni.conf" campaigns >"$T/cli.out" 2>&1 ||
  fail "omnicast campaigns through the sentinels: $(cat "$T/cli.out")"
ok "omnicast --config campaigns through the sentinels"

list() { # list KEY PREFIX: N recipients +PREFIX%07d
  python3 - "$1" "$2" "$N" <<'PY' | redis-cli -p "$REDIS_PORT" --pipe >/dev/null
import sys
from resp import cmd
key, pre, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
cmd("RPUSH", key, *['{"to":"+%s%07d"}' % (pre, i) for i in range(1, n + 1)])
PY
}
# provider_check PREFIX: nobody accepted twice, everyone once
provider_check() {
  python3 - "$T/wa.jsonl" "$1" "$N" <<'PY'
import sys
from provider import counts
req, acc = counts(sys.argv[1], sys.argv[2])
n = int(sys.argv[3])
twice = [t for t, c in acc.items() if c > 1]
print("provider: %d requests, %d accepted, %d recipients, %d twice" %
      (sum(req.values()), sum(acc.values()), len(acc), len(twice)))
sys.exit(1 if twice or len(acc) != n else 0)
PY
}
# sends N: requests the provider saw for recipients +N%07d
sends() { grep -cE "to[^0-9]{5}\+?$1[0-9]{7}" "$T/wa.jsonl" 2>/dev/null || true; }
sent_at_least() { [ "$(sends "$1")" -ge "$2" ]; }
metric() { curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
wait_short_over() { [ "$(metric omnicast_redis_wait_short_total)" -gt "$1" ]; }
campaign() { # campaign ID LIST
  enqueue "{\"type\":\"broadcast\",\"id\":\"$1\",\"channel\":\"whatsapp\",\"message\":{\"text\":\"hi\"},\"recipients_list\":\"$2\"}"
}

# ---- 1: kill -9 the primary mid-campaign
list seg1 1666
campaign c1 seg1
wait_for 30 sent_at_least 1666 60
# (a WAIT can come back short at the start too, before the replica synced:
# what counts is a short one after the kill)
w0=$(metric omnicast_redis_wait_short_total)
kill -KILL "$P1_PID"
wait "$P1_PID" 2>/dev/null || true
ok "primary :$P1 killed after $(sends 1666) sends"
wait_for 40 primary_is "$P2"
ok "the sentinels promoted :$P2"
REDIS_PORT=$P2
# no replica now: WAIT comes back short, nothing is sent, /readyz degraded
wait_for 30 wait_short_over "${w0:-0}"
curl -sS "http://127.0.0.1:$HTTP_PORT/readyz" | grep -q degraded || fail "/readyz not degraded"
before=$(sends 1666)
sleep 2
[ "$(sends 1666)" -eq "$before" ] || fail "sent while WAIT was short"
ok "WAIT short without a replica: nothing sent, /readyz degraded"
node "$P1" --replicaof 127.0.0.1 "$P2"
P1_PID=$NODE_PID
wait_for 90 campaign_done c1
sleep 1
provider_check 1666 || fail "campaign c1 across a kill -9 failover"
counters_add_up c1 || fail "c1 counters do not add up: $(rraw HGETALL omni:campaign:c1 | paste -sd' ')"
grep -q "names 127.0.0.1:$P2 as the primary" "$T/daemon.log" || fail "no rediscovery logged"
ok "c1 finished on :$P2: nobody twice, counters add up ($(rraw HGETALL omni:campaign:c1 | paste -sd' '))"

# ---- 2: SENTINEL FAILOVER mid-campaign
replica_seen() {
  redis-cli -p "${S[0]}" --raw SENTINEL REPLICAS m | grep -qx "$P1" &&
    redis-cli -p "$P1" INFO replication | grep -q 'master_link_status:up'
}
wait_for 60 replica_seen
list seg2 1777
campaign c2 seg2
wait_for 30 sent_at_least 1777 60
failover() { redis-cli -p "${S[1]}" SENTINEL FAILOVER m | grep -q OK; }
wait_for 40 failover
wait_for 40 primary_is "$P1"
ok "SENTINEL FAILOVER: primary now :$P1"
REDIS_PORT=$P1
wait_for 90 campaign_done c2
sleep 1
provider_check 1777 || fail "campaign c2 across SENTINEL FAILOVER"
counters_add_up c2 || fail "c2 counters do not add up: $(rraw HGETALL omni:campaign:c2 | paste -sd' ')"
ok "c2 finished on :$P1: nobody twice, counters add up ($(rraw HGETALL omni:campaign:c2 | paste -sd' '))"
stop_daemon
check_logs_clean
# KEEP_T=DIR keeps the logs of a passing run for a look
if [ -n "${KEEP_T:-}" ]; then cp -r "$T" "$KEEP_T"; fi
