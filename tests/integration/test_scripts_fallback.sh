#!/bin/bash
# Fallback that follows delivery, in the scripts alone (redis-cli EVAL on a
# real redis-server): a failed status moves a recipient to its next channel
# (sent - 1, fallback + 1, the record marked fell, a retry entry on the next
# channel), except an opt-out, the last channel or a cancelled campaign; a
# done campaign is reopened; fallback_after_s watches a sent message
# (omni:watch, awaiting) until a delivered/read status or watch.lua moves it
# on; the finish rule waits for awaiting; per-channel counters; the sweep
# repairs a fell record whose retry entry was lost.
source "$(dirname "$0")/lib.sh"
start_redis
L="$OMNI_SRC/daemon/lua"
ev() { local f=$1; shift; rraw EVAL "$(cat "$L/lib/prelude.lua" "$L/$f.lua")" "$@"; }
cf() { rraw HGET "omni:campaign:$1" "$2"; }
rec() { rraw HGET "omni:msg:$1" "$2"; }
field() { rec "$1" "$2" | python3 -c "import json,sys; print(json.load(sys.stdin).get('$3',''))"; }
status() { ev inbound 0 omni: "$1" status "${K:-wa}" "$2" "$3" "${4:-}" | head -1; }
A1=+15550000001 A2=+15550000002 A3=+15550000003 A4=+15550000004

# ---- fallback_after_s = 8: three watched messages
SPEC='{"channels":["whatsapp","sms"],"fallback_after_s":8}'
ev create 5 omni:campaign:f omni:campaign:f:rcpt omni:chunks "" omni:scheduled "$SPEC" 1000 10 0 f broadcast \
  "{\"to\":\"$A1\"}" "{\"to\":\"$A2\"}" "{\"to\":\"$A3\"}" "{\"to\":\"$A4\"}" >/dev/null
res=$(ev claim 2 omni:campaign:f omni:msg:f omni: 1000 5000 a/1 a whatsapp "" 4 $A1 0 $A2 1 $A3 2 $A4 3 | tr '\n' ' ')
[ "$res" = "running go:1 go:1 go:1 go:1 " ] || fail "claim: $res"
# sent with a due time and member (what dispatch.c sends for a watched one)
res=$(ev outcome 0 omni: 1100 60 K wa \
  sent f whatsapp $A1 0 1 w.1 "" 9100 'f|0|0' sent f whatsapp $A2 1 1 w.2 "" 9100 'f|1|0' \
  sent f whatsapp $A3 2 1 w.3 "" 9100 'f|2|0' sent f whatsapp $A4 3 1 w.4 "" 9100 'f|3|0')
[ "$res" = oooo ] || fail "outcome: $res"
[ "$(rraw ZSCORE omni:watch "f|0|0|whatsapp:$A1")" = 9100 ] || fail "watch entry: $(rraw ZRANGE omni:watch 0 -1 WITHSCORES | tr '\n' ' ')"
[ "$(cf f sent)" = 4 ] && [ "$(cf f sent:whatsapp)" = 4 ] && [ "$(cf f awaiting)" = 4 ] ||
  fail "counters: $(rraw HGETALL omni:campaign:f | tr '\n' ' ')"
[ "$(cf f state)" = running ] || fail "finished while messages are watched"
[ "$(field f whatsapp:$A1 w)" = 0 ] || fail "record not marked watched: $(rec f whatsapp:$A1)"
[ -z "$(rraw ZSCORE omni:retry 'f|0|0')" ] || fail "a retry entry for a first attempt"
ok "outcome: a watched sent message gets its omni:watch entry, awaiting + 1, sent:whatsapp; not finished"

# delivered for 1, read for 4 (read implies delivered): settled
[ "$(status 2000 w.1 delivered)" = ok ] || fail "delivered"
[ "$(status 2000 w.4 read)" = ok ] || fail "read"
[ -z "$(rraw ZSCORE omni:watch "f|0|0|whatsapp:$A1")" ] && [ -z "$(rraw ZSCORE omni:watch "f|3|0|whatsapp:$A4")" ] ||
  fail "settled entries left in omni:watch"
[ "$(cf f awaiting)" = 2 ] && [ "$(cf f delivered:whatsapp)" = 2 ] && [ "$(cf f read:whatsapp)" = 1 ] ||
  fail "counters: $(rraw HGETALL omni:campaign:f | tr '\n' ' ')"
# a failed status (131026, not an opt-out) for 2: moved on at once
[ "$(status 3000 w.2 failed '131026: Message undeliverable')" = ok ] || fail "failed status"
[ "$(field f whatsapp:$A2 fell)" = failed_status ] && [ "$(field f whatsapp:$A2 state)" = sent ] ||
  fail "record: $(rec f whatsapp:$A2)"
[ "$(rraw ZSCORE omni:retry 'f|1|1')" = 3000 ] || fail "no retry entry on sms for 2"
[ "$(cf f sent)" = 3 ] && [ "$(cf f fallback)" = 1 ] && [ "$(cf f awaiting)" = 1 ] &&
  [ "$(cf f failed:whatsapp)" = 1 ] && [ "$(cf f failed_after_send)" = 1 ] ||
  fail "counters: $(rraw HGETALL omni:campaign:f | tr '\n' ' ')"
# the same status again: a duplicate, nothing moves twice
[ "$(status 3001 w.2 failed '131026: Message undeliverable')" = duplicate ] || fail "replayed status"
[ "$(cf f fallback)" = 1 ] || fail "moved twice"
ok "inbound: delivered/read settle a watched message; a failed status moves it to sms (sent - 1, fallback + 1, fell)"

# watch.lua: nothing due before 9100; at 9200 recipient 3 moves on
[ "$(ev watch 1 omni:watch omni: 9000 100 | tr '\n' ' ')" = "0 0 " ] || fail "watch before due"
[ "$(ev watch 1 omni:watch omni: 9200 100 | tr '\n' ' ')" = "1 1 " ] || fail "watch at due"
[ "$(field f whatsapp:$A3 fell)" = no_delivery ] || fail "record: $(rec f whatsapp:$A3)"
[ "$(rraw ZSCORE omni:retry 'f|2|1')" = 9200 ] || fail "no retry entry on sms for 3"
[ "$(cf f awaiting)" = 0 ] && [ "$(cf f sent)" = 2 ] && [ "$(cf f fallback)" = 2 ] ||
  fail "counters: $(rraw HGETALL omni:campaign:f | tr '\n' ' ')"
[ "$(rraw ZCARD omni:watch)" = 0 ] || fail "omni:watch not empty"
# a late delivered for 3 changes no counter but its own
[ "$(status 9300 w.3 delivered)" = ok ] && [ "$(cf f awaiting)" = 0 ] && [ "$(cf f fallback)" = 2 ] || fail "late delivered"
ok "watch.lua: nothing before due; a due unconfirmed message moves on (no_delivery), awaiting back to 0"

# the retries on sms: claimed afresh, sent (last channel: not watched)
res=$(ev claim 2 omni:campaign:f omni:msg:f omni: 9400 5000 a/1 a sms FR 2 $A2 1 $A3 2 | tr '\n' ' ')
[ "$res" = "running go:1 go:1 " ] || fail "sms claim: $res"
res=$(ev outcome 0 omni: 9500 60 K sms sent f sms $A2 1 1 s.2 "" 0 'f|1|1' sent f sms $A3 2 1 s.3 "" 0 'f|2|1')
[ "$res" = oo ] || fail "sms outcome: $res"
[ "$(cf f sent)" = 4 ] && [ "$(cf f sent:sms)" = 2 ] && [ "$(cf f state)" = done ] ||
  fail "counters: $(rraw HGETALL omni:campaign:f | tr '\n' ' ')"
[ "$(rraw ZCARD omni:watch)" = 0 ] && [ "$(cf f awaiting)" = 0 ] || fail "the last channel was watched"
# a failed status on the last channel moves nothing
[ "$(K=sms status 9600 s.2 failed '30003: Unreachable')" = ok ] && [ "$(cf f fallback)" = 2 ] && [ "$(cf f sent)" = 4 ] &&
  [ "$(cf f failed:sms)" = 1 ] || fail "last channel: $(rraw HGETALL omni:campaign:f | tr '\n' ' ')"
ok "fallback retries sent on sms; done with sent = total, sent:whatsapp 4 + sent:sms 2; the last channel stays"

# ---- a campaign without fallback_after_s: the run path, no watch; done,
# then a failed status reopens it; an opt-out does not
ev create 5 omni:campaign:g omni:campaign:g:rcpt omni:chunks "" omni:scheduled '{"channels":["whatsapp","sms"]}' 1000 10 0 g broadcast \
  "{\"to\":\"$A1\"}" "{\"to\":\"$A2\"}" >/dev/null
ev claim 2 omni:campaign:g omni:msg:g omni: 1000 5000 a/1 a whatsapp "" 2 $A1 0 $A2 1 >/dev/null
[ "$(ev outcome 0 omni: 1100 60 K wa S g whatsapp a/1 2 $A1 0 g.1 $A2 1 g.2)" = oo ] || fail "run outcome"
[ "$(cf g state)" = done ] && [ "$(cf g sent:whatsapp)" = 2 ] && [ -z "$(cf g awaiting)" ] || fail "g: $(rraw HGETALL omni:campaign:g | tr '\n' ' ')"
[ "$(rraw ZCARD omni:watch)" = 0 ] || fail "the run path watched"
[ "$(rraw TTL omni:campaign:g:rcpt)" -gt 0 ] || fail "rcpt list does not expire"
[ "$(status 2000 g.2 failed '131050: stop')" = ok ] || fail "opt-out status"
[ "$(cf g state)" = done ] && [ -z "$(cf g fallback)" ] && [ -z "$(rraw ZSCORE omni:retry 'g|1|1')" ] || fail "an opt-out fell back"
[ "$(status 2000 g.1 failed '131026: undeliverable')" = ok ] || fail "failed status"
[ "$(cf g state)" = running ] && [ -z "$(cf g finished_at)" ] && [ "$(rraw TTL omni:campaign:g:rcpt)" = -1 ] &&
  [ "$(rraw ZSCORE omni:active g)" = 2000 ] && [ "$(rraw ZSCORE omni:retry 'g|0|1')" = 2000 ] && [ "$(cf g sent)" = 1 ] ||
  fail "reopen: $(rraw HGETALL omni:campaign:g | tr '\n' ' ') ttl $(rraw TTL omni:campaign:g:rcpt)"
ok "no fallback_after_s: run path, no watch; an opt-out status stays; a failed status reopens a done campaign"

# a done campaign whose recipient list is gone is not reopened
ev create 5 omni:campaign:e omni:campaign:e:rcpt omni:chunks "" omni:scheduled '{"channels":["whatsapp","sms"]}' 1000 10 0 e broadcast \
  "{\"to\":\"$A1\"}" >/dev/null
ev claim 2 omni:campaign:e omni:msg:e omni: 1000 5000 a/1 a whatsapp "" 1 $A1 0 >/dev/null
ev outcome 0 omni: 1100 60 K wa S e whatsapp a/1 1 $A1 0 e.1 >/dev/null
rcli DEL omni:campaign:e:rcpt >/dev/null
[ "$(status 2000 e.1 failed '131026: undeliverable')" = ok ] && [ "$(cf e state)" = done ] && [ -z "$(cf e fallback)" ] ||
  fail "reopened without its list: $(rraw HGETALL omni:campaign:e | tr '\n' ' ')"
ok "a done campaign without its recipient list is not reopened"

# ---- a cancelled campaign: a failed status and a due watch move nothing
ev create 5 omni:campaign:h omni:campaign:h:rcpt omni:chunks "" omni:scheduled "$SPEC" 1000 10 0 h broadcast \
  "{\"to\":\"$A3\"}" "{\"to\":\"$A4\"}" >/dev/null
ev claim 2 omni:campaign:h omni:msg:h omni: 1000 5000 a/1 a whatsapp "" 2 $A3 0 $A4 1 >/dev/null
ev outcome 0 omni: 1100 60 K wa sent h whatsapp $A3 0 1 h.1 "" 9100 'h|0|0' sent h whatsapp $A4 1 1 h.2 "" 9100 'h|1|0' >/dev/null
ev control 2 omni:campaign:h omni:scheduled cancel 1200 h >/dev/null
[ "$(cf h state)" = cancelled ] || fail "cancel"
[ "$(status 2000 h.1 failed '131026: undeliverable')" = ok ] || fail "status"
w=$(ev watch 1 omni:watch omni: 9200 100 | tr "\n" " "); [ "$w" = "1 0 " ] || fail "watch of a cancelled campaign: $w $(rraw HGETALL omni:campaign:h | tr "\n" " ")"
[ -z "$(cf h fallback)" ] && [ "$(cf h sent)" = 2 ] && [ "$(cf h awaiting)" = 0 ] && [ -z "$(rraw ZSCORE omni:retry 'h|0|1')" ] &&
  [ -z "$(rraw ZSCORE omni:retry 'h|1|1')" ] || fail "cancelled: $(rraw HGETALL omni:campaign:h | tr '\n' ' ')"
ok "a cancelled campaign: a failed status and a due watch move nothing"

# ---- a paused campaign: the recipient moves on and its retry entry waits
# (a claim of a paused campaign answers paused: the entry comes back after
# its lease, as any retry's); its omni:active score is not touched
A5=+15550000005
ev create 5 omni:campaign:p omni:campaign:p:rcpt omni:chunks "" omni:scheduled "$SPEC" 1000 10 0 p broadcast "{\"to\":\"$A5\"}" >/dev/null
ev claim 2 omni:campaign:p omni:msg:p omni: 1000 5000 a/1 a whatsapp "" 1 $A5 0 >/dev/null
ev outcome 0 omni: 1100 60 K wa sent p whatsapp $A5 0 1 p.1 "" 9100 'p|0|0' >/dev/null
ev control 2 omni:campaign:p omni:scheduled pause 1200 p >/dev/null
[ "$(cf p state)" = paused ] || fail "pause"
w=$(ev watch 1 omni:watch omni: 9200 100 | tr "\n" " ")
[ "$w" = "1 1 " ] || fail "watch of a paused campaign: $w"
[ "$(rraw ZSCORE omni:retry 'p|0|1')" = 9200 ] && [ "$(rraw ZSCORE omni:active p)" != 9200 ] && [ "$(cf p state)" = paused ] ||
  fail "paused: $(rraw HGETALL omni:campaign:p | tr '\n' ' ')"
[ "$(ev claim 2 omni:campaign:p omni:msg:p omni: 9300 5000 a/1 a sms FR 1 $A5 0 | tr '\n' ' ')" = "paused " ] || fail "claim while paused"
ev control 2 omni:campaign:p omni:scheduled resume 9400 p >/dev/null
[ "$(ev claim 2 omni:campaign:p omni:msg:p omni: 9500 5000 a/1 a sms FR 1 $A5 0 | tr '\n' ' ')" = "running go:1 " ] || fail "claim after resume"
ok "a paused campaign: the due watch moves the recipient on; its retry waits for the resume"

# ---- the sweep: a fell record whose retry entry was lost gets it back;
# a watched record whose watch entry was lost gets that back
rcli XGROUP CREATE omni:chunks omnicast '$' MKSTREAM >/dev/null 2>&1 || true
ids=$(rraw XREADGROUP GROUP omnicast t COUNT 10000 STREAMS omni:chunks '>' | grep -E '^[0-9]+-[0-9]+$' || true)
[ -z "$ids" ] || rcli XACK omni:chunks omnicast $ids >/dev/null
rcli ZREM omni:retry 'g|0|1' >/dev/null
sw() { ev sweep 6 omni:campaign:$1 omni:msg:$1 omni:retry omni:scheduled omni:chunks omni:active omni: "$2" "$1" omnicast 1000; }
res=$(sw g 20000)
[ "$res" = "swept requeued=0 uncertain=0 retries=1" ] || fail "sweep g: $res"
[ "$(rraw ZSCORE omni:retry 'g|0|1')" = 20000 ] || fail "sweep did not put back the fallback"
ev create 5 omni:campaign:s omni:campaign:s:rcpt omni:chunks "" omni:scheduled "$SPEC" 1000 10 0 s broadcast "{\"to\":\"$A1\"}" >/dev/null
ids=$(rraw XREADGROUP GROUP omnicast t COUNT 10000 STREAMS omni:chunks '>' | grep -E '^[0-9]+-[0-9]+$' || true)
[ -z "$ids" ] || rcli XACK omni:chunks omnicast $ids >/dev/null
ev claim 2 omni:campaign:s omni:msg:s omni: 1000 5000 a/1 a whatsapp "" 1 $A1 0 >/dev/null
ev outcome 0 omni: 1100 60 K wa sent s whatsapp $A1 0 1 s.1 "" 9100 's|0|0' >/dev/null
rcli DEL omni:watch >/dev/null
res=$(sw s 20000)
[ "$res" = "swept requeued=0 uncertain=0 retries=0" ] || fail "sweep s: $res"
[ "$(rraw ZSCORE omni:watch "s|0|0|whatsapp:$A1")" = 20000 ] || fail "watch entry not put back: $(rraw ZRANGE omni:watch 0 -1 WITHSCORES | tr '\n' ' ')"
[ "$(cf s state)" = running ] || fail "the sweep finished a campaign with a watched message"
ok "sweep: a fell record's lost retry entry and a watched record's lost watch entry come back; awaiting holds the finish"
