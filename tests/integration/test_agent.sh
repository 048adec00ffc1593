#!/bin/bash
# Agents in conversations (issue 20 points 1 and 2), against real Redis and
# the mock provider: a broadcast, a reply opens a conversation attributed to
# it whose log starts with the campaign message answered (rendered text,
# provider id); an agent's message (POST /v1/conversations/{id}/messages,
# omnicast conversation send) is a message job, not a campaign (not listed,
# never attributed); the log and omni:conversations follow it (queued, sent
# with the provider id, delivered, read, failed with the reason); after the
# conversation is closed the next reply, even one quoting the agent's
# message, opens a conversation attributed to the broadcast. A failed agent
# message (the provider's error, outside the customer service window) ends
# failed in the log with message.failed. Closed → 409, unknown → 404.
source "$(dirname "$0")/lib.sh"

start_redis
# every send to +15550000009 fails with WhatsApp's 131026 (undeliverable)
start_mock prov --fail-plan "wa_code=131026:to=15550000009"
HTTP_PORT=$(free_port)
printf 'tok-agent-0123456789\n' >"$T/tokens"
chmod 0600 "$T/tokens"
daemon_conf "$T/omni.conf" "
http_listen = 127.0.0.1:$HTTP_PORT
api_tokens_file = $T/tokens

$(wa_section "$MOCK_PORT" "session_window_s = 86400")

[channels]
whatsapp = wa"
start_daemon "$T/omni.conf"
B="http://127.0.0.1:$HTTP_PORT"
wait_for 20 curl -sf "$B/readyz"
AUTH="Authorization: Bearer tok-agent-0123456789"
api() { curl -s -m 10 -o "$T/body" -w '%{http_code}' -H "$AUTH" "$@"; }
OC=("$OMNI_BUILD/omnicast" --redis "redis://127.0.0.1:$REDIS_PORT/0")
J="$T/prov.jsonl"

reply_payload() { # FROM ID TEXT [CONTEXT_ID]
  local ctx=""
  [ -n "${4:-}" ] && ctx=",\"context\":{\"from\":\"15551230000\",\"id\":\"$4\"}"
  printf "$WA_HEAD"'"contacts":[{"profile":{"name":"Ana"},"wa_id":"%s"}],"messages":[{"from":"%s","id":"%s","timestamp":"1700000001","type":"text","text":{"body":"%s"}%s}]'"$WA_TAIL" \
    messages "$1" "$1" "$2" "$3" "$ctx"
}
status_payload() { # WAMID STATE RECIPIENT
  printf "$WA_HEAD"'"statuses":[{"id":"%s","status":"%s","timestamp":"1700000000","recipient_id":"%s"}]'"$WA_TAIL" \
    messages "$1" "$2" "$3"
}
# events of one type on omni:conversations, one JSON a line
events() { # TYPE
  rraw XRANGE omni:conversations - + | python3 -c '
import json, sys
lines = sys.stdin.read().split("\n")
for i, l in enumerate(lines):
    if l == "data" and i + 1 < len(lines):
        e = json.loads(lines[i + 1])
        if e.get("type") == sys.argv[1]:
            print(json.dumps(e, sort_keys=True))
' "$1"
}
# the conversation as GET /v1/conversations/{id} answers it, into $T/conv.json
get_conv() { # ID
  [ "$(api "$B/v1/conversations/$1")" = 200 ] || fail "GET conversation $1: $(cat "$T/body")"
  cp "$T/body" "$T/conv.json"
}
# what the provider got for one number: TYPE and the text or template name
seen_by_provider() { # DIGITS
  python3 - "$J" "$1" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["path"].endswith("/messages"):
        m = json.loads(r.get("body") or "{}")
        if m.get("to") == sys.argv[2]:
            print(m["type"], m["text"]["body"] if m["type"] == "text" else m["template"]["name"])
PY
}

# ---- the broadcast (a template on WhatsApp, the text beside it)
code=$(api -d '{"type":"broadcast","id":"promo","channel":"whatsapp","message":{"text":"Hi {{name}}, 30% off today","template":{"name":"promo_tpl","params":["{{name}}"]}},"recipients":[{"to":"+15550000001","vars":{"name":"Ana"}},{"to":"+15550000002","vars":{"name":"Bo"}}]}' "$B/v1/broadcasts")
[ "$code" = 202 ] || fail "broadcast: $code $(cat "$T/body")"
wait_for 30 campaign_done promo
w1=$(msg_field promo whatsapp:+15550000001 provider_id)
w2=$(msg_field promo whatsapp:+15550000002 provider_id)
[ -n "$w1" ] && [ -n "$w2" ] || fail "no provider ids"

# ---- Ana replies (no quote): a conversation attributed to promo, the
# campaign message it answers first in its log
[ "$(post_wa "$(reply_payload 15550000001 wamid.IN1 "Interested!")")" = 200 ] || fail "reply webhook"
cv=$(rraw HGET omni:contact:whatsapp:+15550000001 open_conv)
[ -n "$cv" ] && [ "$(rraw HGET omni:conv:$cv campaign)" = promo ] || fail "conversation not attributed to promo: '$cv'"
get_conv "$cv"
python3 - "$T/conv.json" "$w1" <<'PY' || fail "the campaign message is not the first entry: $(cat "$T/conv.json")"
import json, sys
c = json.load(open(sys.argv[1]))
m = c["messages"]
assert len(m) == 2, m
first = m[0]
assert first["dir"] == "out" and first["kind"] == "campaign" and first["campaign"] == "promo", first
assert first["text"] == "Hi Ana, 30% off today" and first["rendered"] == 1, first
assert first["provider_id"] == sys.argv[2] and first["channel"] == "whatsapp", first
assert first["template"] == "promo_tpl" and isinstance(first["sent_at"], int), first
assert m[1]["dir"] == "in" and m[1]["text"] == "Interested!", m[1]
PY
ok "a reply opened $cv attributed to promo; its log starts with the campaign message (rendered text, provider id $w1)"

# ---- the agent answers: 202, a message job in the conversation
code=$(api -d '{"text":"Great! Your code is ANA30","id":"agent-1"}' "$B/v1/conversations/$cv/messages")
[ "$code" = 202 ] || fail "agent message: $code $(cat "$T/body")"
python3 -c 'import json,sys; b=json.load(open(sys.argv[1])); assert b == {"id":"agent-1","conversation_id":sys.argv[2],"status":"queued"}, b' "$T/body" "$cv" ||
  fail "answer: $(cat "$T/body")"
code=$(api -d '{"text":"Great! Your code is ANA30","id":"agent-1"}' "$B/v1/conversations/$cv/messages")
[ "$code" = 200 ] && q '"status":"exists"' "$T/body" || fail "the same id again: $code $(cat "$T/body")"
wait_for 30 campaign_done agent-1
[ "$(rraw HGET omni:campaign:agent-1 type)" = message ] || fail "not a message job"
rraw HGET omni:campaign:agent-1 spec | q "\"conversation_id\":\"$cv\"" || fail "no conversation_id in the job"
a1=$(msg_field agent-1 whatsapp:+15550000001 provider_id)
[ -n "$a1" ] || fail "agent message not sent: $(rraw HGET omni:msg:agent-1 whatsapp:+15550000001)"
[ "$(seen_by_provider 15550000001 | grep -c 'text Great! Your code is ANA30')" = 1 ] ||
  fail "the provider got: $(seen_by_provider 15550000001)"
# never attributed: the contact's last campaign is still the broadcast
[ "$(rraw HGET omni:contact:whatsapp:+15550000001 last_campaign)" = promo ] ||
  fail "last_campaign moved to $(rraw HGET omni:contact:whatsapp:+15550000001 last_campaign)"
wait_for 10 sh -c "redis-cli -p $REDIS_PORT --raw XRANGE omni:conversations - + | grep -q message.sent"
events message.sent | python3 -c '
import json, sys
ev = [json.loads(l) for l in sys.stdin if l.strip()]
e = [x for x in ev if x.get("message_id") == "agent-1"]
assert len(e) == 1, ev
e = e[0]
assert (e["conversation_id"], e["contact"], e["channel"], e["text"], e["provider_id"]) == (sys.argv[1], "+15550000001", "whatsapp", "Great! Your code is ANA30", sys.argv[2]), e
' "$cv" "$a1" || fail "message.sent: $(events message.sent)"
ok "POST /v1/conversations/$cv/messages → 202 queued (the same id → 200 exists); sent inside the window as text; message.sent with contact, channel, text, provider id; last_campaign stays promo"

# ---- delivered and read, as the provider posts them (its own "sent"
# status first: nothing more, outcome.lua logged the send)
[ "$(post_wa "$(status_payload "$a1" sent 15550000001)")" = 200 ] || fail "sent status"
[ "$(post_wa "$(status_payload "$a1" delivered 15550000001)")" = 200 ] || fail "delivered status"
[ "$(post_wa "$(status_payload "$a1" read 15550000001)")" = 200 ] || fail "read status"
[ "$(post_wa "$(status_payload "$w2" delivered 15550000002)")" = 200 ] || fail "broadcast status"
get_conv "$cv"
python3 - "$T/conv.json" "$a1" <<'PY' || fail "the agent message's status: $(cat "$T/conv.json")"
import json, sys
c = json.load(open(sys.argv[1]))
m = [x for x in c["messages"] if x.get("ref") == "agent-1"]
assert len(m) == 1, c["messages"]
m = m[0]
assert m["dir"] == "out" and m["kind"] == "agent" and m["text"] == "Great! Your code is ANA30", m
assert m["status"] == "read" and m["provider_id"] == sys.argv[2], m
assert [s["status"] for s in m["statuses"]] == ["sent", "delivered", "read"], m
assert not any(x.get("dir") == "status" for x in c["messages"]), c["messages"]
PY
[ "$(events message.sent | grep -c '"message_id": "agent-1"')" = 1 ] || fail "the provider's sent status published again: $(events message.sent)"
[ "$(events message.delivered | grep -c '"message_id": "agent-1"')" = 1 ] || fail "message.delivered: $(events message.delivered)"
[ "$(events message.read | grep -c "\"provider_id\": \"$a1\"")" = 1 ] || fail "message.read: $(events message.read)"
! events message.delivered | q '+15550000002' || fail "a broadcast recipient's status published as a conversation message"
ok "delivered and read statuses: the log shows the agent message read (sent, delivered, read), message.delivered and message.read published; a broadcast's status is not"

# ---- not campaigns: GET /v1/campaigns and omnicast campaigns
[ "$(api "$B/v1/campaigns")" = 200 ] || fail "GET /v1/campaigns: $(cat "$T/body")"
python3 -c 'import json,sys; ids=[c["id"] for c in json.load(open(sys.argv[1]))["campaigns"]]; assert ids == ["promo"], ids' "$T/body" ||
  fail "campaign list: $(cat "$T/body")"
"${OC[@]}" campaigns >"$T/campaigns.txt" || fail "omnicast campaigns"
grep -q '^promo ' "$T/campaigns.txt" && ! grep -q agent-1 "$T/campaigns.txt" || fail "omnicast campaigns: $(cat "$T/campaigns.txt")"
ok "the agent's message is listed by neither GET /v1/campaigns nor omnicast campaigns"

# ---- the CLI: omnicast conversation send
"${OC[@]}" --json conversation send "$cv" "Anything else, Ana?" >"$T/send.json" || fail "conversation send: exit $?"
cid=$(python3 -c 'import json,sys; b=json.load(open(sys.argv[1])); assert b["conversation_id"]==sys.argv[2] and b["status"]=="queued"; print(b["id"])' "$T/send.json" "$cv") ||
  fail "conversation send printed: $(cat "$T/send.json")"
wait_for 30 campaign_done "$cid"
wait_for 10 sh -c "[ \"\$(redis-cli -p $REDIS_PORT --raw XRANGE omni:conv:$cv:log - + | grep -c '^$cid\$')\" = 2 ]"
rraw HGET omni:campaign:$cid spec | q "\"conversation_id\":\"$cv\"" || fail "CLI job shape"
ok "omnicast conversation send queued $cid in $cv (the same job shape) and it was sent"

# ---- a reply quoting the agent's message stays in the open conversation
[ "$(post_wa "$(reply_payload 15550000001 wamid.IN2 "Thanks!" "$a1")")" = 200 ] || fail "reply 2"
[ "$(rraw HGET omni:contact:whatsapp:+15550000001 open_conv)" = "$cv" ] || fail "the reply left the conversation"
[ "$(rraw ZCARD omni:conv:all)" = 1 ] || fail "a second conversation opened"

# ---- bad bodies: 400 with the reason; closed: 409 for the API, exit 1
# for the CLI; unknown: 404; none of them queues anything
before=$(rraw XLEN omni:jobs)
for b in '{"txt":"x"}' '{}' '[1]' '{"text":"x","id":"a:b"}' '{"template":{"lang":"x"}}' 'not json'; do
  code=$(api -d "$b" "$B/v1/conversations/$cv/messages")
  [ "$code" = 400 ] && q '"invalid_job"' "$T/body" || fail "body $b: $code $(cat "$T/body")"
done
[ "$(api -X POST "$B/v1/conversations/$cv/close")" = 200 ] || fail "close"
code=$(api -d '{"text":"still there?"}' "$B/v1/conversations/$cv/messages")
[ "$code" = 409 ] && q '"conversation_closed"' "$T/body" || fail "closed: $code $(cat "$T/body")"
rc=0; "${OC[@]}" conversation send "$cv" "still there?" >/dev/null 2>"$T/err" || rc=$?
[ $rc = 1 ] || fail "CLI send into a closed conversation: exit $rc"
code=$(api -d '{"text":"hi"}' "$B/v1/conversations/cv999/messages")
[ "$code" = 404 ] || fail "unknown conversation: $code"
[ "$(rraw XLEN omni:jobs)" = "$before" ] || fail "a refused message reached the jobs stream"
ok "closed conversation → 409 conversation_closed (CLI exit 1); unknown → 404; bad bodies → 400 with the reason; nothing queued"

# ---- after close, the next reply (quoting the agent's message) opens a
# conversation attributed to the broadcast, not the agent's message
[ "$(post_wa "$(reply_payload 15550000001 wamid.IN3 "One more question" "$a1")")" = 200 ] || fail "reply 3"
cv2=$(rraw HGET omni:contact:whatsapp:+15550000001 open_conv)
[ -n "$cv2" ] && [ "$cv2" != "$cv" ] || fail "no new conversation"
[ "$(rraw HGET omni:conv:$cv2 campaign)" = promo ] || fail "the new conversation is attributed to '$(rraw HGET omni:conv:$cv2 campaign)'"
[ "$(rraw HGET omni:campaign:agent-1 replied)" = 0 ] && [ "$(rraw HGET omni:campaign:promo replied)" = 1 ] || fail "replied: agent-1 $(rraw HGET omni:campaign:agent-1 replied), promo $(rraw HGET omni:campaign:promo replied)"
get_conv "$cv2"
python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))["messages"]; assert m[0]["campaign"]=="promo" and m[0]["provider_id"]==sys.argv[2] and m[1]["text"]=="One more question", m' "$T/conv.json" "$w1" ||
  fail "the new conversation's log: $(cat "$T/conv.json")"
# an id of digits gets its statuses and stays a string (a reply of digits too)
[ "$(api -d '{"text":"Welcome back","id":"424242"}' "$B/v1/conversations/$cv2/messages")" = 202 ] || fail "424242: $(cat "$T/body")"
wait_for 30 campaign_done 424242
wait_for 10 sh -c "[ \"\$(redis-cli -p $REDIS_PORT --raw XRANGE omni:conv:$cv2:log - + | grep -c '^424242\$')\" = 2 ]"
get_conv "$cv2"
[ "$(post_wa "$(reply_payload 15550000001 wamid.IN4 "2")")" = 200 ] || fail "reply 4"
get_conv "$cv2"
python3 -c '
import json,sys
msgs = json.load(open(sys.argv[1]))["messages"]
m = [x for x in msgs if x.get("ref") == "424242"]
assert len(m) == 1 and m[0]["status"] == "sent", m
assert msgs[-1]["text"] == "2" and isinstance(msgs[-1]["at"], int), msgs[-1]' "$T/conv.json" ||
  fail "424242 and the reply 2 in the log: $(cat "$T/conv.json")"
# Bo (the second recipient) answers the broadcast: his own text, rendered
[ "$(post_wa "$(reply_payload 15550000002 wamid.INB "Me too" "$w2")")" = 200 ] || fail "Bo's reply"
get_conv "$(rraw HGET omni:contact:whatsapp:+15550000002 open_conv)"
python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))["messages"]; assert m[0]["text"]=="Hi Bo, 30% off today" and m[0]["provider_id"]==sys.argv[2], m' "$T/conv.json" "$w2" ||
  fail "Bo's conversation: $(cat "$T/conv.json")"
ok "after close, a reply quoting the agent's message opened $cv2 attributed to promo (the broadcast), its log starting with the promo message; Bo's starts with his own rendered text"

# ---- a failed agent message: the provider refuses it (131026)
[ "$(post_wa "$(reply_payload 15550000009 wamid.IN9 "hello?")")" = 200 ] || fail "reply 9"
cv9=$(rraw HGET omni:contact:whatsapp:+15550000009 open_conv)
[ -n "$cv9" ] || fail "no conversation for +15550000009"
[ "$(api -d '{"text":"Hello, how can we help?","id":"agent-9"}' "$B/v1/conversations/$cv9/messages")" = 202 ] || fail "agent-9: $(cat "$T/body")"
wait_for 30 campaign_done agent-9
[ "$(msg_field agent-9 whatsapp:+15550000009 state)" = failed ] || fail "agent-9: $(rraw HGET omni:msg:agent-9 whatsapp:+15550000009)"
wait_for 10 sh -c "redis-cli -p $REDIS_PORT --raw XRANGE omni:conversations - + | grep -q message.failed"
get_conv "$cv9"
python3 -c 'import json,sys; m=[x for x in json.load(open(sys.argv[1]))["messages"] if x.get("ref")=="agent-9"][0]; assert m["status"]=="failed" and m["reason"], m' "$T/conv.json" ||
  fail "agent-9 in the log: $(cat "$T/conv.json")"
events message.failed | python3 -c '
import json, sys
e = [json.loads(l) for l in sys.stdin if l.strip()]
e = [x for x in e if x["message_id"] == "agent-9"]
assert len(e) == 1 and e[0]["conversation_id"] == sys.argv[1] and e[0]["reason"] and e[0]["contact"] == "+15550000009" and e[0]["text"] == "Hello, how can we help?", e
' "$cv9" || fail "message.failed: $(events message.failed)"
ok "an agent message the provider refused: the log shows it failed with the reason, message.failed published"

# ---- the contact opts out in the conversation: the next agent message is
# suppressed, and ends failed (suppressed) in the log and the events
[ "$(post_wa "$(reply_payload 15550000009 wamid.IN9s "STOP")")" = 200 ] || fail "STOP"
[ "$(rraw SISMEMBER omni:suppress:whatsapp +15550000009)" = 1 ] || fail "not suppressed"
[ "$(api -d '{"text":"Sorry to see you go","id":"agent-9s"}' "$B/v1/conversations/$cv9/messages")" = 202 ] || fail "agent-9s: $(cat "$T/body")"
wait_for 30 campaign_done agent-9s
[ "$(campaign_field agent-9s suppressed)" = 1 ] || fail "agent-9s: $(rraw HGETALL omni:campaign:agent-9s)"
get_conv "$cv9"
python3 -c 'import json,sys; m=[x for x in json.load(open(sys.argv[1]))["messages"] if x.get("ref")=="agent-9s"][0]; assert m["status"]=="failed" and m["reason"]=="suppressed", m' "$T/conv.json" ||
  fail "agent-9s in the log: $(cat "$T/conv.json")"
events message.failed | grep '"message_id": "agent-9s"' | q '"reason": "suppressed"' || fail "message.failed suppressed: $(events message.failed)"
ok "an agent message to a contact who opted out: suppressed, failed (suppressed) in the log and message.failed"

# ---- outside the customer service window: a proactive template opens the
# conversation; the agent's text then fails outside_window, a template goes
code=$(api -d '{"type":"message","id":"proactive-5","channel":"whatsapp","message":{"template":{"name":"order_update"}},"to":"+15550000005"}' "$B/v1/messages")
[ "$code" = 202 ] || fail "proactive: $code $(cat "$T/body")"
cv5=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["conversation_id"])' "$T/body")
wait_for 30 campaign_done proactive-5
[ "$(api -d '{"text":"Any questions about your order?","id":"agent-5"}' "$B/v1/conversations/$cv5/messages")" = 202 ] || fail "agent-5: $(cat "$T/body")"
[ "$(api -d '{"template":{"name":"followup"},"id":"agent-5t"}' "$B/v1/conversations/$cv5/messages")" = 202 ] || fail "agent-5t: $(cat "$T/body")"
wait_for 30 campaign_done agent-5
wait_for 30 campaign_done agent-5t
[ "$(msg_field agent-5 whatsapp:+15550000005 error)" = outside_window ] || fail "agent-5: $(rraw HGET omni:msg:agent-5 whatsapp:+15550000005)"
[ "$(msg_field agent-5t whatsapp:+15550000005 state)" = sent ] || fail "agent-5t: $(rraw HGET omni:msg:agent-5t whatsapp:+15550000005)"
[ "$(seen_by_provider 15550000005)" = "$(printf 'template order_update\ntemplate followup')" ] || fail "provider got: $(seen_by_provider 15550000005)"
wait_for 10 sh -c "redis-cli -p $REDIS_PORT --raw XRANGE omni:conversations - + | grep -q agent-5t"
get_conv "$cv5"
python3 - "$T/conv.json" <<'PY' || fail "the proactive conversation's log: $(cat "$T/conv.json")"
import json, sys
m = {x.get("ref"): x for x in json.load(open(sys.argv[1]))["messages"]}
assert m["proactive-5"]["status"] == "sent" and m["proactive-5"]["provider_id"], m
assert m["agent-5"]["status"] == "failed" and m["agent-5"]["reason"] == "outside_window", m
assert m["agent-5t"]["status"] == "sent" and m["agent-5t"]["text"] == "followup", m
PY
events message.failed | q '"reason": "outside_window"' || fail "no message.failed outside_window"
events message.sent | python3 -c '
import json, sys
e = [json.loads(l) for l in sys.stdin if l.strip()]
p = [x for x in e if x["message_id"] == "proactive-5"]
assert len(p) == 1 and p[0]["contact"] == "+15550000005" and p[0]["provider_id"] and p[0]["template"] == "order_update", e
' || fail "proactive message.sent: $(events message.sent)"
ok "outside the window: the agent's text failed outside_window (log and message.failed), its template went out; the proactive message's message.sent carries contact and provider id"

# ---- no Redis: 503
stop_redis
code=$(api -d '{"text":"x"}' "$B/v1/conversations/$cv5/messages")
[ "$code" = 503 ] || fail "without Redis: $code $(cat "$T/body")"
ok "without Redis → 503"
check_logs_clean
