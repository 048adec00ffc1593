#!/bin/bash
# The native HTTP/2 client (connectors with http2 = true on https), against
# an HTTP/2 provider over TLS (tests/mock/h2_server.py), judged by what the
# provider processed: every recipient the daemon calls sent processed once;
# a GOAWAY's streams above its last stream and a REFUSED_STREAM written
# again and processed once; a reset after the body, a cut connection and an
# answer after the timeout recorded uncertain and never written again;
# SETTINGS_MAX_CONCURRENT_STREAMS = 1 respected; a server that does not
# choose h2 by ALPN served over HTTP/1.1. The metrics say which client
# carried the traffic.
source "$(dirname "$0")/lib.sh"

start_redis
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=omni-test-ca \
  -keyout "$T/ca.key" -out "$T/ca.pem" 2>/dev/null || fail "openssl: the CA"
openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout "$T/srv.key" -out "$T/srv.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$T/ext.cnf"
openssl x509 -req -in "$T/srv.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial -days 2 \
  -extfile "$T/ext.cnf" -out "$T/srv.pem" 2>/dev/null || fail "openssl: the server certificate"

h2_server() { # NAME ARGS...
  local name=$1; shift
  /usr/bin/python3 "$OMNI_SRC/tests/mock/h2_server.py" --cert "$T/srv.pem" --key "$T/srv.key" \
    --port-file "$T/$name.port" --record "$T/$name.jsonl" "$@" >"$T/$name.log" 2>&1 &
  PIDS+=($!)
  wait_for 20 test -s "$T/$name.port"
}
h2_server h2 --plan "refuse:to=15550000020,goaway:to=15550000050,rst:to=15550000130,close:to=15550000190,late:to=15550000260:ms=6000"
h2_server one --max-streams 1
# an HTTP/1.1-only TLS server: ALPN gives no h2, the origin goes to h1.c
/usr/bin/python3 "$OMNI_SRC/tests/mock/tls_server.py" --cert "$T/srv.pem" --key "$T/srv.key" \
  --mode length --port-file "$T/h1.port" --log "$T/h1.conns" >"$T/h1.log" 2>&1 &
PIDS+=($!)
wait_for 20 test -s "$T/h1.port"

# nginx over HTTP/2 (make deps installs nginx-light), reading each request
# body before it answers, logging it; and a second nginx server with TLS
# but without http2: nginx 1.22 ends a handshake whose ALPN offers nothing
# it speaks with a fatal no_application_protocol alert (RFC 7301 3.2)
NGINX_PORT=""
if command -v nginx >/dev/null; then
  NGINX_PORT=$(free_port)
  NGINX_H1_PORT=$(free_port)
  mkdir -p "$T/nginx"
  cat >"$T/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $T/nginx/nginx.pid;
error_log $T/nginx.log warn;
events { worker_connections 1024; }
http {
  log_format body '\$request_body';
  client_body_temp_path $T/nginx/body;
  proxy_temp_path $T/nginx/proxy;
  fastcgi_temp_path $T/nginx/fastcgi;
  uwsgi_temp_path $T/nginx/uwsgi;
  scgi_temp_path $T/nginx/scgi;
  server {
    listen 127.0.0.1:$NGINX_PORT ssl http2;
    ssl_certificate $T/srv.pem;
    ssl_certificate_key $T/srv.key;
    access_log $T/nginx/bodies.log body;
    location = /v21.0/3234567890/messages {
      mirror /_drain;
      mirror_request_body on;
      root $T/nginx/none;
      error_page 403 404 405 = @answer;
    }
    location = /_drain { internal; return 204; }
    location @answer {
      default_type application/json;
      return 200 '{"messaging_product":"whatsapp","messages":[{"id":"wamid.NGINX"}]}';
    }
  }
  server {
    listen 127.0.0.1:$NGINX_H1_PORT ssl;
    ssl_certificate $T/srv.pem;
    ssl_certificate_key $T/srv.key;
    access_log $T/nginx/h1bodies.log body;
    location = /hook {
      mirror /_drain;
      mirror_request_body on;
      root $T/nginx/none;
      error_page 403 404 405 = @ok;
    }
    location = /_drain { internal; return 204; }
    location @ok { return 200 'ok'; }
  }
}
CONF
  nginx -c "$T/nginx/nginx.conf" -p "$T/nginx" &
  PIDS+=($!)
  wait_for 20 bash -c "exec 3<>/dev/tcp/127.0.0.1/$NGINX_PORT"
fi

HTTP=$(free_port)
daemon_conf "$T/omni.conf" "
http_listen = 127.0.0.1:$HTTP
tls_ca_file = $T/ca.pem
max_attempts = 4
max_host_connections = 4
keepalive_idle_ms = 2000

[connector.wa]
type = whatsapp
api_base = https://127.0.0.1:$(cat "$T/h2.port")
phone_number_id = 1234567890
access_token = testtoken
app_secret = appsecret
verify_token = verifytoken
rate_per_s = 0
session_window_s = 0
http2 = true
max_inflight = 32
timeout_ms = 3000

[connector.one]
type = whatsapp
api_base = https://127.0.0.1:$(cat "$T/one.port")
phone_number_id = 2234567890
access_token = testtoken
app_secret = appsecret
verify_token = verifytoken
rate_per_s = 0
session_window_s = 0
http2 = true
max_inflight = 16

# http2 left at its default (auto): h2 offered, HTTP/1.1 chosen by the server
[connector.h1only]
type = webhook
url = https://127.0.0.1:$(cat "$T/h1.port")/hook

[connector.ngxh1]
type = webhook
url = https://127.0.0.1:${NGINX_H1_PORT:-9}/hook

[connector.h2name]
type = webhook
url = https://localhost:$(cat "$T/h2.port")/wrongname
http2 = true

[connector.ngx]
type = whatsapp
api_base = https://127.0.0.1:${NGINX_PORT:-9}
phone_number_id = 3234567890
access_token = testtoken
app_secret = appsecret
verify_token = verifytoken
rate_per_s = 0
session_window_s = 0
http2 = true
max_inflight = 64

[channels]
whatsapp = wa
one = one
h1only = h1only
h2name = h2name
ngx = ngx
ngxh1 = ngxh1"
start_daemon "$T/omni.conf"
wait_for 20 curl -sf "http://127.0.0.1:$HTTP/readyz"
metric() { curl -sf "http://127.0.0.1:$HTTP/metrics" | awk -v k="$1" '$1 == k {print $2}'; }

fill_list h2:a 300
fill_list h2:b 40
enqueue '{"type":"broadcast","id":"h2-main","channel":"whatsapp","message":{"text":"Hi {{name}}"},"recipients_list":"h2:a"}'
enqueue '{"type":"broadcast","id":"h2-one","channel":"one","message":{"text":"Hi {{name}}"},"recipients_list":"h2:b"}'
enqueue '{"type":"broadcast","id":"h2-fallback","channel":"h1only","message":{"text":"x"},"recipients":[{"to":"u1"},{"to":"u2"},{"to":"u3"}]}'
enqueue '{"type":"broadcast","id":"h2-name","channel":"h2name","message":{"text":"x"},"recipients":[{"to":"u1"}]}'
wait_for 120 campaign_done h2-main
wait_for 120 campaign_done h2-one
wait_for 60 campaign_done h2-fallback
sleep 4 # the late answer comes after the timeout: let the provider log it
rraw HGETALL omni:msg:h2-main >"$T/main.states"
rraw HGETALL omni:msg:h2-one >"$T/one.states"

cat >"$T/check.py" <<'PY'

import collections, json, sys
rec = [json.loads(l) for l in open(sys.argv[1])]
processed = collections.Counter(r["to"] for r in rec if r["ev"] == "processed")
refused = collections.Counter(r["to"] for r in rec if r["ev"] == "refused")
ignored = collections.Counter(r["to"] for r in rec if r["ev"] == "ignored")
lines = open(sys.argv[2]).read().split("\n")
st = {f.split(":", 1)[1].lstrip("+"): json.loads(v) for f, v in zip(lines[0::2], lines[1::2]) if f}
assert len(st) == int(sys.argv[3]), len(st)
by = collections.defaultdict(set)
for t, r in st.items():
    by[r["state"]].add(t)
assert set(by) <= {"sent", "uncertain"}, {k: sorted(v)[:5] for k, v in by.items()}
# sent: processed exactly once, and the answer is that very request's
bad = [t for t in by["sent"] if processed[t] != 1]
assert not bad, [(t, processed[t]) for t in bad[:5]]
wrong = [t for t in by["sent"] if not st[t].get("provider_id", "").endswith("." + t)]
assert not wrong, [(t, st[t]) for t in wrong[:5]]
# uncertain: processed at most once, never written again
assert all(processed[t] <= 1 for t in by["uncertain"]), [(t, processed[t]) for t in by["uncertain"]]
if sys.argv[4] == "main":
    # the safe retries: refused / above the GOAWAY's last stream, then sent once
    assert refused["15550000020"] == 1 and "15550000020" in by["sent"], (refused, st["15550000020"])
    assert "15550000050" in by["sent"], st["15550000050"]
    assert ignored, "no stream was in flight above the GOAWAY's last stream"
    assert all(t in by["sent"] for t in ignored), [(t, st[t]) for t in ignored if t not in by["sent"]]
    # the ambiguous ones: processed once, recorded uncertain
    for t, why in (("15550000130", "ambiguous_reset"), ("15550000190", "ambiguous_reset"),
                   ("15550000260", "ambiguous_timeout")):
        assert st[t]["state"] == "uncertain" and st[t]["reason"] == why, (t, st[t])
        assert processed[t] == 1, (t, processed[t])
    print("%d sent, %d uncertain; %d refused, %d above the GOAWAY written again" % (
        len(by["sent"]), len(by["uncertain"]), sum(refused.values()), len(ignored)))
else:
    assert not by["uncertain"], sorted(by["uncertain"])
    opened = [r["max_open"] for r in rec if "max_open" in r]
    assert opened and max(opened) == 1, opened
    print("%d sent; at most one stream open per connection" % len(by["sent"]))
PY
python3 "$T/check.py" "$T/h2.jsonl" "$T/main.states" 300 main || fail "h2-main: the provider's count does not match the daemon's"
ok "HTTP/2: GOAWAY and REFUSED_STREAM written again and processed once; reset after the body, cut connection and late answer uncertain, processed once"

python3 "$T/check.py" "$T/one.jsonl" "$T/one.states" 40 one || fail "h2-one: the provider's count or its stream limit"
ok "SETTINGS_MAX_CONCURRENT_STREAMS = 1: 40 recipients sent, one stream at a time"

# keepalive_idle_ms = 2000: the connection to "one", idle since its
# campaign ended, is ended by the client with a GOAWAY (NO_ERROR), no
# stream open (RFC 9113 6.8), before the close
wait_for 30 grep -q '"ev": "goaway"' "$T/one.jsonl"
python3 - "$T/one.jsonl" <<'PY' || fail "the idle connection's GOAWAY: $(grep goaway "$T/one.jsonl")"
import json, sys
g = [json.loads(l) for l in open(sys.argv[1]) if '"goaway"' in l]
assert g and all(x["code"] == 0 and x["open"] == 0 for x in g), g
PY
ok "an idle HTTP/2 connection is ended with GOAWAY (NO_ERROR) before the close"

[ "$(campaign_field h2-fallback sent)" = 3 ] || fail "fallback: $(rraw HGETALL omni:campaign:h2-fallback | tr '\n' ' ')"
ok "a TLS server without h2 in ALPN: served over HTTP/1.1 (3 sent)"

if [ -n "$NGINX_PORT" ]; then
  fill_list h2:n 500
  enqueue '{"type":"broadcast","id":"h2-nginx","channel":"ngx","message":{"text":"Hi {{name}}"},"recipients_list":"h2:n"}'
  wait_for 120 campaign_done h2-nginx
  [ "$(campaign_field h2-nginx sent)" = 500 ] || fail "nginx: $(rraw HGETALL omni:campaign:h2-nginx | tr '\n' ' ')"
  python3 - "$T/nginx/bodies.log" <<'PY' || fail "nginx did not receive each recipient once"
import collections, json, sys
seen = collections.Counter()
for line in open(sys.argv[1]):
    line = line.strip().encode().decode("unicode_escape")
    seen[json.loads(line)["to"].lstrip("+")] += 1
want = {"1555%07d" % i for i in range(1, 501)}
assert set(seen) == want, (len(seen), sorted(want - set(seen))[:5], open(sys.argv[1]).read()[:300])
assert all(v == 1 for v in seen.values()), [k for k, v in seen.items() if v != 1][:5]
PY
  ok "nginx over HTTP/2: 500 recipients sent, each body received once"

  # http2 = auto towards an nginx without http2: ALPN offers h2 and
  # http/1.1, nginx chooses http/1.1, the origin goes to the HTTP/1.1 client
  enqueue '{"type":"broadcast","id":"h2-ngxh1","channel":"ngxh1","message":{"text":"x"},"recipients":[{"to":"n1"},{"to":"n2"},{"to":"n3"},{"to":"n4"}]}'
  wait_for 60 campaign_done h2-ngxh1
  [ "$(campaign_field h2-ngxh1 sent)" = 4 ] || fail "nginx without h2: $(rraw HGETALL omni:campaign:h2-ngxh1 | tr '\n' ' ')"
  # (nginx writes the log line once the request is finalized: wait for the 4)
  wait_for 20 bash -c "[ \$(wc -l <'$T/nginx/h1bodies.log') -ge 4 ]"
  python3 - "$T/nginx/h1bodies.log" <<'PY' || fail "nginx without h2 did not receive each recipient once"
import collections, json, sys
seen = collections.Counter(json.loads(l.strip().encode().decode("unicode_escape"))["to"]
                           for l in open(sys.argv[1]) if l.strip())
assert seen == {"n1": 1, "n2": 1, "n3": 1, "n4": 1}, (seen, open(sys.argv[1]).read()[:300])
PY
  ! grep -qi "no application protocol" "$T/daemon.log" || fail "a handshake failed: $(grep -i "application protocol" "$T/daemon.log" | head -3)"
  ok "http2 = auto to an nginx without http2 (it refuses an ALPN of h2 alone): served over HTTP/1.1, each body once"
else
  echo "# nginx not installed: the nginx part is skipped"
fi

wait_for 60 campaign_done h2-name
[ "$(campaign_field h2-name failed)" = 1 ] || fail "a certificate for another name: $(rraw HGETALL omni:campaign:h2-name | tr '\n' ' ')"
! grep -q '/wrongname' "$T/h2.jsonl" || fail "a request reached the provider through a certificate for another name"
rraw XRANGE omni:dead - + | q 'TLS: the certificate does not match the host name' ||
  fail "the dead letter does not say the name did not match: $(rraw XRANGE omni:dead - +)"
ok "HTTP/2 to a certificate for another name: refused before a request left, the reason in the dead letter"

nat_h2=$(metric 'omnicast_transfers_total{client="native_h2"}')
nat_tls=$(metric 'omnicast_transfers_total{client="native_tls"}')
curl_n=$(metric 'omnicast_transfers_total{client="curl"}')
want=$((340 + ${NGINX_PORT:+500}))
tls_want=$((3 + ${NGINX_PORT:+4}))
[ "${nat_h2:-0}" -ge "$want" ] || fail "the native HTTP/2 client carried $nat_h2 requests, fewer than $want"
[ "${nat_tls:-0}" -ge "$tls_want" ] || fail "the fallback did not go through the native HTTP/1.1 client ($nat_tls)"
[ "${curl_n:-1}" = 0 ] || fail "libcurl carried $curl_n transfers"
ok "the native HTTP/2 client carried them (native_h2 $nat_h2, native_tls $nat_tls, curl $curl_n)"

stop_daemon
check_logs_clean
