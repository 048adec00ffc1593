#!/bin/bash
# The Lua scripts that carry the delivery guarantees, driven directly with
# redis-cli EVAL against a real redis-server: the claim guard, uncertain
# leases, duplicates, suppression, outcomes, counters and done detection.
source "$(dirname "$0")/lib.sh"
start_redis
L="$OMNI_SRC/daemon/lua"
ev() { local f=$1; shift; rraw EVAL "$(cat "$L/$f.lua")" "$@"; }

C=omni:campaign:k M=omni:msg:k
ev create 5 $C $C:rcpt omni:chunks "" omni:scheduled '{"channels":["sms"]}' 1000 2 0 k broadcast \
  '{"to":{"sms":"+15550000001"}}' '{"to":{"sms":"+15550000002"}}' '{"to":{"sms":"+15550000003"}}' >/dev/null
[ "$(rraw HGET $C total)" = 3 ] || fail "total"
[ "$(rraw XLEN omni:chunks)" = 2 ] || fail "two chunks of size 2"
[ "$(rraw LLEN $C:rcpt)" = 3 ] || fail "recipients snapshot"
out=$(ev create 5 $C $C:rcpt omni:chunks "" omni:scheduled '{}' 1000 2 0 k broadcast '{"to":"x"}' | head -1)
[ "$out" = exists ] || fail "second create must not create: $out"
[ "$(rraw XLEN omni:chunks)" = 2 ] || fail "second create emitted chunks"
ok "create: once per id, chunks and snapshot"

rcli SADD omni:suppress:sms +15550000003 >/dev/null
# owner A claims 0 and 1; 2 is suppressed
res=$(ev claim 2 $C $M omni: 1000 500 "a/1" a sms F 3 +15550000001 0 +15550000002 1 +15550000003 2 | tr '\n' ' ')
[ "$res" = "running go:1 go:1 sup " ] || fail "first claim: $res"
# the same owner again (lost reply): go again, not uncertain
res=$(ev claim 2 $C $M omni: 1001 500 "a/1" a sms F 1 +15550000001 0 | tr '\n' ' ')
[ "$res" = "running go:1 " ] || fail "re-claim by the same incarnation: $res"
# another live owner before the lease ends: wait
res=$(ev claim 2 $C $M omni: 1200 500 "b/1" b sms F 1 +15550000001 0 | tr '\n' ' ')
[ "$res" = "running wait " ] || fail "foreign claim in lease: $res"
# a later incarnation of consumer a: the earlier one died → uncertain
res=$(ev claim 2 $C $M omni: 1200 500 "a/2" a sms F 1 +15550000002 1 | tr '\n' ' ')
[ "$res" = "running unc " ] || fail "previous life: $res"
# the same address at another slot is a duplicate, counted once
res=$(ev claim 2 $C $M omni: 1200 500 "b/1" b sms F 1 +15550000001 7 | tr '\n' ' ')
[ "$res" = "running dup " ] || fail "dup: $res"
ev claim 2 $C $M omni: 1200 500 "b/1" b sms F 1 +15550000001 7 >/dev/null
[ "$(rraw HGET $C duplicates)" = 1 ] || fail "dup counted twice"
ok "claim: go, re-claim, wait, uncertain, duplicate, suppressed"

# outcome: 0 sent (late answer for nothing uncertain), 1 was uncertain and
# now sent: uncertain goes back down
res=$(ev outcome 0 omni: 2000 60 sent k sms +15550000001 0 1 wamid.1 "" 0 "" sent k sms +15550000002 1 1 wamid.2 "" 0 "")
[ "$res" = "oo" ] || fail "outcome: $res"
[ "$(rraw HGET $C sent)" = 2 ] || fail "sent counter"
[ "$(rraw HGET $C uncertain)" = 0 ] || fail "late answer must resolve uncertain"
rraw GET omni:pmid:wamid.1 | python3 -c 'import json,sys; assert json.load(sys.stdin) == {"c":"k","ch":"sms","a":"+15550000001"}' || fail "pmid index"
[ "$(rraw HGET omni:contact:sms:+15550000001 last_campaign)" = k ] || fail "contact last campaign"
# replaying the batch changes nothing
res=$(ev outcome 0 omni: 2001 60 sent k sms +15550000001 0 1 wamid.1 "" 0 "")
[ "$res" = "s" ] || fail "replay: $res"
res=$(ev outcome 0 omni: 2001 60 S k sms a/1 1 +15550000001 0 wamid.1)
[ "$res" = "s" ] || fail "replay as a run: $res"
[ "$(rraw HGET $C sent)" = 2 ] || fail "replay counted"
# total 3 = sent 2 + suppressed 2 (one suppressed, one duplicate)? no: the
# duplicate slot 7 is outside the list; done needs sum >= total
[ "$(rraw HGET $C state)" = done ] || fail "campaign should be done: $(rraw HGETALL $C | tr '\n' ' ')"
ok "outcome: counters, index, idempotent replay, done"

# retries: retry → taken with a lease → claimed with attempts+1 → failed
C2=omni:campaign:r M2=omni:msg:r
ev create 5 $C2 $C2:rcpt omni:chunks "" omni:scheduled '{}' 1000 10 0 r broadcast '{"to":"+15550000009"}' >/dev/null
ev claim 2 $C2 $M2 omni: 1000 500 "a/1" a sms F 1 +15550000009 0 >/dev/null
ev outcome 0 omni: 1100 60 retry r sms +15550000009 0 0 "" http_5xx 1500 "r|0|0" >/dev/null
[ "$(rraw ZSCORE omni:retry 'r|0|0')" = 1500 ] || fail "retry scheduled"
[ -z "$(ev take 3 omni:retry omni:scheduled omni:chunks omni: 1400 500 10)" ] || fail "taken before due"
[ "$(ev take 3 omni:retry omni:scheduled omni:chunks omni: 1600 500 10)" = 'r|0|0' ] || fail "due retry not taken"
[ "$(rraw ZSCORE omni:retry 'r|0|0')" = 2100 ] || fail "taken retry must be leased"
res=$(ev claim 2 $C2 $M2 omni: 1600 500 "a/1" a sms FR 1 +15550000009 0 | tr '\n' ' ')
[ "$res" = "running go:2 " ] || fail "retry claim: $res"
ev outcome 0 omni: 1700 60 failed r sms +15550000009 0 1 "" rejected 0 "r|0|0" >/dev/null
[ -z "$(rraw ZSCORE omni:retry 'r|0|0')" ] || fail "retry entry left behind"
[ "$(rraw HGET $C2 failed)" = 1 ] && [ "$(rraw HGET $C2 state)" = done ] || fail "failed/done"
ok "retry: scheduled, leased, re-claimed with attempts, resolved"

# scheduled start, pause and cancel
C3=omni:campaign:s
ev create 5 $C3 $C3:rcpt omni:chunks "" omni:scheduled '{}' 1000 10 5000 s broadcast '{"to":"+15550000001"}' >/dev/null
[ "$(rraw HGET $C3 state)" = scheduled ] || fail "scheduled state"
n=$(rraw XLEN omni:chunks)
ev take 3 omni:retry omni:scheduled omni:chunks omni: 6000 500 10 >/dev/null
[ "$(rraw HGET $C3 state)" = running ] && [ "$(rraw XLEN omni:chunks)" = $((n + 1)) ] || fail "scheduled start"
[ "$(ev control 2 $C3 omni:scheduled pause 7000 s | head -1)" = ok ] || fail "pause"
[ "$(ev claim 2 $C3 omni:msg:s omni: 7000 500 a/1 a sms F 1 +15550000001 0)" = paused ] || fail "claim while paused"
ev control 2 $C3 omni:scheduled resume 7100 s >/dev/null
ev control 2 $C3 omni:scheduled cancel 7200 s >/dev/null
res=$(ev claim 2 $C3 omni:msg:s omni: 7300 500 a/1 a sms F 1 +15550000001 0 | tr '\n' ' ')
[ "$res" = "cancelled cancelled " ] || fail "claim after cancel: $res"
[ "$(rraw HGET $C3 cancelled)" = 1 ] || fail "cancelled counter"
ok "schedule, pause, resume, cancel"

# runs: one call with recipients of several channels and flags; codes come
# back in the order of the recipients, records carry each run's channel
C6=omni:campaign:m M6=omni:msg:m
ev create 5 $C6 $C6:rcpt omni:chunks "" omni:scheduled '{}' 1000 10 0 m broadcast '{"to":"x"}' >/dev/null
rcli HSET $C6 total 5 >/dev/null
rcli SADD omni:suppress:email a@example.com >/dev/null
res=$(ev claim 2 $C6 $M6 omni: 1000 500 a/1 a sms "" 2 +15550000001 0 +15550000002 1 \
  email F 2 a@example.com 0 b@example.com 1 sms F 1 +15550000004 2)
[ "$res" = "running go:1 go:1 sup go:1 go:1" ] || fail "claim runs: $res"
for f in sms:+15550000001 email:b@example.com sms:+15550000004; do
  rraw HGET $M6 "$f" | python3 -c 'import json,sys; r=json.load(sys.stdin); f=sys.argv[1]; assert r["state"]=="claimed" and r["channel"]==f.split(":")[0], r' "$f" ||
    fail "claim run record $f"
done
[ "$(rraw HGET $M6 email:a@example.com | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')" = suppressed ] ||
  fail "suppressed in the second run"
# outcomes: a run, a whole failure in between, a run of another channel
res=$(ev outcome 0 omni: 2000 60 S m sms a/1 1 +15550000001 0 p1 \
  failed m sms +15550000002 1 0 "" rejected 0 "" S m email a/1 1 b@example.com 1 p2 S m sms a/1 1 +15550000004 2 p3)
[ "$res" = oooo ] || fail "outcome runs and a whole record: $res"
[ "$(rraw HGET $C6 sent)" = 3 ] || fail "runs: sent counter"
rraw HGET $M6 sms:+15550000002 | python3 -c 'import json,sys; r=json.load(sys.stdin); assert r["state"]=="failed" and r["next"] is True and r["error"]=="rejected", r' ||
  fail "failed record between runs"
[ "$(rraw GET omni:pmid:p2)" = '{"c":"m","ch":"email","a":"b@example.com"}' ] || fail "pmid of the email run"
ok "runs: several channels and flags in one claim, runs and whole records in one outcome"

# one batch: the same address at two slots is one send and one duplicate;
# suppression and records hold for batches longer than one command slice
C4=omni:campaign:b M4=omni:msg:b
ev create 5 $C4 $C4:rcpt omni:chunks "" omni:scheduled '{}' 1000 3000 0 b broadcast \
  '{"to":"+15550000001"}' >/dev/null
rcli HSET $C4 total 2501 >/dev/null
args=()
for i in $(seq 0 2499); do printf -v a "+1555%07d" "$i"; args+=("$a" "$i"); done
args+=(+15550000007 2500)
rcli SADD omni:suppress:wa +15550002345 >/dev/null
res=$(ev claim 2 $C4 $M4 omni: 1000 500 a/1 a wa F 2501 "${args[@]}" | tr ' ' '\n')
[ "$(grep -c '^go:1$' <<<"$res")" = 2499 ] || fail "big batch: go count"
[ "$(grep -c '^sup$' <<<"$res")" = 1 ] && [ "$(sed -n 2347p <<<"$res")" = sup ] || fail "big batch: suppressed"
[ "$(tail -1 <<<"$res")" = dup ] || fail "same address twice in one batch: $(tail -1 <<<"$res")"
[ "$(rraw HLEN $M4)" = 2501 ] || fail "records + dup marker: $(rraw HLEN $M4)"
rraw HGET $M4 wa:+15550002499 | python3 -c 'import json,sys; r=json.load(sys.stdin); assert r["state"]=="claimed" and r["owner"]=="a/1" and r["slot"]=="2499" and r["lease"]==1500 and r["attempts"]==1, r' ||
  fail "claim record"
[ "$(rraw HGET $C4 duplicates)" = 1 ] && [ "$(rraw HGET $C4 suppressed)" = 2 ] || fail "batch counters"
oargs=()
for i in $(seq 0 1199); do printf -v a "+1555%07d" "$i"; oargs+=("$a" "$i" "wamid.b$i"); done
res=$(ev outcome 0 omni: 2000 60 S b wa a/1 1200 "${oargs[@]}")
[ "$res" = "$(printf 'o%.0s' $(seq 1 1200))" ] || fail "big outcome batch"
[ "$(rraw HGET $C4 sent)" = 1200 ] || fail "big outcome: sent"
rraw HGET $M4 wa:+15550001199 | python3 -c 'import json,sys; r=json.load(sys.stdin); assert r["state"]=="sent" and r["provider_id"]=="wamid.b1199" and r["by"]=="a/1", r' ||
  fail "outcome record"
res=$(ev outcome 0 omni: 2001 60 sent b wa +15550001300 1300 1 x "" 0 "" sent b wa +15550001300 1300 1 x "" 0 "")
[ "$res" = "os" ] || fail "one record twice in one outcome batch: $res"
res=$(ev outcome 0 omni: 2001 60 S b wa a/1 2 +15550001301 1301 y +15550001301 1301 y)
[ "$res" = "os" ] || fail "one record twice in one run: $res"
[ "$(rraw HGET $C4 sent)" = 1202 ] || fail "in-batch twice: sent counter"
ok "batches: in-batch duplicates, suppression, slices over 1000"

# the outcome script turns a fresh claim into the sent record without
# decoding it (runs of 'S'), when owner and slot match the claim; an owner
# that needs escaping stays on that path; another owner takes the decoding
# path: all end the same
C5=omni:campaign:e M5=omni:msg:e
ev create 5 $C5 $C5:rcpt omni:chunks "" omni:scheduled '{}' 1000 10 0 e broadcast \
  '{"to":"+15550000001"}' '{"to":"+15550000002"}' '{"to":"+15550000003"}' >/dev/null
ev claim 2 $C5 $M5 omni: 1000 500 'plain/1' plain wa F 1 +15550000001 0 >/dev/null
ev claim 2 $C5 $M5 omni: 1000 500 'we"ird\/1' 'we"ird' wa F 1 +15550000002 1 >/dev/null
ev claim 2 $C5 $M5 omni: 1000 500 'plain/1' plain wa F 1 +15550000003 2 >/dev/null
res=$(ev outcome 0 omni: 2000 60 S e wa plain/1 1 +15550000001 0 'wamid."q"' \
  S e wa 'we"ird\/1' 1 +15550000002 1 wamid.e2 S e wa other/9 1 +15550000003 2 wamid.e3)
[ "$res" = ooo ] || fail "outcome runs: $res"
for a in +15550000001 +15550000002 +15550000003; do
  rraw HGET $M5 "wa:$a" | python3 -c '
import json, sys
r = json.load(sys.stdin)
assert set(r) == {"state", "channel", "slot", "attempts", "at", "by", "provider_id"}, r
assert r["state"] == "sent" and r["channel"] == "wa" and r["attempts"] == 1 and r["at"] == 2000, r
assert r["by"] in ("plain/1", "we\"ird\\/1"), r
assert r["provider_id"] in ("wamid.\"q\"", "wamid.e2", "wamid.e3"), r' || fail "sent record of $a: $(rraw HGET $M5 "wa:$a")"
done
rraw GET 'omni:pmid:wamid."q"' | python3 -c 'import json,sys; assert json.load(sys.stdin) == {"c":"e","ch":"wa","a":"+15550000001"}' || fail "pmid with quotes"
rraw GET omni:pmid:wamid.e3 | python3 -c 'import json,sys; assert json.load(sys.stdin) == {"c":"e","ch":"wa","a":"+15550000003"}' || fail "pmid, decoding path"
[ "$(rraw HGET omni:contact:wa:+15550000002 last_sent)" = 2000 ] || fail "contact last_sent"
[ "$(rraw HGET omni:contact:wa:+15550000003 last_campaign)" = e ] || fail "contact, decoding path"
[ "$(rraw HGET $C5 sent)" = 3 ] && [ "$(rraw HGET $C5 state)" = done ] || fail "counters"
ok "outcome: the undecoded fast path and the decoding path record the same"
