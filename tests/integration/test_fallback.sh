#!/bin/bash
# Fallback that follows delivery (issue 18 point 6), against the mock
# provider: a [whatsapp, sms] campaign whose WhatsApp messages were accepted
# gets failed statuses (131026) for some: exactly those reach the SMS
# provider, once each; a 131050 failed status suppresses and sends no SMS;
# with fallback_after_s = 8 and delivered/read statuses for some, only the
# others reach SMS, and only after the time; the campaigns end done with
# counters (overall, per channel, fallback) that match the provider's
# counts; a cancelled campaign's failed status moves nothing. The CLI and
# the API show the per-channel counters.
# (Each job carries a template for WhatsApp and text for SMS: a WhatsApp
# broadcast needs a template.)
source "$(dirname "$0")/lib.sh"

start_redis
start_mock prov
HTTP_PORT=$(free_port)
echo "t0ken-fb" >"$T/tokens"
chmod 600 "$T/tokens"
daemon_conf "$T/omni.conf" "
http_listen = 127.0.0.1:$HTTP_PORT
api_tokens_file = $T/tokens
$(wa_section "$MOCK_PORT")

[connector.sms]
type = twilio
api_base = http://127.0.0.1:$MOCK_PORT
account_sid = AC1
auth_token = twtoken
from = +15551230000

[channels]
whatsapp = wa
sms = sms"
start_daemon "$T/omni.conf"
B="http://127.0.0.1:$HTTP_PORT"
wait_for 20 curl -sf "$B/readyz"
J="$T/prov.jsonl"

# wa_status CAMPAIGN NUMBER:STATUS[:CODE] ...: post one webhook with a status
# per argument for the messages the campaign sent to +NUMBER on whatsapp
# (one python and one curl: the machine may be slow, the timing tests count)
wa_status() {
  python3 - "$REDIS_PORT" "$T/sbody" "$@" <<'PY' || fail "status body for $*"
import hashlib, hmac, json, subprocess, sys
port, out, c = sys.argv[1], sys.argv[2], sys.argv[3]
kv = subprocess.run(["redis-cli", "-p", port, "--raw", "HGETALL", "omni:msg:" + c],
                    capture_output=True, text=True).stdout.split("\n")
recs = dict(zip(kv[0::2], kv[1::2]))
sts = []
for a in sys.argv[4:]:
    n, st, *code = a.split(":")
    pid = json.loads(recs["whatsapp:+" + n])["provider_id"]
    s = {"id": pid, "status": st, "timestamp": "1700000000", "recipient_id": n}
    if code:
        s["errors"] = [{"code": int(code[0]), "title": "mock error %s" % code[0]}]
    sts.append(s)
body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [
    {"field": "messages", "value": {"messaging_product": "whatsapp", "metadata": {
        "display_phone_number": "15551230000", "phone_number_id": "1234567890"},
        "statuses": sts}}]}]}).encode()
open(out, "wb").write(body)
open(out + ".sig", "w").write("sha256=" + hmac.new(b"appsecret", body, hashlib.sha256).hexdigest())
PY
  local code
  code=$(curl -s -m 10 -o "$T/wbody" -w '%{http_code}' -H "Content-Type: application/json" \
    -H "X-Hub-Signature-256: $(cat "$T/sbody.sig")" --data-binary @"$T/sbody" "$B/webhooks/wa")
  [ "$code" = 200 ] || fail "status post: $code $(cat "$T/wbody")"
}
# sms_tos PREFIX: the numbers the SMS provider accepted, starting with
# PREFIX, "number count" per line, sorted
sms_tos() {
  python3 - "$J" "$1" <<'PY'
import sys
import json, urllib.parse, collections
c = collections.Counter()
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["path"].endswith("/Messages.json") and 200 <= r.get("status", 200) < 300:
        to = urllib.parse.parse_qs(r.get("body") or "")["To"][0].lstrip("+")
        if to.startswith(sys.argv[2]):
            c[to] += 1
for to in sorted(c):
    print(to, c[to])
PY
}
# provider_counts PREFIX: "whatsapp-accepted sms-accepted" for numbers
# starting with PREFIX
provider_counts() {
  python3 - "$J" "$1" <<'PY'
import json, sys, urllib.parse
wa = sms = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    if not 200 <= r.get("status", 200) < 300:
        continue
    b = r.get("body") or ""
    if r["path"].endswith("/messages") and json.loads(b)["to"].startswith(sys.argv[2]):
        wa += 1
    elif r["path"].endswith("/Messages.json") and urllib.parse.parse_qs(b)["To"][0].lstrip("+").startswith(sys.argv[2]):
        sms += 1
print(wa, sms)
PY
}
rcpts() { # FIRST LAST: inline recipients +155500000FIRST..LAST
  python3 -c 'import json,sys; print(json.dumps([{"to":"+1555000%04d" % i} for i in range(int(sys.argv[1]), int(sys.argv[2]) + 1)]))' "$1" "$2"
}

# ---- failed statuses after sending: exactly those reach SMS, once each
enqueue "{\"type\":\"broadcast\",\"id\":\"fa\",\"channels\":[\"whatsapp\",\"sms\"],\"message\":{\"text\":\"hi\",\"template\":{\"name\":\"promo\"}},\"recipients\":$(rcpts 100 109)}"
wait_for 30 campaign_done fa
[ "$(campaign_field fa sent)" = 10 ] && [ "$(campaign_field fa sent:whatsapp)" = 10 ] ||
  fail "fa before statuses: $(rraw HGETALL omni:campaign:fa | tr '\n' ' ')"
[ -z "$(sms_tos 1555000010)" ] || fail "SMS before any status: $(sms_tos 1555000010)"
wa_status fa 15550000100:failed:131026 15550000101:failed:131026 15550000102:failed:131026 \
  15550000103:failed:131050 15550000104:delivered
# a replayed failed status moves nothing twice
wa_status fa 15550000100:failed:131026
wait_for 30 sh -c "[ \"\$(redis-cli -p $REDIS_PORT --raw HGET omni:campaign:fa sent:sms)\" = 3 ]"
wait_for 30 campaign_done fa
want=$'15550000100 1\n15550000101 1\n15550000102 1'
[ "$(sms_tos 1555000010)" = "$want" ] || fail "SMS provider got: $(sms_tos 1555000010)"
[ "$(msg_field fa whatsapp:+15550000100 fell)" = failed_status ] || fail "record: $(rraw HGET omni:msg:fa whatsapp:+15550000100)"
[ "$(msg_field fa sms:+15550000100 state)" = sent ] || fail "sms record: $(rraw HGET omni:msg:fa sms:+15550000100)"
[ -z "$(rraw HGET omni:msg:fa sms:+15550000103)" ] || fail "the opted-out recipient fell back"
[ "$(rraw SISMEMBER omni:suppress:whatsapp +15550000103)" = 1 ] || fail "131050 status did not suppress"
read -r pwa psms < <(provider_counts 1555000010)
[ "$pwa $psms" = "10 3" ] || fail "provider counts: $pwa $psms"
python3 - <<PY || fail "fa counters: $(rraw HGETALL omni:campaign:fa | tr '\n' ' ')"
import subprocess
kv = subprocess.run(["redis-cli", "-p", "$REDIS_PORT", "--raw", "HGETALL", "omni:campaign:fa"], capture_output=True, text=True).stdout.split("\n")
h = dict(zip(kv[0::2], kv[1::2]))
g = lambda k: int(h.get(k, 0))
assert g("total") == 10 and g("sent") == 10 and g("failed") == 0, h
assert g("sent") + g("failed") + g("suppressed") + g("uncertain") + g("cancelled") == g("total"), h
assert g("sent:whatsapp") == $pwa and g("sent:sms") == $psms, h
assert g("fallback") == 3 and g("failed:whatsapp") == 4 and g("failed_after_send") == 4, h
assert g("delivered") == 1 and g("delivered:whatsapp") == 1 and g("opted_out") == 1, h
assert g("awaiting") == 0, h
PY
ok "failed statuses (131026) move exactly those recipients to SMS, once each; 131050 suppresses, no SMS; counters match the provider (whatsapp $pwa, sms $psms, fallback 3)"

# ---- fallback_after_s = 8: delivered/read settle, the others move on after the time
enqueue "{\"type\":\"broadcast\",\"id\":\"fb\",\"channels\":[\"whatsapp\",\"sms\"],\"fallback_after_s\":8,\"message\":{\"text\":\"hi\",\"template\":{\"name\":\"promo\"}},\"recipients\":$(rcpts 200 207)}"
wait_for 30 sh -c "[ \"\$(redis-cli -p $REDIS_PORT --raw HGET omni:campaign:fb sent:whatsapp)\" = 8 ]"
t_sent=$SECONDS
[ "$(campaign_field fb awaiting)" = 8 ] || fail "awaiting: $(campaign_field fb awaiting)"
[ "$(rraw ZCARD omni:watch)" = 8 ] || fail "omni:watch: $(rraw ZRANGE omni:watch 0 -1 | tr '\n' ' ')"
wa_status fb 15550000200:delivered 15550000201:delivered 15550000202:delivered 15550000203:read \
  15550000204:failed:131026
[ "$(campaign_field fb awaiting)" = 3 ] || fail "awaiting after statuses: $(campaign_field fb awaiting)"
[ "$(campaign_field fb state)" = running ] || fail "finished while messages are watched: $(campaign_field fb state)"
curl -sf -H "Authorization: Bearer t0ken-fb" "$B/v1/campaigns/fb" >"$T/mid.json" || fail "GET /v1/campaigns/fb"
python3 -c 'import json,sys; c = json.load(open(sys.argv[1])); assert c["awaiting"] >= 3 and c["pending"] >= 3, c' "$T/mid.json" ||
  fail "pending while awaiting: $(cat "$T/mid.json")"
# the failed one at once; the three unconfirmed ones only after the 8 s
wait_for 20 sh -c "[ \"\$(redis-cli -p $REDIS_PORT --raw HGET omni:campaign:fb sent:sms)\" -ge 1 ] 2>/dev/null"
# (the gaps measured on the provider's side below are the real check)
[ "$(sms_tos 155500002)" = "15550000204 1" ] || [ $((SECONDS - t_sent)) -ge 7 ] ||
  fail "SMS before the time: $(sms_tos 155500002)"
wait_for 40 campaign_done fb
want=$'15550000204 1\n15550000205 1\n15550000206 1\n15550000207 1'
[ "$(sms_tos 155500002)" = "$want" ] || fail "SMS provider got: $(sms_tos 155500002)"
python3 - "$J" <<'PY' || fail "fallback_after_s timing"
import json, sys, urllib.parse
wa, sms = {}, {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    b = r.get("body") or ""
    if r["path"].endswith("/messages"):
        wa[json.loads(b)["to"]] = r["ts_ms"]
    elif r["path"].endswith("/Messages.json"):
        sms[urllib.parse.parse_qs(b)["To"][0].lstrip("+")] = r["ts_ms"]
for n in ("15550000205", "15550000206", "15550000207"):
    gap = sms[n] - wa[n]
    print("%s: SMS %d ms after WhatsApp" % (n, gap))
    assert 7900 <= gap <= 20000, (n, gap)
PY
[ "$(msg_field fb whatsapp:+15550000205 fell)" = no_delivery ] || fail "record: $(rraw HGET omni:msg:fb whatsapp:+15550000205)"
[ "$(msg_field fb whatsapp:+15550000204 fell)" = failed_status ] || fail "record: $(rraw HGET omni:msg:fb whatsapp:+15550000204)"
read -r pwa psms < <(provider_counts 155500002)
[ "$pwa $psms" = "8 4" ] || fail "provider counts: $pwa $psms"
[ "$(rraw ZCARD omni:watch)" = 0 ] || fail "omni:watch left: $(rraw ZRANGE omni:watch 0 -1 | tr '\n' ' ')"
curl -sf -H "Authorization: Bearer t0ken-fb" "$B/v1/campaigns/fb" >"$T/api.json" || fail "GET /v1/campaigns/fb"
"$OMNI_BUILD/omnicast" --config "$T/omni.conf" --json status fb >"$T/cli.json" || fail "status --json fb"
python3 - "$T/api.json" "$T/cli.json" "$pwa" "$psms" <<'PY' || fail "fb counters: $(cat "$T/api.json")"
import json, sys
a, c = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
pwa, psms = int(sys.argv[3]), int(sys.argv[4])
assert a == c, (a, c)
assert a["state"] == "done" and a["total"] == 8 and a["sent"] == 8 and a["pending"] == 0, a
assert a["fallback"] == 4 and a["awaiting"] == 0, a
for k in ("sent:whatsapp", "sent:sms", "failed:whatsapp", "delivered:whatsapp", "read:whatsapp", "fallback", "awaiting"):
    assert type(a[k]) is int, (k, a[k])
assert a["sent:whatsapp"] == pwa and a["sent:sms"] == psms, a
assert a["channels"]["whatsapp"] == {"sent": pwa, "failed": 1, "delivered": 4, "read": 1}, a["channels"]
assert a["channels"]["sms"] == {"sent": psms, "failed": 0, "delivered": 0, "read": 0}, a["channels"]
assert a["delivered"] == 4 and a["read"] == 1, a
PY
"$OMNI_BUILD/omnicast" --config "$T/omni.conf" status fb >"$T/table" || fail "status fb"
q -E '^  fallback +4$' "$T/table" && q -E '^  whatsapp +sent 8, failed 1, delivered 4, read 1$' "$T/table" &&
  q -E '^  sms +sent 4, failed 0, delivered 0, read 0$' "$T/table" || fail "status table: $(cat "$T/table")"
ok "fallback_after_s 8: delivered/read settle, a failed status moves at once, the 3 unconfirmed reach SMS after >= 8 s; done, counters match the provider (API = CLI)"

# ---- a cancelled campaign: its failed status moves nothing
enqueue "{\"type\":\"broadcast\",\"id\":\"fc\",\"channels\":[\"whatsapp\",\"sms\"],\"fallback_after_s\":600,\"message\":{\"text\":\"hi\",\"template\":{\"name\":\"promo\"}},\"recipients\":$(rcpts 300 301)}"
wait_for 30 sh -c "[ \"\$(redis-cli -p $REDIS_PORT --raw HGET omni:campaign:fc sent:whatsapp)\" = 2 ]"
[ "$(campaign_field fc state)" = running ] || fail "fc: $(campaign_field fc state)"
enqueue '{"type":"cancel","id":"fc"}'
wait_for 20 campaign_done fc cancelled
wa_status fc 15550000300:failed:131026
sleep 2
[ -z "$(sms_tos 155500003)" ] || fail "a cancelled campaign fell back: $(sms_tos 155500003)"
[ -z "$(campaign_field fc fallback)" ] && [ "$(campaign_field fc sent)" = 2 ] && [ -z "$(rraw ZSCORE omni:retry 'fc|0|1')" ] ||
  fail "fc: $(rraw HGETALL omni:campaign:fc | tr '\n' ' ')"
curl -sf -H "Authorization: Bearer t0ken-fb" "$B/v1/campaigns/fc" >"$T/fc.json" || fail "GET /v1/campaigns/fc"
python3 -c 'import json,sys; c = json.load(open(sys.argv[1])); assert c["state"] == "cancelled" and c["awaiting"] == 1 and c["pending"] == 0, c' "$T/fc.json" ||
  fail "a cancelled campaign's watched message counted pending: $(cat "$T/fc.json")"
ok "a cancelled campaign's failed status moves nothing"

stop_daemon
check_logs_clean
ok "test_fallback"
