#!/bin/bash
# WhatsApp identity (issue 18 point 7) against the mock provider: a send to
# +5215512345678 answered with wa_id 525512345678 (Mexico's form) records
# the alias omni:alias:whatsapp:+525512345678 -> +5215512345678; a status,
# a reply and a STOP from the wa_id count for and suppress the address
# campaigns use, so the next campaign skips it; a user_preferences resume
# from the wa_id unsuppresses it; a user_changed_number notice maps the new
# number to the same address; a user known only by a business-scoped user
# id (no phone number) becomes a contact keyed by that id, with a
# conversation, a stored and published reply, and a working STOP.
source "$(dirname "$0")/lib.sh"

start_redis
start_mock prov --fail-plan "wa_id=525512345678:to=5215512345678"
HTTP_PORT=$(free_port)
daemon_conf "$T/omni.conf" "
http_listen = 127.0.0.1:$HTTP_PORT
$(wa_section "$MOCK_PORT")

[channels]
whatsapp = wa"
start_daemon "$T/omni.conf"
B="http://127.0.0.1:$HTTP_PORT"
wait_for 20 curl -sf "$B/readyz"
J="$T/prov.jsonl"
MX=+5215512345678 # the address campaigns use
WA=525512345678   # WhatsApp's id for it

# ---- the send answer's wa_id differs from the number sent to: an alias
enqueue '{"type":"broadcast","id":"mx","channel":"whatsapp","message":{"text":"hola"},"recipients":[{"to":"+52 1 55 1234 5678"},{"to":"+15550000001"}]}'
wait_for 30 campaign_done mx
[ "$(msg_field mx "whatsapp:$MX" state)" = sent ] || fail "not sent: $(rraw HGET omni:msg:mx "whatsapp:$MX")"
[ "$(msg_field mx whatsapp:+15550000001 state)" = sent ] || fail "the ordinary recipient: $(rraw HGET omni:msg:mx whatsapp:+15550000001)"
python3 - "$J" <<'PY' || fail "the mock's answer"
import json, sys
seen = [json.loads(l) for l in open(sys.argv[1]) if '"/v' in l]
tos = sorted(json.loads(r["body"])["to"] for r in seen if r["path"].endswith("/messages"))
assert tos == ["15550000001", "5215512345678"], tos
PY
[ "$(rraw GET "omni:alias:whatsapp:+$WA")" = "$MX" ] || fail "no alias: $(rraw KEYS 'omni:alias:*')"
[ "$(rraw KEYS 'omni:alias:*' | grep -c .)" = 1 ] || fail "an alias where the wa_id is the number sent to: $(rraw KEYS 'omni:alias:*')"
[ "$(rraw TTL "omni:alias:whatsapp:+$WA")" = -1 ] || fail "the alias expires"
ok "a wa_id other than the number sent to is kept as an alias of the address; none otherwise"

HEAD=$WA_HEAD
TAIL=$WA_TAIL
events() { rraw XRANGE omni:conversations - + | grep '^{' ; }
text_from() { # WA_ID ID TEXT: a text message, no context (attribution by the contact's last campaign)
  printf "$HEAD"'"contacts":[{"profile":{"name":"Lu"},"wa_id":"%s"}],"messages":[{"from":"%s","id":"%s","timestamp":"1700000200","type":"text","text":{"body":"%s"}}]'"$TAIL" messages "$1" "$1" "$2" "$3"
}

# ---- a status names the wa_id; it resolves through the provider id
w=$(msg_field mx "whatsapp:$MX" provider_id)
[ -n "$w" ] || fail "no provider id"
body=$(printf "$HEAD"'"statuses":[{"id":"%s","status":"delivered","timestamp":"1700000100","recipient_id":"%s"}]'"$TAIL" messages "$w" "$WA")
[ "$(post_wa "$body")" = 200 ] || fail "status: $(cat "$T/wbody")"
[ "$(campaign_field mx delivered)" = 1 ] || fail "delivered: $(campaign_field mx delivered)"
ok "a status for the wa_id counts for the campaign"

# ---- a reply from the wa_id: the contact is the address campaigns use
[ "$(post_wa "$(text_from "$WA" wamid.R1 'Cuanto cuesta?')")" = 200 ] || fail "reply: $(cat "$T/wbody")"
conv=$(rraw HGET "omni:contact:whatsapp:$MX" open_conv)
[ -n "$conv" ] || fail "no conversation for $MX: $(rraw KEYS 'omni:contact:*')"
[ -z "$(rraw HGET "omni:contact:whatsapp:+$WA" open_conv)" ] || fail "a conversation keyed by the wa_id"
[ "$(rraw HGET "omni:conv:$conv" campaign)" = mx ] || fail "conversation not attributed: $(rraw HGETALL "omni:conv:$conv" | tr '\n' ' ')"
[ "$(campaign_field mx replied)" = 1 ] || fail "replied: $(campaign_field mx replied)"
events | grep '"message.received"' | q "\"contact\":\"$MX\"" || fail "message.received: $(events)"
ok "a reply from the wa_id is attributed to the campaign under the address it used"

# ---- STOP from the wa_id suppresses the address campaigns use
[ "$(post_wa "$(text_from "$WA" wamid.R2 STOP)")" = 200 ] || fail "stop: $(cat "$T/wbody")"
[ "$(rraw SISMEMBER omni:suppress:whatsapp "$MX")" = 1 ] || fail "STOP did not suppress $MX: $(rraw SMEMBERS omni:suppress:whatsapp)"
[ "$(rraw SISMEMBER omni:suppress:whatsapp "+$WA")" = 0 ] || fail "the wa_id suppressed instead"
[ "$(campaign_field mx opted_out)" = 1 ] || fail "opted_out: $(campaign_field mx opted_out)"
enqueue '{"type":"broadcast","id":"mx2","channel":"whatsapp","message":{"text":"otra vez"},"recipients":[{"to":"+5215512345678"},{"to":"+15550000001"}]}'
wait_for 30 campaign_done mx2
[ "$(campaign_field mx2 suppressed)" = 1 ] && [ "$(campaign_field mx2 sent)" = 1 ] || fail "mx2: $(rraw HGETALL omni:campaign:mx2 | tr '\n' ' ')"
python3 - "$J" <<'PY' || fail "the suppressed address was sent to again"
import json, sys
n = sum(1 for l in open(sys.argv[1]) for r in [json.loads(l)]
        if r["path"].endswith("/messages") and json.loads(r["body"])["to"] == "5215512345678")
assert n == 1, n
PY
ok "STOP from the wa_id suppresses the address campaigns target: the next campaign skips it"

# ---- user_preferences resume from the wa_id
pref() { printf "$HEAD"'"contacts":[{"profile":{"name":"Lu"},"wa_id":"%s"}],"user_preferences":[{"wa_id":"%s","detail":"User requested to %s marketing messages","category":"marketing_messages","value":"%s","timestamp":%s}]'"$TAIL" user_preferences "$1" "$1" "$2" "$2" "$3"; }
[ "$(post_wa "$(pref "$WA" resume 1731705800)")" = 200 ] || fail "resume: $(cat "$T/wbody")"
[ "$(rraw SISMEMBER omni:suppress:whatsapp "$MX")" = 0 ] || fail "resume from the wa_id did not unsuppress $MX"
events | grep '"contact.opted_in"' | q "\"contact\":\"$MX\"" || fail "contact.opted_in: $(events)"
ok "a user_preferences resume from the wa_id unsuppresses the address"

# ---- user_changed_number: the new number stands for the same address
convs=$(rraw ZCARD omni:conv:all)
body=$(printf "$HEAD"'"messages":[{"from":"%s","id":"wamid.SYS9","timestamp":"1700000300","type":"system","system":{"body":"User Lu changed from %s to 525599999999","wa_id":"525599999999","type":"user_changed_number"}}]'"$TAIL" messages "$WA" "$WA")
[ "$(post_wa "$body")" = 200 ] || fail "system: $(cat "$T/wbody")"
[ "$(rraw GET omni:alias:whatsapp:+525599999999)" = "$MX" ] || fail "no alias for the new number: $(rraw KEYS 'omni:alias:*')"
[ "$(rraw ZCARD omni:conv:all)" = "$convs" ] || fail "the notice opened a conversation"
[ "$(campaign_field mx replied)" = 1 ] || fail "the notice counted as a reply"
events | grep '"contact.system"' | grep '"subtype":"user_changed_number"' | grep "\"contact\":\"$MX\"" | q '"new_address":"+525599999999"' || fail "contact.system: $(events | grep contact.system)"
[ "$(post_wa "$(text_from 525599999999 wamid.R3 STOP)")" = 200 ] || fail "stop from the new number"
[ "$(rraw SISMEMBER omni:suppress:whatsapp "$MX")" = 1 ] || fail "STOP from the new number did not suppress $MX"
ok "user_changed_number maps the new number to the address; not a reply; a STOP from it suppresses"

# ---- a user known only by a business-scoped user id
BS=US.13491208655302741918
bsuid_msg() { # ID TEXT
  printf "$HEAD"'"contacts":[{"profile":{"name":"Bo","username":"@bo"},"user_id":"%s"}],"messages":[{"from_user_id":"%s","id":"%s","timestamp":"1700000400","type":"text","text":{"body":"%s"}}]'"$TAIL" messages "$BS" "$BS" "$1" "$2"
}
[ "$(post_wa "$(bsuid_msg wamid.B1 'hello from a username')")" = 200 ] || fail "bsuid message: $(cat "$T/wbody")"
bconv=$(rraw HGET "omni:contact:whatsapp:$BS" open_conv)
[ -n "$bconv" ] || fail "no conversation keyed by the BSUID: $(rraw KEYS 'omni:contact:*')"
[ "$(rraw HGET "omni:conv:$bconv" contact)" = "$BS" ] || fail "conversation contact: $(rraw HGETALL "omni:conv:$bconv" | tr '\n' ' ')"
[ "$(rraw HGET "omni:conv:$bconv" name)" = Bo ] || fail "conversation name"
rraw XRANGE "omni:conv:$bconv:log" - + | q -x 'hello from a username' || fail "reply not stored"
events | grep '"message.received"' | q "\"contact\":\"$BS\"" || fail "message.received for the BSUID: $(events)"
events | grep '"conversation.created"' | q "\"contact\":\"$BS\"" || fail "conversation.created for the BSUID"
[ "$(post_wa "$(bsuid_msg wamid.B2 STOP)")" = 200 ] || fail "bsuid stop"
[ "$(rraw SISMEMBER omni:suppress:whatsapp "$BS")" = 1 ] || fail "STOP from the BSUID did not suppress it"
ok "a BSUID-only user: conversation keyed by the BSUID, reply stored and published, STOP suppresses"

# ---- a message with a phone number and a BSUID: the BSUID becomes an alias
# of the number, so the user's later messages without it stay that contact
both='{"from":"15550000001","from_user_id":"US.777000111","id":"wamid.P1","timestamp":"1700000500","type":"text","text":{"body":"first"}}'
body=$(printf "$HEAD"'"contacts":[{"profile":{"name":"Ed"},"wa_id":"15550000001","user_id":"US.777000111"}],"messages":[%s]'"$TAIL" messages "$both")
[ "$(post_wa "$body")" = 200 ] || fail "phone+bsuid message: $(cat "$T/wbody")"
[ "$(rraw GET omni:alias:whatsapp:US.777000111)" = +15550000001 ] || fail "no BSUID alias: $(rraw KEYS 'omni:alias:*')"
pconv=$(rraw HGET omni:contact:whatsapp:+15550000001 open_conv)
[ -n "$pconv" ] || fail "no conversation for the number"
only='{"from_user_id":"US.777000111","id":"wamid.P2","timestamp":"1700000501","type":"text","text":{"body":"later, username only"}}'
body=$(printf "$HEAD"'"contacts":[{"profile":{"name":"Ed","username":"@ed"},"user_id":"US.777000111"}],"messages":[%s]'"$TAIL" messages "$only")
[ "$(post_wa "$body")" = 200 ] || fail "bsuid-only message: $(cat "$T/wbody")"
[ -z "$(rraw HGET omni:contact:whatsapp:US.777000111 open_conv)" ] || fail "a second contact for the same user"
rraw XRANGE "omni:conv:$pconv:log" - + | q -x 'later, username only' || fail "not in the number's conversation"
ok "a BSUID given beside the number maps to it: a later BSUID-only message stays in the number's conversation"

stop_daemon

# ---- outcome.lua's 'A' record, driven directly (the daemon stopped: it
# would take the chunk): between runs, the runs around it recorded as usual
L="$OMNI_SRC/daemon/lua"
ev() { local f=$1; shift; rraw EVAL "$(cat "$L/lib/prelude.lua" "$L/$f.lua")" "$@"; }
C7=omni:campaign:al M7=omni:msg:al
ev create 5 $C7 $C7:rcpt omni:chunks "" omni:scheduled '{}' 1000 10 0 al broadcast '{"to":"x"}' >/dev/null
rcli HSET $C7 total 3 >/dev/null
res=$(ev claim 2 $C7 $M7 omni: 1000 500 a/1 a whatsapp F 3 +5215500000001 0 +15550000002 1 +15550000003 2 | tr '\n' ' ')
[ "$res" = "running go:1 go:1 go:1 " ] || fail "claim: $res"
res=$(ev outcome 0 omni: 2000 60 S al whatsapp a/1 1 +5215500000001 0 p71 \
  A whatsapp +525500000001 +5215500000001 S al whatsapp a/1 1 +15550000002 1 p72 \
  A whatsapp +15550000003 +15550000003 S al whatsapp a/1 1 +15550000003 2 p73)
[ "$res" = ooo ] || fail "outcome with A records: $res"
[ "$(campaign_field al sent)" = 3 ] || fail "sent: $(campaign_field al sent)"
[ "$(rraw GET omni:alias:whatsapp:+525500000001)" = +5215500000001 ] || fail "A record: no alias"
[ "$(rraw EXISTS omni:alias:whatsapp:+15550000003)" = 0 ] || fail "an alias to itself"
for f in +5215500000001 +15550000002 +15550000003; do
  [ "$(msg_field al "whatsapp:$f" state)" = sent ] || fail "record $f: $(rraw HGET $M7 "whatsapp:$f")"
done
ok "outcome.lua: an 'A' record sets the alias between runs; the runs are recorded as usual"

check_logs_clean
ok "test_wa_identity"
