#!/bin/bash
# The CRM feed in order per conversation (issue 20 point 2): events of many
# conversations interleaved on omni:conversations reach a CRM (a Python
# receiver recording arrival order) one at a time per conversation, in
# stream order; a post the CRM refuses holds back the later events of its
# conversation only, and they follow it once it is accepted; a daemon killed
# mid-feed and started again loses nothing and keeps the order; with two
# daemons on one Redis only the lease holder posts, and when it is killed
# the other takes over in order.
source "$(dirname "$0")/lib.sh"

start_redis
start_mock wa # a channel the daemon needs; nothing is sent here
start_crm() {
  rm -f "$T/crm.port"
  python3 "$OMNI_SRC/tests/mock/crm_receiver.py" --port-file "$T/crm.port" \
    --record "$T/crm.jsonl" >"$T/crm.log" 2>&1 &
  PIDS+=($!)
  wait_for 20 test -s "$T/crm.port"
  CRM_PORT=$(cat "$T/crm.port")
}
start_crm
crm_ctl() { curl -sf -m 5 -o /dev/null --data-binary "$1" "http://127.0.0.1:$CRM_PORT/_control"; }
printf 'crm-s3cret\n' >"$T/crm_secret"
chmod 600 "$T/crm_secret"
for i in 1 2; do
  port=$(free_port)
  eval "HTTP$i=$port"
  CONSUMER=node-$i daemon_conf "$T/omni$i.conf" "
http_listen = 127.0.0.1:$port
crm_webhook_url = http://127.0.0.1:$CRM_PORT/crm
crm_webhook_secret_file = $T/crm_secret
crm_retry_ms = 1000
crm_lease_ms = 2000
$([ "$i" = 2 ] && echo "crm_max_held = 16")
$(wa_section "$MOCK_PORT")
[channels]
whatsapp = wa"
done
metric() { curl -sf -m 5 "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m {print $2}'; }
# gen PREFIX SEED SPEC...: add the events (see crmfeed.py)
gen() { python3 -m crmfeed gen "$@" | redis-cli -p "$REDIS_PORT" --pipe >/dev/null; }
accepted() { python3 - "$T/crm.jsonl" "$1" <<'PY'
import json, sys
n = sum(1 for l in open(sys.argv[1]) if json.loads(l)["path"] == "/crm" and json.loads(l)["status"] < 300
        and json.loads(json.loads(l)["body"]).get("campaign") == sys.argv[2])
print(n)
PY
}
caught_up() { [ "$(rraw XPENDING omni:conversations crm | head -1)" = 0 ] && [ "$(accepted "$1")" -ge "$2" ]; }

start_daemon "$T/omni1.conf" node1
P1=$DAEMON_PID
wait_for 20 curl -sf "http://127.0.0.1:$HTTP1/readyz"
wait_for 20 sh -c "[ \"\$(redis-cli -p $REDIS_PORT --raw GET omni:crm:lease)\" != '' ]"

# --- 1. a refused post holds back its conversation only
# cvF's first post (conversation.created) is refused (retried each second)
# until a second batch of other conversations, added meanwhile, was
# accepted whole
crm_ctl '{"fail":{"conversation:a-cvF":1000}}'
specs1=(a-cvF:0:4)
for j in $(seq 1 30); do specs1+=("a-cv$j:0:3"); done
specs1+=(mail:ana:0:3 mail:bob:0:3)
gen a 1 "${specs1[@]}"
wait_for 20 sh -c "grep -q '\"key\": \"conversation:a-cvF\".*\"status\": 500' $T/crm.jsonl"
specs2=(a-cvF:4:3)
for j in $(seq 31 60); do specs2+=("a-cv$j:0:3"); done
gen a 2 "${specs2[@]}"
batch2_accepted() { python3 - "$T/crm.jsonl" <<'PY'
import json, sys
n = 0
for l in open(sys.argv[1]):
    r = json.loads(l)
    c = json.loads(r["body"]).get("conversation_id", "") if r["path"] == "/crm" else ""
    n += r["status"] < 300 and c.startswith("a-cv") and c[4:].isdigit() and int(c[4:]) > 30
sys.exit(0 if n >= 90 else 1)
PY
}
wait_for 30 batch2_accepted
crm_ctl '{"release":"conversation:a-cvF"}'
wait_for 30 caught_up a $((7 + 60 * 3 + 6))
check=(a-cvF:7 mail:ana:3 mail:bob:3)
for j in $(seq 1 60); do check+=("a-cv$j:3"); done
python3 -m crmfeed check "$T/crm.jsonl" "${check[@]}" || fail "order (refused post)"
python3 - "$T/crm.jsonl" <<'PY' || fail "the refused conversation held back others"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
recs = [r for r in recs if r["path"] == "/crm"]
for r in recs:
    r["d"] = json.loads(r["body"])
f = [r for r in recs if r["d"].get("conversation_id") == "a-cvF"]
refused = [r for r in f if r["status"] == 500]
assert refused and all(r["d"]["i"] == 0 for r in refused), refused
ok0 = min(r["seq"] for r in f if r["status"] < 300)
assert all(r["seq"] > ok0 for r in f if r["d"]["i"] > 0), "a later event of a-cvF went first"
# the second batch's other conversations went through while a-cvF waited
during = [r for r in recs if refused[0]["seq"] < r["seq"] < ok0 and r["status"] < 300
          and r["d"].get("conversation_id", "") not in ("a-cvF",)
          and int((r["d"].get("conversation_id") or "a-cv0")[4:] or 0) > 30]
assert len(during) == 90, "only %d events of other conversations while a-cvF was held" % len(during)
# signed, and the headers are the event's
import hashlib, hmac
for r in recs:
    assert r["signature"] == "sha256=" + hmac.new(b"crm-s3cret", r["body"].encode(), hashlib.sha256).hexdigest()
    assert r["event"] == r["d"]["type"] and r["delivery"]
print("a-cvF held for %d posts of other conversations" % len(during))
PY
[ "$(metric "$HTTP1" omnicast_crm_failed_total)" -ge 1 ] || fail "omnicast_crm_failed_total"
[ "$(metric "$HTTP1" omnicast_crm_posted_total)" -ge $((7 + 60 * 3 + 6)) ] || fail "omnicast_crm_posted_total"
[ "$(metric "$HTTP1" omnicast_crm_lease)" = 1 ] || fail "omnicast_crm_lease"
[ "$(metric "$HTTP1" omnicast_crm_held)" = 0 ] || fail "omnicast_crm_held"
ok "a refused post held back only its conversation; the others flowed; then it and its followers in order"

# --- 2. killed mid-feed (one conversation's first event refused at that
# moment): started again, nothing lost, the order kept
crm_ctl '{"delay_ms":15,"fail":{"conversation:b-cvR":4}}'
specs=(b-cvR:0:5)
for j in $(seq 1 40); do specs+=("b-cv$j:0:10"); done
gen b 3 "${specs[@]}"
wait_for 60 sh -c "[ \$(grep -c 'b-cv' $T/crm.jsonl) -ge 120 ]"
kill -KILL "$P1"
wait "$P1" 2>/dev/null || true
before=$(grep -c 'b-cv' "$T/crm.jsonl")
start_daemon "$T/omni1.conf" node1
P1=$DAEMON_PID
wait_for 60 caught_up b 405
check=(b-cvR:5)
for j in $(seq 1 40); do check+=("b-cv$j:10"); done
python3 -m crmfeed check "$T/crm.jsonl" "${check[@]}" || fail "order across a restart"
ok "killed after $before posts, started again: all 405 events accepted, each conversation in order"

# --- 3. two daemons: only the lease holder posts; kill it, the other takes
# over in order
start_daemon "$T/omni2.conf" node2
P2=$DAEMON_PID
wait_for 20 curl -sf "http://127.0.0.1:$HTTP2/readyz"
sleep 1
[ "$(metric "$HTTP1" omnicast_crm_lease)$(metric "$HTTP2" omnicast_crm_lease)" = 10 ] ||
  fail "the lease: node-1 $(metric "$HTTP1" omnicast_crm_lease), node-2 $(metric "$HTTP2" omnicast_crm_lease)"
crm_ctl '{"delay_ms":10,"fail":{"conversation:c-cvR":3}}'
specs=(c-cvR:0:5)
for j in $(seq 1 40); do specs+=("c-cv$j:0:10"); done
gen c 4 "${specs[@]}"
wait_for 60 sh -c "[ \$(grep -c 'c-cv' $T/crm.jsonl) -ge 100 ]"
[ "$(metric "$HTTP2" omnicast_crm_posted_total)" = 0 ] || fail "node-2 posted without the lease"
kill -KILL "$P1"
wait "$P1" 2>/dev/null || true
# node-2 holds at most 16 events (crm_max_held): c-cvR's refused ones among
# them, the other conversations flow through the rest
maxheld=0
for _ in $(seq 1 600); do
  h=$(metric "$HTTP2" omnicast_crm_held || echo 0)
  [ "${h:-0}" -gt "$maxheld" ] && maxheld=$h
  caught_up c 405 && break
  sleep 0.1
done
caught_up c 405 || fail "node-2 did not catch up"
[ "$maxheld" -le 16 ] || fail "node-2 held $maxheld events (crm_max_held = 16)"
[ "$(metric "$HTTP2" omnicast_crm_posted_total)" -gt 0 ] || fail "node-2 never took over"
[ "$(metric "$HTTP2" omnicast_crm_lease)" = 1 ] || fail "node-2 does not hold the lease"
check=(c-cvR:5)
for j in $(seq 1 40); do check+=("c-cv$j:10"); done
python3 -m crmfeed check "$T/crm.jsonl" "${check[@]}" || fail "order across a takeover"
ok "two daemons: node-1 posted alone; killed, node-2 took over (holding at most $maxheld <= crm_max_held events); all 405 events in order per conversation"

# a stopping daemon gives the lease up
stop_daemon "$P2"
[ -z "$(rraw GET omni:crm:lease)" ] || fail "the lease was not given up on SIGTERM"
! grep -q 'crm-s3cret' "$T"/*.log || fail "the secret reached a log"
check_logs_clean
ok "SIGTERM gave the lease up; no secret in the logs"
