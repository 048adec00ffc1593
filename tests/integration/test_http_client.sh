#!/bin/bash
# The two HTTP clients end to end against the mock provider: the native
# HTTP/1.1 client pipelining many requests over a capped number of
# keep-alive connections (every answer matched to its own request, a
# connection closed by the peer mid-pipeline costs nothing but a retry),
# and libcurl for a connector that asks for it (http_client = curl), and
# for https: a private CA trusted through tls_ca_file, certificates verified.
source "$(dirname "$0")/lib.sh"

start_redis
# the mock drops the connection (no answer) on the first request to one
# recipient: it and whatever was written behind it on that connection may
# have been processed: uncertain, never written again (RFC 9112 9.3.1);
# and every 40th answer says Connection: close: what was pipelined behind it
# was not processed and goes out again on another connection, once
start_mock prov --fail-plan "close:to=15550000150:first=1,status=503:every=25,connclose:every=40"
# a receiver that waits a second before reading: a big request fills the
# socket buffers and the native client must wait for the socket to drain
/usr/bin/python3 "$OMNI_SRC/tests/mock/slow_reader.py" --port-file "$T/slow.port" \
  --record "$T/slow.txt" >"$T/slow.log" 2>&1 &
PIDS+=($!)
wait_for 20 test -s "$T/slow.port"
SLOW_PORT=$(cat "$T/slow.port")
# https in front of the same mock: a self-signed certificate for 127.0.0.1
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null ||
  fail "openssl could not make a certificate"
/usr/bin/python3 "$OMNI_SRC/tests/mock/tls_proxy.py" --cert "$T/cert.pem" --key "$T/key.pem" \
  --backend "$MOCK_PORT" --port-file "$T/tls.port" >"$T/tls.log" 2>&1 &
PIDS+=($!)
wait_for 20 test -s "$T/tls.port"
TLS_PORT=$(cat "$T/tls.port")
daemon_conf "$T/omni.conf" "
max_attempts = 5
max_job_bytes = 16777216
max_host_connections = 2
max_total_connections = 4
tls_ca_file = $T/cert.pem
$(wa_section "$MOCK_PORT" "pipeline = 8
max_inflight = 64")

[connector.sms]
type = twilio
api_base = http://127.0.0.1:$MOCK_PORT
account_sid = AC0123
auth_token = tok3n
from = +15551230000
http_client = curl

[connector.hook]
type = webhook
url = http://localhost:$MOCK_PORT/hook

[connector.big]
type = webhook
url = http://127.0.0.1:$SLOW_PORT/big
timeout_ms = 20000

[connector.secure]
type = webhook
url = https://127.0.0.1:$TLS_PORT/secure
# ALPN without h2 at this front: the native HTTP/1.1 client over TLS
http2 = true

[connector.wrongname]
type = webhook
url = https://localhost:$TLS_PORT/wrongname

[channels]
whatsapp = wa
sms = sms
hook = hook
big = big
secure = secure
wrongname = wrongname"
start_daemon "$T/omni.conf"

fill_list pipe:list 600
enqueue '{"type":"broadcast","id":"piped","channel":"whatsapp","message":{"text":"Hi {{name}}"},"recipients_list":"pipe:list"}'
enqueue '{"type":"broadcast","id":"bycurl","channel":"sms","message":{"text":"Oi {{name|amigo}}"},"recipients":[{"to":"+15550000001"},{"to":"+15550000002"},{"to":"+15550000003"}]}'
wait_for 90 campaign_done piped
enqueue '{"type":"broadcast","id":"byname","channel":"hook","message":{"text":"ping"},"recipients":[{"to":"user-1"}]}'
wait_for 60 campaign_done bycurl
wait_for 60 campaign_done byname
python3 -c 'import json,sys; sys.stdout.write(json.dumps({"type":"broadcast","id":"bigbody","channel":"big","message":{"text":"x"*6000000},"recipients":[{"to":"u1"}]}))' >"$T/big.json"
redis-cli -p "$REDIS_PORT" -x XADD omni:jobs '*' job <"$T/big.json" >/dev/null
wait_for 60 campaign_done bigbody
enqueue '{"type":"broadcast","id":"tls","channel":"secure","message":{"text":"s"},"recipients":[{"to":"u1"},{"to":"u2"}]}'
enqueue '{"type":"broadcast","id":"tlsname","channel":"wrongname","message":{"text":"w"},"recipients":[{"to":"u1"}]}'
wait_for 60 campaign_done tls
wait_for 60 campaign_done tlsname

unc=$(campaign_field piped uncertain)
# the drop makes 1 to 8 uncertain (what was pipelined on its connection).
# The mock (evhttp) closes at once after a Connection: close answer, without
# the lingering close RFC 9112 9.6 asks for: requests that arrive after its
# last read make the kernel send a reset, which may discard the answer
# before the client read it (a loaded machine loses that race now and
# then: 21 uncertain once, at load 10): then what was pipelined there is
# rightly uncertain too. A client that failed to write again what a read
# Connection: close answer left unanswered would leave ~7 uncertain at
# each of the ~15 such answers: far above 40.
[ "$(campaign_field piped sent)" = $((600 - unc)) ] && [ "$unc" -ge 1 ] && [ "$unc" -le 40 ] || fail "pipelined: sent=$(campaign_field piped sent) $(rraw HGETALL omni:campaign:piped | tr '\n' ' ')"
counters_add_up piped || fail "pipelined: counters"
# every recipient reached the provider with its own text, and each message
# record holds the provider id the mock gave that very request
rraw HGETALL omni:msg:piped | paste - - | grep '"uncertain"' | sed 's/^whatsapp:+1555\([0-9]*\).*/\1/' >"$T/unc.txt"
python3 - "$T/prov.jsonl" "$T/unc.txt" <<'PY' || fail "pipelined: what the provider saw"
import json, sys
unc = {int(x) for x in open(sys.argv[2]).read().split()}
seen = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if not r["path"].endswith("/messages"):
        continue
    b = json.loads(r["body"])
    i = int(b["to"][-7:])
    assert b["text"]["body"] == "Hi User%d" % i, b
    seen[i] = seen.get(i, 0) + 1
# an uncertain one may never have been read (written behind the dropped
# request); it must not have been read twice
missing = [i for i in range(1, 601) if i not in seen and i not in unc]
assert not missing, missing[:10]
assert all(seen.get(i, 0) <= 1 for i in unc), [(i, seen.get(i)) for i in unc]
# sent once each, except the dropped one and the 503s (retried by design):
# the mock answers every 25th request it sees with 503, counting every
# request (the other campaigns' and the re-sends too)
total = sum(1 for _ in open(sys.argv[1]))
twice = [i for i, k in seen.items() if k > 1]
assert len(twice) <= total // 25 + 2, (total, twice)
PY
# each message record holds the provider id the mock gave that very request
# (the mock's ids carry the recipient: an answer matched to another request
# would show here)
rraw HGETALL omni:msg:piped | python3 -c '
import json, sys
lines = sys.stdin.read().split("\n")
n = 0
for f, v in zip(lines[0::2], lines[1::2]):
    if not f.startswith("whatsapp:"):
        continue
    r = json.loads(v)
    n += 1
    if f == "whatsapp:+15550000150" or r["state"] == "uncertain":
        # the dropped request, and what was written behind it: never resent
        assert r["state"] == "uncertain" and r["reason"] == "ambiguous_reset", (f, r)
        continue
    assert r["state"] == "sent", (f, r)
    assert r["provider_id"].endswith("." + f[len("whatsapp:+"):]), (f, r)
assert n == 600, n
' || fail "records and provider ids"
ok "native client: 600 sends pipelined over 2 connections, answers matched; a dropped connection left $unc uncertain, none resent"

[ "$(campaign_field bycurl sent)" = 3 ] || fail "curl: sent=$(campaign_field bycurl sent)"
[ "$(recorded_tos "$T/prov.jsonl" | sort -u | grep -c '^+1555000000[123]$')" = 3 ] || fail "curl: provider saw"  # (a 503 of the fail plan may hit one: retried)
ok "libcurl client (http_client = curl): Twilio with basic auth"

[ "$(campaign_field byname sent)" = 1 ] || fail "a host name (localhost, resolved by evdns from /etc/hosts): sent=$(campaign_field byname sent)"
q '"path":"/hook"' "$T/prov.jsonl" || fail "the webhook did not reach the mock"
ok "native client resolves host names (localhost through evdns and /etc/hosts)"

[ "$(campaign_field bigbody sent)" = 1 ] || fail "big body: $(rraw HGETALL omni:campaign:bigbody | tr '\n' ' ')"
[ "$(head -1 "$T/slow.txt")" -gt 6000000 ] || fail "big body: the receiver got $(cat "$T/slow.txt")"
ok "a 6 MB request to a receiver that reads late: sent whole once the socket drains"

[ "$(campaign_field tls sent)" = 2 ] || fail "https: $(rraw HGETALL omni:campaign:tls | tr '\n' ' ')"
# each of the two accepted once; any other request to /secure is one the
# mock's every-25th 503 refused (retried by design: the count of requests
# before these, resends included, decides which ones it hits)
python3 - "$T/prov.jsonl" <<'PY' || fail "https: what the mock saw at /secure: $(grep '"path":"/secure"' "$T/prov.jsonl" | head -5)"
import collections, json, sys
sec = [json.loads(l) for l in open(sys.argv[1]) if '"path":"/secure"' in l]
ok = collections.Counter(json.loads(r["body"])["to"] for r in sec if 200 <= r["status"] < 300)
assert ok == {"u1": 1, "u2": 1}, ok
assert all(r["status"] == 503 for r in sec if not 200 <= r["status"] < 300), [r["status"] for r in sec]
PY
# the certificate names 127.0.0.1 only: through "localhost" it is refused,
# nothing reaches the provider, the attempts run out
[ "$(campaign_field tlsname failed)" = 1 ] || fail "wrong name: $(rraw HGETALL omni:campaign:tlsname | tr '\n' ' ')"
! grep -q '"path":"/wrongname"' "$T/prov.jsonl" || fail "a certificate for another name was accepted"
ok "https (http2 = true at a front without h2: served over HTTP/1.1): a private CA trusted with tls_ca_file, the host name verified"

# the connection cap held: requests on more than 2 connections at once
# never reached the mock (a connection's life: its first to its last
# request, to the millisecond: a close and an open in the same millisecond
# count as one after the other; one of slack)
[ "$(python3 - "$T/prov.jsonl" <<'PY'
import json, sys
life = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["path"].endswith("/messages"):
        a, b = life.get(r["peer_port"], (r["ts_ms"], r["ts_ms"]))
        life[r["peer_port"]] = (min(a, r["ts_ms"]), max(b, r["ts_ms"]))
edges = sorted([(a, 1) for a, b in life.values()] + [(b, -1) for a, b in life.values()], key=lambda e: (e[0], e[1]))
cur = peak = 0
for t, d in edges:
    cur += d
    peak = max(peak, cur)
if peak > 3:
    for port, (a, b) in sorted(life.items(), key=lambda kv: kv[1]):
        print("port %s: %d..%d" % (port, a, b), file=sys.stderr)
print(peak)
PY
)" -le 3 ] || fail "more connections at once than the cap"
ok "connection cap respected (connections closed by the peer replaced in turn)"

# with a proxy in the environment every transfer goes through libcurl, which
# honours it: pointed at a port where nothing listens, the send fails there
# and never reaches the mock directly
stop_daemon
dead=$(free_port)
before=$(recorded_tos "$T/prov.jsonl" | grep -c '^15559999999$' || true)
http_proxy="http://127.0.0.1:$dead" start_daemon "$T/omni.conf" proxied
enqueue '{"type":"broadcast","id":"viaproxy","channel":"whatsapp","message":{"text":"x"},"recipients":[{"to":"+15559999999"}]}'
wait_for 60 campaign_done viaproxy
[ "$(campaign_field viaproxy failed)" = 1 ] && [ "$(campaign_field viaproxy sent)" = 0 ] ||
  fail "with http_proxy set: $(rraw HGETALL omni:campaign:viaproxy | tr '\n' ' ')"
[ "$(recorded_tos "$T/prov.jsonl" | grep -c '^15559999999$' || true)" = "$before" ] ||
  fail "with http_proxy set the native client went around the proxy"
ok "http_proxy in the environment: transfers go through libcurl and its proxy"
