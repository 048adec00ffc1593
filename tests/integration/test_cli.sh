#!/bin/bash
# The omnicast CLI against a real Redis and daemon: enqueue (local
# validation, exit codes), status, watch, campaigns, campaign control,
# suppress, conversations, dead list/show/replay, --json output.
source "$(dirname "$0")/lib.sh"

start_redis
HTTP_PORT=$(free_port)
echo "t0ken-cli" >"$T/tokens"
daemon_conf "$T/omni.conf" "
http_listen = 127.0.0.1:$HTTP_PORT
api_tokens_file = $T/tokens

[connector.out]
type = outbox
path = $T/out.jsonl
rate_per_s = 200

[channels]
sms = out"
start_daemon "$T/omni.conf"
oc() { "$OMNI_BUILD/omnicast" --config "$T/omni.conf" "$@"; }

echo '{"type":"broadcast","id":"x","channel":"fax","message":{"text":"t"},"recipients":[{"to":"+15550000001"}]}' >"$T/bad.json"
rc=0; oc enqueue "$T/bad.json" 2>"$T/err" || rc=$?
[ $rc -eq 3 ] && grep -q 'invalid job: unknown channel: fax' "$T/err" || fail "invalid job: exit $rc $(cat "$T/err")"
[ "$(rraw XLEN omni:jobs)" = 0 ] || fail "an invalid job was queued"
rc=0; "$OMNI_BUILD/omnicast" --redis redis://127.0.0.1:1/0 status x 2>/dev/null || rc=$?
[ $rc -eq 4 ] || fail "no Redis should exit 4, got $rc"
rc=0; oc frobnicate 2>/dev/null || rc=$?
[ $rc -eq 2 ] || fail "usage error should exit 2"
ok "exit codes: 3 invalid job (nothing queued), 4 no Redis, 2 usage"

oc suppress add sms "+1 555 000 0003" >/dev/null
[ "$(oc suppress list sms)" = "+15550000003" ] || fail "suppress add normalizes"
python3 -c 'import json; print(json.dumps({"type":"broadcast","id":"cli1","channel":"sms","message":{"text":"x"},"recipients":[{"to":"+1555000%04d" % i} for i in range(1,301)]}))' | oc enqueue - >/dev/null
oc watch cli1 >"$T/watch" || fail "watch failed"
tail -1 "$T/watch" | q '^done 300/300 sent 299 failed 0' || fail "watch output: $(tail -2 "$T/watch")"
oc --json status cli1 | python3 -c 'import json,sys; s=json.load(sys.stdin); assert s["sent"]==299 and s["suppressed"]==1 and s["pending"]==0, s'
oc campaigns | q '^cli1 .*done .*total 300' || fail "campaigns list"
ok "suppress add/list, enqueue from stdin, watch to the end, status --json, campaigns"

# the API and the CLI print one object for a campaign (counters.c); an id
# that looks like a number or a date stays a string
python3 -c 'import json; print(json.dumps({"type":"broadcast","id":"2026-11-27","channel":"sms","message":{"text":"x"},"recipients":[{"to":"+1555100%04d" % i} for i in range(1,6)]}))' | oc enqueue - >/dev/null
wait_for 20 campaign_done 2026-11-27
wait_for 20 curl -sf "http://127.0.0.1:$HTTP_PORT/readyz"
curl -sf -H "Authorization: Bearer t0ken-cli" "http://127.0.0.1:$HTTP_PORT/v1/campaigns/2026-11-27" >"$T/api.json" ||
  fail "GET /v1/campaigns/2026-11-27"
oc --json status 2026-11-27 >"$T/cli.json" || fail "status --json 2026-11-27"
oc status 2026-11-27 --json >"$T/cli2.json" || fail "status 2026-11-27 --json"
python3 - "$T/api.json" "$T/cli.json" "$T/cli2.json" <<'PY' || fail "API and CLI differ: $(cat "$T/api.json") / $(cat "$T/cli.json")"
import json, sys
a, c, c2 = (json.load(open(f)) for f in sys.argv[1:])
assert a == c == c2, (a, c, c2)
assert a["id"] == "2026-11-27", a["id"]
assert a["total"] == 5 and a["sent"] == 5 and a["pending"] == 0, a
for k in ("total", "sent", "failed", "suppressed", "uncertain", "cancelled", "duplicates",
          "delivered", "read", "replied", "opted_out", "failed_after_send", "chunks",
          "chunk_size", "created_at", "started_at", "finished_at", "pending"):
    assert type(a[k]) is int, (k, a[k])
assert isinstance(a["spec"], dict) and isinstance(a["rates"], dict), a
PY
oc status 2026-11-27 | q '^campaign 2026-11-27: done' || fail "status table"
ok "GET /v1/campaigns/2026-11-27 and status --json (either order) print the same object, the id a string"

oc suppress remove sms +15550000003 >/dev/null
[ -z "$(oc suppress list sms)" ] || fail "suppress remove"
rc=0; oc campaign pause cli1 2>"$T/err" || rc=$?
[ $rc -eq 1 ] && grep -q 'campaign_finished' "$T/err" || fail "pause of a done campaign"
ok "suppress remove; campaign pause refused for a done campaign (exit 1)"

enqueue 'not json at all'
wait_for 10 sh -c "[ \$(redis-cli -p $REDIS_PORT XLEN omni:dead) -ge 1 ]"
entry=$(oc --json dead list 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
oc dead show "$entry" | q '"job":"not json at all"' || fail "dead show"
oc dead replay "$entry" | q "replayed $entry" || fail "dead replay"
wait_for 10 sh -c "[ \$(redis-cli -p $REDIS_PORT XLEN omni:dead) -ge 2 ]"
ok "dead list/show/replay (the replayed job is dead-lettered again, as it should be)"

# job content in a dead letter never reaches the terminal raw: an invalid
# job naming a channel "sms\u001b[31m" (the reason quotes it), and one
# entry seeded with raw ESC, newline, C1 CSI bytes in source and reason
enqueue '{"type":"broadcast","id":"esc1","channel":"sms\u001b[31m","message":{"text":"x"},"recipients":[{"to":"+15550000001"}]}'
wait_for 10 sh -c "[ \$(redis-cli -p $REDIS_PORT XLEN omni:dead) -ge 3 ]"
rraw XADD omni:dead '*' source "$(printf 'job\033[2J')" reason "$(printf 'bad \033[31mred\nline\302\233x\tend\\')" \
  job "$(printf '{"x":"\033]0;title\007"}')" >/dev/null
oc dead list 10 >"$T/dead.txt" || fail "dead list"
oc dead show "$(rraw XREVRANGE omni:dead + - COUNT 1 | head -1)" >"$T/dead_show.txt" || fail "dead show"
oc --json dead list 10 >"$T/dead.json" || fail "dead list --json"
for f in dead.txt dead_show.txt dead.json; do
  python3 - "$T/$f" <<'PY' || fail "raw control characters in $f: $(cat -v "$T/$f")"
import sys
b = open(sys.argv[1], "rb").read()
bad = [c for c in b.replace(b"\n", b"") if c < 0x20 or c == 0x7f]
assert not bad and b"\xc2\x9b" not in b, bad
PY
done
q 'job\\x1b\[2J bad \\x1b\[31mred\\nline\\u009bx\\tend\\\\$' "$T/dead.txt" || fail "dead list escapes: $(cat "$T/dead.txt")"
q 'sms\\x1b\[31m' "$T/dead.txt" || fail "the reason quoting the channel: $(cat "$T/dead.txt")"
[ "$(wc -l <"$T/dead.txt")" = "$(wc -l <"$T/dead.json")" ] || fail "one line a dead letter"
ok "dead list/show: ESC, newlines, C1 controls from a job are escaped, one line a dead letter"

oc conversations >/dev/null || fail "conversations"

# campaign uncertain: records seeded straight into Redis (3 special ones,
# a sent one, a dup: field, and 1500 uncertain + 1500 sent so the scan
# takes several HSCAN steps)
python3 - <<'PY' | redis-cli -p "$REDIS_PORT" --pipe >/dev/null
import json, sys
from resp import cmd
cmd("HSET", "omni:campaign:unc1", "id", "unc1", "state", "done", "total", "3004", "uncertain", "1503")
kv = [
    "whatsapp:+15550000001", json.dumps({"state": "uncertain", "channel": "whatsapp", "slot": "0", "attempts": 1, "at": 1732000000500, "reason": "ambiguous_timeout", "wire_at": 1732000000123, "owner": "i1"}),
    "whatsapp:+15550000002", json.dumps({"state": "uncertain", "channel": "whatsapp", "slot": "1", "attempts": 2, "at": 1732000031000, "reason": "owner_lost", "claimed_at": 1732000000200, "owner": "i2"}),
    "sms:+15550000003", json.dumps({"state": "uncertain", "channel": "sms", "slot": "2", "attempts": 1, "at": 1732000040000, "owner": "old"}),
    "whatsapp:+15550000004", json.dumps({"state": "sent", "channel": "whatsapp", "slot": "3", "attempts": 1, "at": 1732000000100, "provider_id": "wamid.4"}),
    "dup:5", "whatsapp:+15550000001",
]
for i in range(10, 3010):
    st = "uncertain" if i % 2 else "sent"
    kv += ["sms:+1555100%04d" % i, json.dumps({"state": st, "channel": "sms", "slot": str(i), "attempts": 1, "at": 1732000050000, "reason": "ambiguous_reset", "wire_at": 1732000049000 + i})]
cmd("HSET", "omni:msg:unc1", *kv)
PY
oc campaign uncertain unc1 >"$T/unc.txt" || fail "campaign uncertain"
head -1 "$T/unc.txt" | q -E '^INDEX +CHANNEL +ATTEMPTS +REASON +REQUEST TIME \(UTC\) +ADDRESS$' || fail "table header: $(head -1 "$T/unc.txt")"
q -E '^0 +whatsapp +1 +ambiguous_timeout +2024-11-19T07:06:40.123Z \(wire\) +\+15550000001$' "$T/unc.txt" || fail "wire row: $(grep 15550000001 "$T/unc.txt")"
q -E '^1 +whatsapp +2 +owner_lost +2024-11-19T07:06:40.200Z \(claimed\) +\+15550000002$' "$T/unc.txt" || fail "claimed row"
q -E '^2 +sms +1 +owner_lost +2024-11-19T07:07:20.000Z \(declared\) +\+15550000003$' "$T/unc.txt" || fail "old record row"
! q -E '15550000004|^dup' "$T/unc.txt" || fail "a sent record or a dup: field listed"
[ "$(grep -c ' ambiguous_reset ' "$T/unc.txt")" = 1500 ] || fail "bulk rows: $(grep -c ' ambiguous_reset ' "$T/unc.txt")"
tail -1 "$T/unc.txt" | q -E '^campaign unc1: 1503 uncertain recipients \(counter: 1503\)$' || fail "summary: $(tail -1 "$T/unc.txt")"
oc campaign uncertain unc1 --json >"$T/unc.jsonl" || fail "campaign uncertain ID --json"
oc --json campaign uncertain unc1 | cmp -s - "$T/unc.jsonl" || fail "--json before and after the command differ"
python3 - "$T/unc.jsonl" <<'PY'
import json, sys
items = [json.loads(l) for l in open(sys.argv[1])]
by = {i["to"]: i for i in items}
assert len(items) == 1503 and len(by) == 1503, len(items)
assert by["+15550000001"] == {"to": "+15550000001", "channel": "whatsapp", "index": 0, "attempts": 1, "reason": "ambiguous_timeout", "wire_at": 1732000000123, "claimed_at": None, "at": 1732000000500}, by["+15550000001"]
assert by["+15550000002"]["reason"] == "owner_lost" and by["+15550000002"]["claimed_at"] == 1732000000200 and by["+15550000002"]["wire_at"] is None
assert by["+15550000003"] == {"to": "+15550000003", "channel": "sms", "index": 2, "attempts": 1, "reason": "owner_lost", "wire_at": None, "claimed_at": None, "at": 1732000040000}, by["+15550000003"]
assert "+15550000004" not in by and all(int(t[-4:]) % 2 for t in by if t.startswith("+1555100"))
PY
oc status unc1 --json | python3 -c 'import json,sys; assert json.load(sys.stdin)["uncertain"] == 1503'
rc=0; oc campaign uncertain nope 2>"$T/err" || rc=$?
[ $rc -eq 1 ] && grep -q 'no campaign nope' "$T/err" || fail "unknown campaign: exit $rc $(cat "$T/err")"
rc=0; oc campaign uncertain 2>/dev/null || rc=$?
[ $rc -eq 2 ] || fail "campaign uncertain without an id should exit 2, got $rc"
ok "campaign uncertain: table (wire/claimed/declared times, old records owner_lost), --json lines before or after, 1503 of 3005 records, unknown campaign exit 1"

# every timestamp of a campaign is a number in the CLI's JSON as in the API's:
# a scheduled campaign paused, then cancelled, has paused_at and cancelled_at
echo '{"type":"broadcast","id":"ts1","channel":"sms","send_at":"2099-01-01T00:00:00Z","message":{"text":"x"},"recipients":[{"to":"+15552000001"}]}' | oc enqueue - >/dev/null
wait_for 20 campaign_done ts1 scheduled
oc campaign pause ts1 >/dev/null || fail "pause ts1"
wait_for 20 campaign_done ts1 paused
oc campaign cancel ts1 >/dev/null || fail "cancel ts1"
wait_for 20 campaign_done ts1 cancelled
curl -sf -H "Authorization: Bearer t0ken-cli" "http://127.0.0.1:$HTTP_PORT/v1/campaigns/ts1" >"$T/ts_api.json" || fail "GET /v1/campaigns/ts1"
oc status ts1 --json >"$T/ts_cli.json" || fail "status ts1 --json"
python3 - "$T/ts_api.json" "$T/ts_cli.json" <<'PY' || fail "ts1: API and CLI differ: $(cat "$T/ts_api.json") / $(cat "$T/ts_cli.json")"
import json, sys
a, c = (json.load(open(f)) for f in sys.argv[1:])
assert a == c, (a, c)
for k in ("created_at", "paused_at", "cancelled_at"):
    assert type(c[k]) is int and c[k] > 1700000000000, (k, c.get(k))
assert c["created_at"] <= c["paused_at"] <= c["cancelled_at"], c
PY
ok "a paused then cancelled campaign: created_at, paused_at, cancelled_at numbers, the CLI's JSON equal to the API's"

# --json after the command's arguments (as the README writes it) is --json
# before the command, for every command that prints JSON: same exit, same output
dentry=$(rraw XREVRANGE omni:dead + - COUNT 1 | head -1)
n=0
for a in "status cli1" "status 2026-11-27" "campaigns" "conversations" "conversations --open --campaign cli1" \
         "dead list 10" "dead show $dentry" "watch cli1" "enqueue $T/bad.json" "campaign pause cli1" \
         "campaign uncertain unc1" "status nope"; do
  r1=0; oc --json $a >"$T/j1" 2>"$T/e1" || r1=$?
  r2=0; oc $a --json >"$T/j2" 2>"$T/e2" || r2=$?
  [ $r1 = $r2 ] && cmp -s "$T/j1" "$T/j2" && cmp -s "$T/e1" "$T/e2" || fail "omnicast $a: --json before ($r1) and after ($r2) differ: $(head -c 300 "$T/j1") / $(head -c 300 "$T/j2")"
  python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1]) if l.strip()]' "$T/j2" || fail "omnicast $a --json: not JSON: $(head -c 300 "$T/j2")"
  [ -s "$T/j2" ] && n=$((n + 1))
done
[ $n -ge 9 ] || fail "only $n of the commands printed JSON"
oc status cli1 --json | python3 -c 'import json,sys; s=json.load(sys.stdin); assert s["id"] == "cli1" and s["sent"] == 299, s' || fail "status cli1 --json"
ok "--json after the arguments equals --json before: status, campaigns, conversations, dead list/show, watch, enqueue, campaign pause/uncertain ($n printed JSON)"
stop_daemon
check_logs_clean
