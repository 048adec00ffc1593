#!/bin/bash
# The native SMTP client (smtpc.c), judged at the server
# (tests/mock/smtp_server.py): 200 messages over at most
# max_host_connections connections, MAIL/RCPT/DATA in one read where the
# server announces PIPELINING and one at a time where it does not; a
# refused recipient fails alone; a close after MAIL is retried and the
# message arrives once; a close after the final dot without a reply, and a
# dot answered after timeout_ms, end `uncertain` and are not sent again; a
# 421 mid-session ends the connection and the rest goes on; STARTTLS with
# AUTH PLAIN, smtps, AUTH LOGIN and CRAM-MD5; STARTTLS required and not
# offered sends nothing; every message arrives dot-unstuffed as the
# connector built it (a line holding only "." included).
source "$(dirname "$0")/lib.sh"

start_redis
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
  -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" -keyout "$T/key.pem" -out "$T/cert.pem" \
  2>/dev/null || fail "openssl could not make a certificate"

start_smtp_mock p --reject-rcpt gone@example.com=550 --close-after-mail 5 \
  --close-after-dot dot@example.com --slow-dot slow@example.com=8 --421-after 120
P_PORT=$SRV_PORT
start_smtp_mock n --no-pipelining
N_PORT=$SRV_PORT
start_smtp_mock t --starttls --cert "$T/cert.pem" --key "$T/key.pem" --auth "omni:s3cret pw"
T_PORT=$SRV_PORT
start_smtp_mock s --smtps --cert "$T/cert.pem" --key "$T/key.pem"
S_PORT=$SRV_PORT
start_smtp_mock l --auth "omni:s3cret pw" --auth-mechs LOGIN
L_PORT=$SRV_PORT
start_smtp_mock c --auth "omni:s3cret pw" --auth-mechs "LOGIN CRAM-MD5 PLAIN"
C_PORT=$SRV_PORT
start_smtp_mock x
X_PORT=$SRV_PORT

HTTP_PORT=$(free_port)
daemon_conf "$T/omni.conf" "
http_listen = 127.0.0.1:$HTTP_PORT
max_host_connections = 4
tls_ca_file = $T/cert.pem

[connector.mailp]
type = smtp
url = smtp://127.0.0.1:$P_PORT
tls = none
from = Acme <news@acme.example>
max_inflight = 16
timeout_ms = 4000

[connector.mailn]
type = smtp
url = smtp://127.0.0.1:$N_PORT
tls = none
from = Acme <news@acme.example>
max_inflight = 16

[connector.mailt]
type = smtp
url = smtp://localhost:$T_PORT
username = omni
password = s3cret pw
from = Acme <news@acme.example>
max_inflight = 8

[connector.mails]
type = smtp
url = smtps://127.0.0.1:$S_PORT
from = Acme <news@acme.example>
max_inflight = 8

[connector.maill]
type = smtp
url = smtp://127.0.0.1:$L_PORT
tls = none
username = omni
password = s3cret pw
from = Acme <news@acme.example>

[connector.mailc]
type = smtp
url = smtp://127.0.0.1:$C_PORT
tls = none
username = omni
password = s3cret pw
from = Acme <news@acme.example>

[connector.mailx]
type = smtp
url = smtp://127.0.0.1:$X_PORT
tls = starttls
from = Acme <news@acme.example>

[channels]
emaill = maill
emailc = mailc
emailx = mailx
email = mailp
emailn = mailn
emailt = mailt
emails = mails"
chmod 600 "$T/omni.conf"
start_daemon "$T/omni.conf"
wait_for 20 curl -sf "http://127.0.0.1:$HTTP_PORT/readyz"

# recipients: 200 (p), 60 (n), 20 (t), 20 (s)
recips() { # PREFIX N [EXTRA...]
  local p=$1 n=$2; shift 2
  python3 - "$p" "$n" "$@" <<'PY'
import json, sys
p, n = sys.argv[1], int(sys.argv[2])
r = [{"to": "%s%d@example.com" % (p, i)} for i in range(n)] + [{"to": a} for a in sys.argv[3:]]
print(json.dumps(r))
PY
}
TEXT='Hello,\n.\n..two dots\nand the end.'
enqueue "{\"type\":\"broadcast\",\"id\":\"cp\",\"channel\":\"email\",\"message\":{\"subject\":\"Hi\",\"text\":\"$TEXT\"},\"recipients\":$(recips p 197 gone@example.com dot@example.com slow@example.com)}"
enqueue "{\"type\":\"broadcast\",\"id\":\"cn\",\"channel\":\"emailn\",\"message\":{\"subject\":\"Hi\",\"text\":\"$TEXT\"},\"recipients\":$(recips n 60)}"
enqueue "{\"type\":\"broadcast\",\"id\":\"ct\",\"channel\":\"emailt\",\"message\":{\"subject\":\"Hi\",\"text\":\"$TEXT\"},\"recipients\":$(recips t 20)}"
enqueue "{\"type\":\"broadcast\",\"id\":\"cs\",\"channel\":\"emails\",\"message\":{\"subject\":\"Hi\",\"text\":\"$TEXT\"},\"recipients\":$(recips s 20)}"
enqueue "{\"type\":\"broadcast\",\"id\":\"cl\",\"channel\":\"emaill\",\"message\":{\"subject\":\"Hi\",\"text\":\"$TEXT\"},\"recipients\":$(recips l 5)}"
enqueue "{\"type\":\"broadcast\",\"id\":\"cc\",\"channel\":\"emailc\",\"message\":{\"subject\":\"Hi\",\"text\":\"$TEXT\"},\"recipients\":$(recips c 5)}"
enqueue "{\"type\":\"broadcast\",\"id\":\"cx\",\"channel\":\"emailx\",\"message\":{\"subject\":\"Hi\",\"text\":\"$TEXT\"},\"recipients\":$(recips x 3)}"
for c in cn ct cs cl cc cx cp; do wait_for 120 campaign_done $c; done
sleep 1


st() { msg_field "$1" "email:$2" state; }
[ "$(st cp gone@example.com)" = failed ] || fail "refused recipient: $(rraw HGET omni:msg:cp email:gone@example.com)"
[ "$(st cp dot@example.com)" = uncertain ] || fail "close after the dot: $(rraw HGET omni:msg:cp email:dot@example.com)"
[ "$(st cp slow@example.com)" = uncertain ] || fail "late dot reply: $(rraw HGET omni:msg:cp email:slow@example.com)"
[ "$(campaign_field cx failed)" = 3 ] && [ "$(msg_field cx emailx:x0@example.com state)" = failed ] ||
  fail "STARTTLS required, not offered: $(rraw HGETALL omni:campaign:cx | tr '\n' ' ')"
[ "$(campaign_field cp sent)" = 197 ] || fail "sent: $(rraw HGETALL omni:campaign:cp | tr '\n' ' ')"
ok "550 recipient failed alone; close after the dot and a dot answered after timeout_ms ended uncertain, each received once; STARTTLS required and not offered: retried, then failed"

m=$(curl -sf "http://127.0.0.1:$HTTP_PORT/metrics" | grep '^omnicast_transfers_total{client="native_smtp"}' | awk '{print $2}')
[ "${m:-0}" -ge 310 ] || fail "native_smtp transfers: $m"
c=$(curl -sf "http://127.0.0.1:$HTTP_PORT/metrics" | grep '^omnicast_transfers_total{client="curl"}' | awk '{print $2}')
[ "${c:-0}" = 0 ] || fail "libcurl took $c transfers"
ok "every message went through the native client (omnicast_transfers_total{client=\"native_smtp\"} $m)"

# the server logs a connection when it ends: the daemon closes them as it stops
stop_daemon
sleep 1
python3 - "$T" <<'PY' || fail "what the servers saw"
import glob, json, os, sys
T = sys.argv[1]
import smtp_seen  # tests/integration (PYTHONPATH)
msgs, conns = smtp_seen.readers(T)
def check_body(m):
    d = m["data"]
    assert d.endswith(b"\r\n"), d[-40:]
    assert b"\r\nSubject: Hi\r\n" in d, d[:300]
    assert b"\r\nHello,\r\n.\r\n..two dots\r\nand the end." in d, d
for name, prefix, n in (("p", "p", 197), ("n", "n", 60), ("t", "t", 20), ("s", "s", 20),
                        ("l", "l", 5), ("c", "c", 5)):
    ms = msgs(name)
    got = {}
    for m in ms:
        for r in m["rcpt"]:
            got[r] = got.get(r, 0) + 1
        check_body(m)
    for i in range(n):
        a = "%s%d@example.com" % (prefix, i)
        assert got.get(a) == 1, (name, a, got.get(a))
    print(name, len(ms), "messages,", len(conns(name)), "connections:", conns(name)[:6])
p = msgs("p")
got = {}
for m in p:
    got[m["rcpt"][0]] = got.get(m["rcpt"][0], 0) + 1
assert "gone@example.com" not in got, got.get("gone@example.com")
assert got.get("dot@example.com") == 1, got.get("dot@example.com")
assert got.get("slow@example.com") == 1, got.get("slow@example.com")
assert len(p) == 199, len(p)
# connections: 4 at most at once; the faults end 4 of them (close after
# MAIL, close after the dot, the late dot's timeout, 421): 8 at most in all
cp = conns("p")
assert 1 <= len(cp) <= 8, cp
assert max(c["messages"] for c in cp) >= 20, cp
tx = sum(c["transactions"] for c in cp)
one = sum(c["one_read"] for c in cp)
assert one >= 0.9 * tx - 8, (one, tx)
cn = conns("n")
assert 1 <= len(cn) <= 4, cn
assert sum(c["one_read"] for c in cn) == 0, cn
assert sum(c["messages"] for c in cn) == 60, cn
ct = conns("t")
assert ct and all(c["tls"] and c["auth"] == "PLAIN" for c in ct if c["messages"]), ct
assert len(ct) <= 4, ct
cs = conns("s")
assert cs and len(cs) <= 4 and sum(c["messages"] for c in cs) == 20, cs
assert all(c["auth"] == "LOGIN" for c in conns("l") if c["transactions"]), conns("l")
assert all(c["auth"] == "CRAM-MD5" for c in conns("c") if c["transactions"]), conns("c")
# STARTTLS required, not offered: nothing in plaintext
assert msgs("x") == [], msgs("x")
assert conns("x") and all(c["transactions"] == 0 for c in conns("x")), conns("x")
import socket
host = socket.gethostname()
assert all(c["ehlo"] == host for c in cp + cn if c["transactions"]), (host, cp[:2])
PY
ok "200 + 60 + 20 + 20 messages each arrived once, content dot-unstuffed as built, connections reused (pipelined in one read where announced), STARTTLS + AUTH PLAIN, smtps, AUTH LOGIN and CRAM-MD5; nothing sent where STARTTLS was required and not offered"
check_logs_clean
