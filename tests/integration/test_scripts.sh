#!/bin/bash
# The Lua scripts that carry the delivery guarantees, driven directly with
# redis-cli EVAL against a real redis-server: the claim guard, uncertain
# leases, duplicates, suppression, outcomes, counters and done detection.
source "$(dirname "$0")/lib.sh"
start_redis
L="$OMNI_SRC/daemon/lua"
# each script behind the shared prelude, as the daemon loads it
ev() { local f=$1; shift; rraw EVAL "$(cat "$L/lib/prelude.lua" "$L/$f.lua")" "$@"; }

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
# the same owner again (a lost reply, or a second copy in that process:
# only its memory can tell): own, not uncertain
res=$(ev claim 2 $C $M omni: 1001 500 "a/1" a sms F 1 +15550000001 0 | tr '\n' ' ')
[ "$res" = "running own:1 " ] || fail "re-claim by the same incarnation: $res"
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

# a conversation message (a message job) cancelled: its log entry does not
# stay queued; it ends failed (cancelled), whether the job was never started
# (control) or is claimed after the cancel (claim), with message.failed
lastlog() { rraw XREVRANGE "omni:conv:$1:log" + - COUNT 1 | tr '\n' ' '; }
Cm=omni:campaign:cm1
ev create 5 $Cm $Cm:rcpt omni:chunks "" omni:scheduled '{}' 1000 10 5000 cm1 message '{"to":"+15550000081"}' >/dev/null
rcli SET omni:conv:of:cm1 cvm1 >/dev/null
rcli HSET omni:conv:cvm1 channel sms contact +15550000081 >/dev/null
ev control 2 $Cm omni:scheduled cancel 5100 cm1 >/dev/null
l=$(lastlog cvm1)
case "$l" in *"dir status ref cm1 status failed channel sms at 5100 reason cancelled"*) ;; *) fail "cancelled before its start: $l" ;; esac
Cm=omni:campaign:cm2
ev create 5 $Cm $Cm:rcpt omni:chunks "" omni:scheduled '{}' 1000 10 0 cm2 message '{"to":"+15550000082"}' >/dev/null
rcli SET omni:conv:of:cm2 cvm2 >/dev/null
ev control 2 $Cm omni:scheduled cancel 5200 cm2 >/dev/null
res=$(ev claim 2 $Cm omni:msg:cm2 omni: 5300 500 a/1 a sms F 1 +15550000082 0 | tr '\n' ' ')
[ "$res" = "cancelled cancelled " ] || fail "claim of a cancelled message job: $res"
l=$(lastlog cvm2)
case "$l" in *"dir status ref cm2 status failed channel sms at 5300 reason cancelled"*) ;; *) fail "claimed after the cancel: $l" ;; esac
rraw XRANGE omni:conversations - + | grep '"message_id":"cm' | python3 -c '
import json, sys
ev = [json.loads(l) for l in sys.stdin]
assert [(e["type"], e["message_id"], e["reason"]) for e in ev] == [("message.failed", "cm1", "cancelled"), ("message.failed", "cm2", "cancelled")], ev' ||
  fail "message.failed events of cancelled message jobs"
ok "a cancelled conversation message ends failed (cancelled) in its log, never started or claimed after the cancel"

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

# 'W' (a message job on a channel with a customer service window): go, own
# and rs carry the contact's last_inbound; other runs and codes do not
C7=omni:campaign:win M7=omni:msg:win
ev create 5 $C7 $C7:rcpt omni:chunks "" omni:scheduled '{}' 1000 10 0 win message '{"to":"x"}' >/dev/null
rcli HSET $C7 total 3 >/dev/null
rcli HSET omni:contact:wac:+15550000071 last_inbound 1764400000123 >/dev/null
rcli HSET omni:contact:wac:+15550000073 last_inbound garbage >/dev/null
rcli SADD omni:suppress:wac +15550000074 >/dev/null
res=$(ev claim 2 $C7 $M7 omni: 1000 500 a/1 a wac FW 4 +15550000071 0 +15550000072 1 +15550000073 2 \
  +15550000074 3 sms F 1 +15550000071 0)
[ "$res" = "running go:1:1764400000123 go:1:0 go:1:0 sup go:1" ] || fail "claim W: $res"
res=$(ev claim 2 $C7 $M7 omni: 1001 500 a/1 a wac FW 1 +15550000071 0)
[ "$res" = "running own:1:1764400000123" ] || fail "claim W own: $res"
res=$(ev claim 2 $C7 $M7 omni: 1001 500 a/1 a wac F 1 +15550000071 0)
[ "$res" = "running own:1" ] || fail "claim without W: $res"
ok "claim W: the contact's last_inbound (0 when none or unreadable) on go and own, nothing elsewhere"

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

# 'K' names the connector instance that sent the records after it: kept in
# the provider-id index as "k" (fast path, decoding path, a whole record), an
# empty name leaves it out; inbound.lua matches a status, an unsubscribe or a
# quoted reply only on that connector, an entry without "k" on any
C6=omni:campaign:kk M6=omni:msg:kk
ev create 5 $C6 $C6:rcpt omni:chunks "" omni:scheduled '{}' 1000 10 0 kk broadcast \
  '{"to":"+15550000001"}' '{"to":"+15550000002"}' '{"to":"+15550000003"}' '{"to":"+15550000004"}' >/dev/null
ev claim 2 $C6 $M6 omni: 1000 500 'p/1' p wa F 4 +15550000001 0 +15550000002 1 +15550000003 2 +15550000004 3 >/dev/null
res=$(ev outcome 0 omni: 2000 60 K wa S kk wa p/1 1 +15550000001 0 k.1 K 'w"2' S kk wa other/9 1 +15550000002 1 k.2 \
  sent kk wa +15550000003 2 1 k.3 "" 0 "" K "" S kk wa p/1 1 +15550000004 3 k.4)
[ "$res" = oooo ] || fail "outcome with K: $res"
pm() { rraw GET "omni:pmid:$1"; }
[ "$(pm k.1)" = '{"c":"kk","ch":"wa","k":"wa","a":"+15550000001"}' ] || fail "k, fast path: $(pm k.1)"
pm k.2 | python3 -c 'import json,sys; v = json.load(sys.stdin); assert v == {"c":"kk","ch":"wa","k":"w\"2","a":"+15550000002"}, v' || fail "k, decoding path: $(pm k.2)"
pm k.3 | python3 -c 'import json,sys; v = json.load(sys.stdin); assert v == {"c":"kk","ch":"wa","k":"w\"2","a":"+15550000003"}, v' || fail "k, whole record: $(pm k.3)"
[ "$(pm k.4)" = '{"c":"kk","ch":"wa","a":"+15550000004"}' ] || fail "empty K: $(pm k.4)"
[ "$(rraw HGET $C6 sent)" = 4 ] || fail "K counted as an outcome"
[ "$(ev inbound 0 omni: 3000 status hook k.1 delivered "" | head -1)" = unknown ] || fail "status on another connector matched"
[ "$(ev inbound 0 omni: 3000 unsub mail token:k.1 | head -1)" = unknown ] || fail "unsubscribe on another connector matched"
[ "$(rraw SISMEMBER omni:suppress:wa +15550000001)" = 0 ] || fail "unsubscribe on another connector suppressed"
ev inbound 0 omni: 3000 reply hook wa +15550000001 "" hi in.1 k.1 reply 0 "" text >"$T/reply"
[ "$(sed -n 1p "$T/reply")" = ok ] && [ -z "$(sed -n 4p "$T/reply")" ] || fail "reply quoting another connector's message: $(cat "$T/reply")"
[ -z "$(rraw HGET "omni:conv:$(sed -n 2p "$T/reply")" campaign)" ] || fail "reply attributed through another connector's message"
[ "$(rraw HGET $C6 replied)" = 0 ] || fail "replied counted"
[ "$(ev inbound 0 omni: 3000 status wa k.1 delivered "" | tr '\n' ' ')" = "ok kk " ] || fail "status on the sending connector"
[ "$(ev inbound 0 omni: 3000 status hook k.4 delivered "" | tr '\n' ' ')" = "ok kk " ] || fail "status for an entry without k"
[ "$(rraw HGET $C6 delivered)" = 2 ] || fail "delivered: $(rraw HGET $C6 delivered)"
ok "outcome K: the sending connector in the pmid index; inbound matches only on it (entries without k on any)"

# the active-campaign index: a campaign that starts running enters it (at
# creation, at its scheduled start, on resume); one cancelled before it
# started leaves it
ev create 5 omni:campaign:ar omni:campaign:ar:rcpt omni:chunks "" omni:scheduled '{}' 1000 10 0 ar broadcast \
  '{"to":"+15550000001"}' >/dev/null
[ "$(rraw ZSCORE omni:active ar)" = 1000 ] || fail "create: running campaign not in omni:active"
ev create 5 omni:campaign:as omni:campaign:as:rcpt omni:chunks "" omni:scheduled '{}' 1000 10 5000 as broadcast \
  '{"to":"+15550000001"}' >/dev/null
[ -z "$(rraw ZSCORE omni:active as)" ] || fail "a scheduled campaign is not active yet"
ev take 3 omni:retry omni:scheduled omni:chunks omni: 6000 500 10 >/dev/null
[ "$(rraw ZSCORE omni:active as)" = 6000 ] || fail "take: a started campaign must enter omni:active"
ev control 2 omni:campaign:as omni:scheduled pause 6100 as >/dev/null
ev control 2 omni:campaign:as omni:scheduled resume 6200 as >/dev/null
[ "$(rraw ZSCORE omni:active as)" = 6200 ] || fail "resume: omni:active"
ev create 5 omni:campaign:ac omni:campaign:ac:rcpt omni:chunks "" omni:scheduled '{}' 1000 10 5000 ac broadcast \
  '{"to":"+15550000001"}' >/dev/null
rcli ZADD omni:active 1 ac >/dev/null
ev control 2 omni:campaign:ac omni:scheduled cancel 1100 ac >/dev/null
[ -z "$(rraw ZSCORE omni:active ac)" ] || fail "cancel before start: still in omni:active"
ok "omni:active: create, scheduled start, resume, cancel"

# The consistency sweep (sweep.lua). A running campaign of 10 after lost
# writes: 0-2 sent, 3 claimed by an owner long gone, 4 waiting to retry
# with its retry entry lost, 5 failed on sms with the fallback never
# claimed, 6-9 never claimed, and no chunk left anywhere.
rcli XGROUP CREATE omni:chunks omnicast '$' MKSTREAM >/dev/null 2>&1 || true
deliver_all() { # read every undelivered chunk as consumer t, ack them
  local ids
  ids=$(rraw XREADGROUP GROUP omnicast t COUNT 10000 STREAMS omni:chunks '>' | grep -E '^[0-9]+-[0-9]+$' || true)
  [ -z "$ids" ] || rcli XACK omni:chunks omnicast $ids >/dev/null
}
CW=omni:campaign:w MW=omni:msg:w
rcpts=()
for i in $(seq 0 9); do rcpts+=("{\"to\":{\"sms\":\"+1555000000$i\",\"wa\":\"+1555000000$i\"}}"); done
ev create 5 $CW $CW:rcpt omni:chunks "" omni:scheduled '{"channels":["sms","wa"]}' 1000 4 0 w broadcast "${rcpts[@]}" >/dev/null
deliver_all
for i in 0 1 2; do
  rcli HSET $MW sms:+1555000000$i "{\"state\":\"sent\",\"channel\":\"sms\",\"slot\":\"$i\",\"attempts\":1,\"at\":1100,\"by\":\"a/1\",\"provider_id\":\"p$i\"}" >/dev/null
done
rcli HSET $MW sms:+15550000003 '{"state":"claimed","channel":"sms","slot":"3","owner":"a/1","attempts":1,"lease":1500,"at":1000}' \
  sms:+15550000004 '{"attempts":1,"error":"http_5xx","state":"retry","due":1200,"channel":"sms","slot":"4","at":1100}' \
  sms:+15550000005 '{"channel":"sms","slot":"5","state":"failed","error":"rejected","next":true,"attempts":1,"at":1100}' >/dev/null
rcli HSET $CW sent 3 >/dev/null
rcli ZADD omni:active 1000 w >/dev/null
sw() { ev sweep 6 omni:campaign:$1 omni:msg:$1 omni:retry omni:scheduled omni:chunks omni:active omni: "$2" "$1" omnicast 1000; }
n0=$(rraw XLEN omni:chunks)
res=$(sw w 10000)
[ "$res" = "swept requeued=4 uncertain=1 retries=2" ] || fail "sweep: $res"
rraw HGET $MW sms:+15550000003 | python3 -c '
import json, sys
r = json.load(sys.stdin)
assert r["state"] == "uncertain" and r["reason"] == "owner_lost" and r["claimed_at"] == 1000 and r["at"] == 10000, r' ||
  fail "expired claim: $(rraw HGET $MW sms:+15550000003)"
[ "$(rraw HGET $CW uncertain)" = 1 ] || fail "sweep: uncertain counter"
[ "$(rraw ZSCORE omni:retry 'w|4|0')" = 10000 ] || fail "sweep: lost retry entry not restored"
[ "$(rraw ZSCORE omni:retry 'w|5|1')" = 10000 ] || fail "sweep: fallback channel not queued"
[ -z "$(rraw ZSCORE omni:retry 'w|5|0')" ] || fail "sweep: the failed channel queued again"
[ "$(rraw XLEN omni:chunks)" = $((n0 + 1)) ] || fail "sweep: one chunk expected"
[ "$(rraw XREVRANGE omni:chunks + - COUNT 1 | tail -6 | tr '\n' ' ')" = "c w s 6 e 10 " ] ||
  fail "sweep: chunk $(rraw XREVRANGE omni:chunks + - COUNT 1 | tr '\n' ' ')"
[ "$(rraw HGET $CW state)" = running ] || fail "sweep: not done yet"
[ "$(rraw ZSCORE omni:active w)" = 10000 ] || fail "sweep: a swept campaign is looked at again after an idle period"
# again at once: the chunk it emitted is waiting, nothing changes
res=$(sw w 10001)
[ "$res" = "skip:pending" ] || fail "second sweep: $res"
[ "$(rraw XLEN omni:chunks)" = $((n0 + 1)) ] && [ "$(rraw HGET $CW uncertain)" = 1 ] &&
  [ "$(rraw ZSCORE omni:retry 'w|4|0')" = 10000 ] || fail "second sweep changed something"
# the chunk taken and 6-9 sent; retries still waiting: nothing to repair
deliver_all
for i in 6 7 8 9; do
  rcli HSET $MW sms:+1555000000$i "{\"state\":\"sent\",\"channel\":\"sms\",\"slot\":\"$i\",\"attempts\":1,\"at\":11000,\"by\":\"b/1\",\"provider_id\":\"p$i\"}" >/dev/null
done
rcli HINCRBY $CW sent 4 >/dev/null
res=$(sw w 12000)
[ "$res" = "swept requeued=0 uncertain=0 retries=0" ] || fail "third sweep: $res"
[ "$(rraw ZSCORE omni:retry 'w|4|0')" = 10000 ] || fail "third sweep moved a retry"
[ "$(rraw ZSCORE omni:active w)" = 12000 ] || fail "third sweep: looked at now"
# retries due later (a long Retry-After): the next look when the first is due
rcli ZADD omni:retry 60000 'w|4|0' 50000 'w|5|1' >/dev/null
[ "$(sw w 12100)" = "swept requeued=0 uncertain=0 retries=0" ] || fail "sweep with a retry due later"
[ "$(rraw ZSCORE omni:active w)" = 50000 ] || fail "a campaign waiting for a retry is looked at again when it is due: $(rraw ZSCORE omni:active w)"
[ "$(rraw ZSCORE omni:retry 'w|5|1')" = 50000 ] || fail "a waiting retry must not move"
# the retries resolved (the fallback record lost again): only the counters
# decide; done when they add up
rcli ZREM omni:retry 'w|4|0' 'w|5|1' >/dev/null
rcli HSET $MW sms:+15550000004 '{"state":"sent","channel":"sms","slot":"4","attempts":2,"at":12500,"by":"b/1","provider_id":"p4"}' \
  wa:+15550000005 '{"state":"sent","channel":"wa","slot":"5","attempts":1,"at":12500,"by":"b/1","provider_id":"p5"}' >/dev/null
rcli HINCRBY $CW sent 2 >/dev/null
res=$(sw w 13000)
[ "$res" = "swept requeued=0 uncertain=0 retries=0 done" ] || fail "final sweep: $res"
[ "$(rraw HGET $CW state)" = done ] && [ "$(rraw HGET $CW finished_at)" = 13000 ] || fail "sweep: done"
[ -z "$(rraw ZSCORE omni:active w)" ] || fail "sweep: a done campaign left in omni:active"
[ "$(sw w 14000)" = "skip:done" ] || fail "sweep of a done campaign"
ok "sweep: expired claim uncertain, lost retry and fallback queued, never-claimed slots re-chunked, idempotent, done"

# a campaign with a chunk anywhere is left alone: delivered and not acked,
# not delivered yet, parked while paused; runs longer than chunk_size are cut
CX=omni:campaign:x
ev create 5 $CX $CX:rcpt omni:chunks "" omni:scheduled '{"channels":["sms"]}' 1000 2 0 x broadcast \
  '{"to":"+15550000001"}' '{"to":"+15550000002"}' '{"to":"+15550000003"}' >/dev/null
[ "$(sw x 9000)" = "skip:pending" ] || fail "undelivered chunk"
ids=$(rraw XREADGROUP GROUP omnicast t COUNT 10000 STREAMS omni:chunks '>' | grep -E '^[0-9]+-[0-9]+$')
[ "$(sw x 9000)" = "skip:pending" ] || fail "unacked chunk"
rcli XACK omni:chunks omnicast $ids >/dev/null
rcli ZADD omni:scheduled 99999 'chunk:x:0:2' 99999 'chunk:xy:0:2' >/dev/null
[ "$(sw x 9000)" = "skip:pending" ] || fail "parked chunk"
rcli ZREM omni:scheduled 'chunk:x:0:2' >/dev/null
n0=$(rraw XLEN omni:chunks)
res=$(sw x 9000)
[ "$res" = "swept requeued=3 uncertain=0 retries=0" ] || fail "chunks lost: $res"
[ "$(rraw XLEN omni:chunks)" = $((n0 + 2)) ] || fail "a run of 3 in chunks of 2: two entries"
[ "$(rraw XREVRANGE omni:chunks + - COUNT 2 | grep -v -- - | tr '\n' ' ')" = "c x s 2 e 3 c x s 0 e 2 " ] ||
  fail "re-chunked: $(rraw XREVRANGE omni:chunks + - COUNT 2 | tr '\n' ' ')"
deliver_all
# quiet hours: a slot with no record waiting in the retry set is not re-chunked
rcli ZADD omni:retry 99999 'x|1|0' >/dev/null
rcli HSET omni:msg:x sms:+15550000001 '{"state":"sent","channel":"sms","slot":"0","attempts":1,"at":1,"by":"a/1","provider_id":"x"}' \
  'dup:2' 'sms:+15550000001' >/dev/null
[ "$(sw x 9100)" = "swept requeued=0 uncertain=0 retries=0" ] || fail "deferred slot and dup slot are not missing"
ev control 2 $CX omni:scheduled pause 9200 x >/dev/null
[ "$(sw x 9300)" = "skip:paused" ] && [ -z "$(rraw ZSCORE omni:active x)" ] || fail "paused campaign: skipped, not active"
ok "sweep: skipped while a chunk waits (undelivered, unacked, parked), chunk_size runs, deferred and dup slots"
# too many chunks waiting to look through in one call: not this round
rcli EVAL "for i = 1, 1001 do redis.call('XADD', KEYS[1], '*', 'c', 'other', 's', 0, 'e', 1) end" 1 omni:busy >/dev/null
rcli XGROUP CREATE omni:busy omnicast 0 >/dev/null
ev control 2 $CX omni:scheduled resume 9400 x >/dev/null
res=$(ev sweep 6 $CX omni:msg:x omni:retry omni:scheduled omni:busy omni:active omni: 9500 x omnicast 1000)
[ "$res" = "skip:busy" ] || fail "busy: $res"
ok "sweep: gives up a round with more waiting chunks than it looks through"

# a scan longer than one call (a budget of 50 records a call) goes on where
# it stopped: 300 recipients, 0-199 sent, 250 claimed long ago, 200-249 and
# 251-299 never claimed
CL=omni:campaign:l ML=omni:msg:l
python3 - <<'PY' | redis-cli -p "$REDIS_PORT" >/dev/null
print("HSET omni:campaign:l state running total 300 chunk_size 1000 sent 200 spec '{\"channels\":[\"sms\"]}'")
for i in range(200):
    print("HSET omni:msg:l sms:+1555%07d '{\"state\":\"sent\",\"channel\":\"sms\",\"slot\":\"%d\",\"attempts\":1,\"at\":1}'" % (i, i))
print("HSET omni:msg:l sms:+15550000250 '{\"state\":\"claimed\",\"channel\":\"sms\",\"slot\":\"250\",\"owner\":\"z/1\",\"attempts\":1,\"lease\":1,\"at\":1}'")
print("ZADD omni:active 1 l")
PY
calls=0
while :; do
  calls=$((calls + 1))
  res=$(ev sweep 6 $CL $ML omni:retry omni:scheduled omni:chunks omni:active omni: 20000 l omnicast 1000 50)
  case "$res" in more*) ;; *) break ;; esac
  [ $calls -lt 50 ] || fail "the scan does not end"
done
[ "$res" = "swept requeued=99 uncertain=1 retries=0" ] || fail "long scan: $res after $calls calls"
[ $calls -ge 4 ] || fail "long scan: $calls calls only"
[ "$(rraw XREVRANGE omni:chunks + - COUNT 2 | grep -v -- - | tr '\n' ' ')" = "c l s 251 e 300 c l s 200 e 250 " ] ||
  fail "long scan chunks: $(rraw XREVRANGE omni:chunks + - COUNT 2 | tr '\n' ' ')"
[ "$(rraw HGET $CL uncertain)" = 1 ] || fail "long scan: uncertain counted $(rraw HGET $CL uncertain)"
[ "$(rraw EXISTS omni:sweep:l omni:sweep:l:seen)" = 0 ] || fail "scan state left behind"
ok "sweep: a scan over several calls ($calls) goes on where it stopped and cleans up"

# crmlease: one holder of the CRM feed's lease at a time
K=omni:crm:lease
[ "$(ev crmlease 1 $K take a/1 5000)" = 2 ] || fail "crmlease: a free lease is taken"
[ "$(ev crmlease 1 $K take b/1 5000)" = 0 ] || fail "crmlease: another holder is refused"
rcli PEXPIRE $K 3000 >/dev/null
[ "$(ev crmlease 1 $K take a/1 5000)" = 1 ] || fail "crmlease: the holder renews"
ttl=$(rraw PTTL $K)
[ "$ttl" -gt 4000 ] || fail "crmlease: renewed for $ttl ms only"
[ "$(ev crmlease 1 $K drop b/1)" = 0 ] || fail "crmlease: another process dropped the lease"
[ "$(rraw GET $K)" = a/1 ] || fail "crmlease: the holder changed"
[ "$(ev crmlease 1 $K drop a/1)" = 1 ] || fail "crmlease: the holder cannot drop it"
[ "$(ev crmlease 1 $K take b/1 5000)" = 2 ] || fail "crmlease: a dropped lease is not free"
ok "crmlease: taken when free, renewed by its holder only, dropped by its holder only"
