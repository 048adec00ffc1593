#!/bin/bash
# Conversions (issue 20 point 3): POST /v1/conversations/{id}/conversion and
# the conversion job count `converted` once per conversation and revenue
# per currency, exactly, on the conversation's attributed campaign; the
# same id twice counts once; a conversation without a campaign stores it
# and counts nowhere; bad bodies 400, unknown conversation 404, no Redis
# 503; the counters appear in GET /v1/campaigns/{id} and the CLI; each one
# is published as conversation.converted.
source "$(dirname "$0")/lib.sh"

start_redis
start_mock prov
HTTP_PORT=$(free_port)
echo "t0ken-abc" >"$T/tokens"
daemon_conf "$T/omni.conf" "
http_listen = 127.0.0.1:$HTTP_PORT
api_tokens_file = $T/tokens
$(wa_section "$MOCK_PORT")

[channels]
whatsapp = wa"
start_daemon "$T/omni.conf"
B="http://127.0.0.1:$HTTP_PORT"
wait_for 20 curl -sf "$B/readyz"
AUTH="Authorization: Bearer t0ken-abc"
api() { curl -s -o "$T/body" -w '%{http_code}' -H "$AUTH" "$@"; }
conv_post() { api -X POST -d "$2" "$B/v1/conversations/$1/conversion"; }
jq_() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$T/body" "$1"; }
reply_payload() { # FROM ID TEXT [CONTEXT_ID]
  local ctx=""
  [ -n "${4:-}" ] && ctx=",\"context\":{\"from\":\"15551230000\",\"id\":\"$4\"}"
  printf "$WA_HEAD"'"contacts":[{"profile":{"name":"Ana"},"wa_id":"%s"}],"messages":[{"from":"%s","id":"%s","timestamp":"1700000001","type":"text","text":{"body":"%s"}%s}]'"$WA_TAIL" messages "$1" "$1" "$2" "$3" "$ctx"
}

# ---- a campaign and two attributed conversations, one without a campaign
[ "$(api -d '{"type":"broadcast","id":"bf","channel":"whatsapp","message":{"text":"Sale"},"recipients":[{"to":"+15550000001"},{"to":"+15550000002"}]}' "$B/v1/broadcasts")" = 202 ] || fail "broadcast: $(cat "$T/body")"
wait_for 30 campaign_done bf
w1=$(msg_field bf whatsapp:+15550000001 provider_id)
[ "$(post_wa "$(reply_payload 15550000001 wamid.IN1 "I want one" "$w1")")" = 200 ] || fail "reply 1"
[ "$(post_wa "$(reply_payload 15550000002 wamid.IN2 "Me too")")" = 200 ] || fail "reply 2"
[ "$(post_wa "$(reply_payload 15550000099 wamid.IN9 "Hello?")")" = 200 ] || fail "reply 9"
wait_for 10 sh -c "[ -n \"\$(redis-cli -p $REDIS_PORT --raw HGET omni:contact:whatsapp:+15550000099 open_conv)\" ]"
cv1=$(rraw HGET omni:contact:whatsapp:+15550000001 open_conv)
cv2=$(rraw HGET omni:contact:whatsapp:+15550000002 open_conv)
cv9=$(rraw HGET omni:contact:whatsapp:+15550000099 open_conv)
[ "$(rraw HGET omni:conv:$cv1 campaign)" = bf ] && [ "$(rraw HGET omni:conv:$cv2 campaign)" = bf ] || fail "conversations not attributed to bf"
[ -z "$(rraw HGET omni:conv:$cv9 campaign)" ] || fail "$cv9 has a campaign"

# ---- through the API: counted, exactly, once per id
[ "$(conv_post "$cv1" '{"value":12.5,"currency":"EUR","id":"order-1","note":"first order"}')" = 200 ] || fail "conversion: $(cat "$T/body")"
[ "$(jq_ 'd["status"], d["campaign"], d["converted"], d["value"], d["currency"], d["id"], d["conversation_id"]')" = "('counted', 'bf', True, '12.50', 'EUR', 'order-1', '$cv1')" ] || fail "answer: $(cat "$T/body")"
[ "$(campaign_field bf converted)" = 1 ] && [ "$(campaign_field bf revenue:EUR)" = 12500 ] || fail "counters: $(rraw HGETALL omni:campaign:bf | tr '\n' ' ')"
[ "$(conv_post "$cv1" '{"value":12.5,"currency":"EUR","id":"order-1"}')" = 200 ] || fail "same id again: $(cat "$T/body")"
[ "$(jq_ 'd["status"], d["note"]')" = "('exists', 'first order')" ] || fail "the repeat answered: $(cat "$T/body")"
[ "$(campaign_field bf converted)" = 1 ] && [ "$(campaign_field bf revenue:EUR)" = 12500 ] || fail "the same id counted twice"
ok "POST conversion: 200 counted on bf (converted 1, revenue:EUR 12500 thousandths); the same id again: exists, nothing counted"

# a second conversion of the same conversation: revenue, not converted; 0.1
# ten times adds up exactly (no float drift)
for i in $(seq 1 10); do
  [ "$(conv_post "$cv1" '{"value":0.1,"currency":"EUR"}')" = 200 ] || fail "conversion $i: $(cat "$T/body")"
done
[ "$(jq_ 'd["status"], d["converted"], d["value"]')" = "('counted', False, '0.10')" ] || fail "a repeat conversion: $(cat "$T/body")"
[ "$(conv_post "$cv1" '{"value":5,"currency":"USD","id":"order-2"}')" = 200 ] || fail "usd"
[ "$(campaign_field bf converted)" = 1 ] && [ "$(campaign_field bf revenue:EUR)" = 13500 ] && [ "$(campaign_field bf revenue:USD)" = 5000 ] || fail "counters: $(rraw HGETALL omni:campaign:bf | tr '\n' ' ')"
[ "$(rraw HGET omni:conv:$cv1 conversions)" = 12 ] && [ "$(rraw HLEN omni:conv:$cv1:conversions)" = 12 ] || fail "conversation: $(rraw HGETALL omni:conv:$cv1 | tr '\n' ' ')"
ok "more conversions of one conversation add revenue per currency exactly (10 x 0.10 = 1.00), converted stays 1"

# ---- a conversion job, twice (the same id): counted once
job="{\"type\":\"conversion\",\"id\":\"job-1\",\"conversation_id\":\"$cv2\",\"value\":20,\"currency\":\"EUR\"}"
enqueue "$job"
enqueue "$job"
enqueue '{"type":"conversion","id":"job-2","conversation_id":"cv999999","value":1,"currency":"EUR"}'
wait_for 10 sh -c "[ \"\$(redis-cli -p $REDIS_PORT --raw HGET omni:campaign:bf converted)\" = 2 ]"
wait_for 10 sh -c "redis-cli -p $REDIS_PORT --raw XRANGE omni:dead - + | grep -q unknown_conversation"
wait_for 10 sh -c "[ \"\$(redis-cli -p $REDIS_PORT --raw XPENDING omni:jobs omnicast | head -1)\" = 0 ]"
[ "$(campaign_field bf revenue:EUR)" = 33500 ] || fail "job revenue: $(campaign_field bf revenue:EUR)"
[ "$(rraw HLEN omni:conv:$cv2:conversions)" = 1 ] || fail "the job was stored twice"
ok "a conversion job counts (converted 2, revenue:EUR 33.50); its repeat counts nothing; an unknown conversation is dead-lettered unknown_conversation"

# ---- a conversation without a campaign: stored, counted nowhere
[ "$(conv_post "$cv9" '{"value":3,"currency":"EUR"}')" = 200 ] || fail "no campaign: $(cat "$T/body")"
[ "$(jq_ 'd["status"], d["campaign"], d["counted"]')" = "('stored', None, False)" ] || fail "answer: $(cat "$T/body")"
[ "$(rraw HGET omni:conv:$cv9 revenue:EUR)" = 3000 ] || fail "not stored on the conversation"
[ "$(campaign_field bf revenue:EUR)" = 33500 ] || fail "counted on a campaign"
ok "a conversation without a campaign: 200 stored (campaign null, counted false), kept on the conversation only"

# ---- bad requests
for b in '{"value":-1,"currency":"EUR"}' '{"value":"12","currency":"EUR"}' '{"value":1,"currency":"eur"}' \
         '{"value":1}' '{"currency":"EUR"}' '{"value":1.0001,"currency":"EUR"}' '{"value":1,"currency":"EUR","x":1}' \
         '{"value":1,"currency":"EUR","id":"a b"}' 'nope' '[1]' ''; do
  [ "$(conv_post "$cv1" "$b")" = 400 ] || fail "bad body $b: $(cat "$T/body")"
  q '"code":"invalid_conversion"' "$T/body" || fail "bad body $b: $(cat "$T/body")"
done
[ "$(conv_post cv999999 '{"value":1,"currency":"EUR"}')" = 404 ] || fail "unknown conversation: $(cat "$T/body")"
[ "$(conv_post 'cv1:log' '{"value":1,"currency":"EUR"}')" = 404 ] || fail "an id with ':'"
[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST -d '{"value":1,"currency":"EUR"}' "$B/v1/conversations/$cv1/conversion")" = 401 ] || fail "no token"
[ "$(campaign_field bf revenue:EUR)" = 33500 ] && [ "$(campaign_field bf converted)" = 2 ] || fail "a refused request counted"
ok "bad bodies 400 invalid_conversion, unknown conversation 404, no token 401; nothing counted"

# ---- the counters everywhere, and the events
[ "$(api "$B/v1/campaigns/bf")" = 200 ] || fail "GET campaign"
python3 - "$T/body" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
assert c["converted"] == 2 and c["revenue"] == {"EUR": "33.50", "USD": "5.00"}, c
assert "revenue:EUR" not in c and c["rates"]["converted"] == 1.0, c
PY
"$OMNI_BUILD/omnicast" --config "$T/omni.conf" --json status bf >"$T/cli.json"
python3 - "$T/cli.json" "$T/body" <<'PY'
import json, sys
cli, api = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert cli["converted"] == api["converted"] and cli["revenue"] == api["revenue"], (cli, api)
PY
"$OMNI_BUILD/omnicast" --config "$T/omni.conf" status bf >"$T/cli.txt"
q -E '^  converted +2$' "$T/cli.txt" && q -E '^  revenue +33.50 EUR$' "$T/cli.txt" || fail "status table: $(cat "$T/cli.txt")"
n=$(rraw XRANGE omni:conversations - + | grep -c '"conversation.converted"' || true)
[ "$n" = 14 ] || fail "conversation.converted published $n times (want 14)"
rraw XRANGE omni:conversations - + | grep '"conversation.converted"' | grep "\"conversation_id\":\"$cv1\"" | q '"value":"12.50"' || fail "event payload"
ok "GET /v1/campaigns/bf and omnicast status show converted 2 and revenue {EUR 33.50, USD 5.00}; 14 conversation.converted events"

# ---- no Redis: 503
stop_redis
[ "$(conv_post "$cv1" '{"value":1,"currency":"EUR"}')" = 503 ] || fail "without Redis: $(cat "$T/body")"
ok "without Redis: 503"
restart_redis
wait_for 20 curl -sf "$B/readyz"
stop_daemon
check_logs_clean
