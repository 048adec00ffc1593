#!/bin/bash
# The claim and outcome scripts' side of "never twice", driven directly
# with redis-cli EVAL: own claims left to the caller's memory, a claim
# renewed by its owner (X), the operator's resend (rs), ambiguous outcomes
# recorded as uncertain, outcomes for records Redis lost, and the index of
# running campaigns (omni:active).
source "$(dirname "$0")/lib.sh"
start_redis
L="$OMNI_SRC/daemon/lua"
# each script behind the shared prelude, as the daemon loads it
ev() { local f=$1; shift; rraw EVAL "$(cat "$L/lib/prelude.lua" "$L/$f.lua")" "$@"; }
rec() { rraw HGET "$1" "$2"; }
jf() { python3 -c "import json,sys; print(json.load(sys.stdin).get('$1',''))"; }

C=omni:campaign:g M=omni:msg:g
ev create 5 $C $C:rcpt omni:chunks "" omni:scheduled '{"channels":["wa","sms"]}' 1000 10 0 g broadcast \
  '{"to":"+15550000001"}' '{"to":"+15550000002"}' '{"to":"+15550000003"}' '{"to":"+15550000004"}' >/dev/null

# claim 0..3 as owner a/1 at t=1000 with a lease of 500
res=$(ev claim 2 $C $M omni: 1000 500 a/1 a wa "" 4 +15550000001 0 +15550000002 1 +15550000003 2 +15550000004 3 | tr '\n' ' ')
[ "$res" = "running go:1 go:1 go:1 go:1 " ] || fail "first claim: $res"
[ -n "$(rraw ZSCORE omni:active g)" ] || fail "a claim puts the campaign in omni:active"

# the owner renews its claim (X) past the lease: go, with a new lease
res=$(ev claim 2 $C $M omni: 1600 500 a/1 a wa X 1 +15550000001 0 | tr '\n' ' ')
[ "$res" = "running go:1 " ] || fail "renewal: $res"
[ "$(rec $M wa:+15550000001 | jf lease)" = 2100 ] || fail "renewed lease"
# another owner meets slot 1 after its lease: uncertain, owner_lost
res=$(ev claim 2 $C $M omni: 1700 500 b/1 b wa "" 1 +15550000002 1 | tr '\n' ' ')
[ "$res" = "running unc " ] || fail "owner lost: $res"
[ "$(rec $M wa:+15550000002 | jf reason)" = owner_lost ] || fail "reason owner_lost"
[ "$(rec $M wa:+15550000002 | jf claimed_at)" = 1000 ] || fail "claimed_at"
[ "$(rraw HGET $C uncertain)" = 1 ] || fail "uncertain counted"
# ... and its owner, which never sent it, takes it back when renewing
res=$(ev claim 2 $C $M omni: 1800 500 a/1 a wa X 1 +15550000002 1 | tr '\n' ' ')
[ "$res" = "running go:1 " ] || fail "taken back: $res"
[ "$(rec $M wa:+15550000002 | jf state)" = claimed ] || fail "claimed again"
[ "$(rraw HGET $C uncertain)" = 0 ] || fail "uncertain back down"
# a renewal by someone else is not one: the normal rules apply
res=$(ev claim 2 $C $M omni: 1800 500 b/1 b wa X 1 +15550000003 2 | tr '\n' ' ')
[ "$res" = "running unc " ] || fail "foreign renewal: $res"
ok "claim: X renews the owner's own claim, takes back an owner_lost it never sent, and nothing else"

# outcomes: an ambiguous one ends uncertain with its reason and wire time,
# and is final (no fallback)
res=$(ev outcome 0 omni: 2000 60 unc g wa +15550000001 0 1 "" ambiguous_timeout 1900 "")
[ "$res" = o ] || fail "unc outcome: $res"
r=$(rec $M wa:+15550000001)
[ "$(jf state <<<"$r")" = uncertain ] && [ "$(jf reason <<<"$r")" = ambiguous_timeout ] && [ "$(jf wire_at <<<"$r")" = 1900 ] || fail "uncertain record: $r"
[ "$(rraw HGET $C uncertain)" = 2 ] || fail "unc counted (slot 2 was declared owner_lost above)"
# replayed: nothing more
ev outcome 0 omni: 2001 60 unc g wa +15550000001 0 1 "" ambiguous_timeout 1900 "" >/dev/null
[ "$(rraw HGET $C uncertain)" = 2 ] || fail "unc replay counted twice"
# the owner's ambiguous outcome after another declared it owner_lost: kept
# as one uncertain, with what the owner saw
ev outcome 0 omni: 2002 60 unc g wa +15550000003 2 1 "" ambiguous_reset 1950 "" >/dev/null
r=$(rec $M wa:+15550000003)
[ "$(jf reason <<<"$r")" = ambiguous_reset ] && [ "$(jf wire_at <<<"$r")" = 1950 ] || fail "owner's view kept: $r"
[ "$(rraw HGET $C uncertain)" = 2 ] || fail "one uncertain for slot 2: $(rraw HGET $C uncertain)"
# a 2xx that could not be read: sent, with the reason
ev outcome 0 omni: 2003 60 sent g wa +15550000002 1 1 g.1 unreadable_answer 0 "" >/dev/null
r=$(rec $M wa:+15550000002)
[ "$(jf state <<<"$r")" = sent ] && [ "$(jf reason <<<"$r")" = unreadable_answer ] || fail "unreadable answer: $r"
ok "outcome: unc → uncertain with reason and wire_at, once; sent keeps unreadable_answer"

# Redis lost the claim record (restart from an older snapshot): the outcome
# is still recorded from what the sender knows
rraw HDEL $M wa:+15550000004 >/dev/null
res=$(ev outcome 0 omni: 2100 60 S g wa a/1 1 +15550000004 3 wamid.4)
[ "$res" = o ] || fail "vanished record: $res"
r=$(rec $M wa:+15550000004)
[ "$(jf state <<<"$r")" = sent ] && [ "$(jf provider_id <<<"$r")" = wamid.4 ] || fail "vanished record rewritten: $r"
[ "$(rraw HGET $C sent)" = 2 ] || fail "sent counted: $(rraw HGET $C sent)"
# every recipient terminal: done, and out of omni:active
[ "$(rraw HGET $C state)" = done ] || fail "done: $(rraw HGETALL $C | tr '\n' ' ')"
[ -z "$(rraw ZSCORE omni:active g)" ] || fail "a finished campaign leaves omni:active"
# an outcome for a campaign that no longer exists is dropped
res=$(ev outcome 0 omni: 2200 60 S nosuch wa a/1 1 +15550000009 0 wamid.9)
[ "$res" = s ] || fail "outcome for a missing campaign: $res"
[ "$(rraw EXISTS omni:msg:nosuch)" = 0 ] || fail "a missing campaign got records"
ok "outcome: a record Redis lost is written from the outcome; a missing campaign's is dropped; done leaves omni:active"

# resend-uncertain: the retry it queues is claimed with rs (the operator's
# second message), not go
C2=omni:campaign:r M2=omni:msg:r
ev create 5 $C2 $C2:rcpt omni:chunks "" omni:scheduled '{"channels":["wa"]}' 1000 10 0 r broadcast '{"to":"+15550000011"}' >/dev/null
ev claim 2 $C2 $M2 omni: 1000 500 a/1 a wa F 1 +15550000011 0 >/dev/null
ev outcome 0 omni: 1100 60 unc r wa +15550000011 0 1 "" ambiguous_timeout 1050 "" >/dev/null
[ "$(ev resend 3 $C2 $M2 omni:retry 1200 r)" = 1 ] || fail "resend queued"
res=$(ev claim 2 $C2 $M2 omni: 1300 500 a/1 a wa FR 1 +15550000011 0 | tr '\n' ' ')
[ "$res" = "running rs:2 " ] || fail "resend claim: $res"
ok "resend-uncertain: claimed as rs (sent whatever the sender's memory says)"

# a cancelled campaign: a retry outcome or a quiet-hours deferral that comes
# back after the cancel ends the recipient cancelled at once (pending 0)
C3=omni:campaign:cx M3=omni:msg:cx
ev create 5 $C3 $C3:rcpt omni:chunks "" omni:scheduled '{"channels":["wa"]}' 1000 10 0 cx broadcast '{"to":"+15550000021"}' '{"to":"+15550000022"}' >/dev/null
ev claim 2 $C3 $M3 omni: 1000 500 a/1 a wa F 1 +15550000021 0 >/dev/null
ev control 2 $C3 omni:scheduled cancel 1100 cx >/dev/null
ev outcome 0 omni: 1200 60 retry cx wa +15550000021 0 0 "" http_5xx 5000 'cx|0|0' >/dev/null
ev outcome 0 omni: 1200 60 defer cx wa +15550000022 1 0 "" quiet_hours 9000 'cx|1|0' >/dev/null
[ "$(rec $M3 wa:+15550000021 | jf state)" = cancelled ] || fail "retry after cancel: $(rec $M3 wa:+15550000021)"
[ "$(rec $M3 wa:+15550000022 | jf state)" = cancelled ] || fail "deferral after cancel: $(rec $M3 wa:+15550000022)"
[ -z "$(rraw ZSCORE omni:retry 'cx|0|0')$(rraw ZSCORE omni:retry 'cx|1|0')" ] || fail "nothing of cx waits in omni:retry: $(rraw ZRANGE omni:retry 0 -1 | tr '\n' ' ')"
[ "$(rraw HGET $C3 cancelled)" = 2 ] && [ -n "$(rraw HGET $C3 finished_at)" ] || fail "cancelled counted and finished: $(rraw HGETALL $C3 | tr '\n' ' ')"
ok "outcome: after a cancel, a retry or a deferral ends cancelled at once"
