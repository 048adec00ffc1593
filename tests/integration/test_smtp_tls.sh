#!/bin/bash
# The native SMTP client (smtpc.c) and certificates it must refuse, judged at
# the mock SMTP server (tests/mock/smtp_server.py): STARTTLS and smtps to a
# server whose certificate another CA signed, and to one whose certificate
# is for another host name. No MAIL, RCPT, DATA or AUTH reaches the server
# (after a STARTTLS refused by the client only EHLO and STARTTLS came in
# clear text); each message is retried as a network failure (nothing was
# sent: never `uncertain`) and then fails, the dead letter saying why; the
# daemon's log names the reason ("certificate verify failed: ..."). The same
# servers' certificates from the CA in tls_ca_file, at the name they carry,
# take the mail (STARTTLS with AUTH, smtps).
source "$(dirname "$0")/lib.sh"

start_redis
# a private CA signing a certificate for 127.0.0.1 (not for "localhost"),
# and a self-signed one for 127.0.0.1 that no configured CA signed
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=omni-smtp-ca \
  -keyout "$T/ca.key" -out "$T/ca.pem" 2>/dev/null || fail "openssl: the CA"
openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout "$T/srv.key" -out "$T/srv.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$T/ext.cnf"
openssl x509 -req -in "$T/srv.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial -days 2 \
  -extfile "$T/ext.cnf" -out "$T/srv.pem" 2>/dev/null || fail "openssl: the server certificate"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$T/rogue.key" -out "$T/rogue.pem" 2>/dev/null ||
  fail "openssl: the rogue certificate"

AUTH=(--auth "omni:s3cret pw")
start_smtp_mock sca --starttls --cert "$T/rogue.pem" --key "$T/rogue.key" "${AUTH[@]}" # STARTTLS, another CA
SCA=$SRV_PORT
start_smtp_mock sname --starttls --cert "$T/srv.pem" --key "$T/srv.key" "${AUTH[@]}" # STARTTLS, another name
SNAME=$SRV_PORT
start_smtp_mock ica --smtps --cert "$T/rogue.pem" --key "$T/rogue.key" "${AUTH[@]}" # smtps, another CA
ICA=$SRV_PORT
start_smtp_mock iname --smtps --cert "$T/srv.pem" --key "$T/srv.key" "${AUTH[@]}" # smtps, another name
INAME=$SRV_PORT
start_smtp_mock sgood --starttls --cert "$T/srv.pem" --key "$T/srv.key" "${AUTH[@]}"
SGOOD=$SRV_PORT
start_smtp_mock igood --smtps --cert "$T/srv.pem" --key "$T/srv.key" "${AUTH[@]}"
IGOOD=$SRV_PORT

HTTP_PORT=$(free_port)
conn() { # NAME URL: a connector with credentials
  printf '\n[connector.%s]\ntype = smtp\nurl = %s\nusername = omni\npassword = s3cret pw\nfrom = Acme <news@acme.example>\nmax_inflight = 4\n' "$1" "$2"
}
daemon_conf "$T/omni.conf" "
http_listen = 127.0.0.1:$HTTP_PORT
tls_ca_file = $T/ca.pem
max_attempts = 2
$(conn sca "smtp://127.0.0.1:$SCA")
$(conn sname "smtp://localhost:$SNAME")
$(conn ica "smtps://127.0.0.1:$ICA")
$(conn iname "smtps://localhost:$INAME")
$(conn sok "smtp://127.0.0.1:$SGOOD")
$(conn iok "smtps://127.0.0.1:$IGOOD")

[channels]
sca = sca
sname = sname
ica = ica
iname = iname
sok = sok
iok = iok"
chmod 600 "$T/omni.conf"
start_daemon "$T/omni.conf"
wait_for 20 curl -sf "http://127.0.0.1:$HTTP_PORT/readyz"

for c in sca sname ica iname sok iok; do
  enqueue "{\"type\":\"broadcast\",\"id\":\"c-$c\",\"channel\":\"$c\",\"message\":{\"subject\":\"Hi\",\"text\":\"Hello\"},\"recipients\":[{\"to\":\"$c-1@example.com\"},{\"to\":\"$c-2@example.com\"}]}"
done
for c in sca sname ica iname sok iok; do wait_for 60 campaign_done "c-$c"; done

rec() { rraw HGET "omni:msg:c-$1" "$1:$1-$2@example.com"; }
for c in sca sname ica iname; do
  [ "$(campaign_field "c-$c" failed)" = 2 ] || fail "$c: $(rraw HGETALL "omni:campaign:c-$c" | tr '\n' ' ')"
  for i in 1 2; do
    r=$(rec "$c" $i)
    echo "$r" | q '"state":"failed"' || fail "$c: $c-$i is not failed: $r"
    echo "$r" | q '"error":"retries_exhausted"' || fail "$c: $c-$i did not fail as a network failure retried: $r"
  done
done
for c in sok iok; do
  [ "$(campaign_field "c-$c" sent)" = 2 ] || fail "$c: $(rraw HGETALL "omni:campaign:c-$c" | tr '\n' ' ')"
done
ok "a certificate from another CA and one for another name, STARTTLS and smtps: each message retried (nothing sent, not uncertain), then failed; the right CA at the right name: sent"

# retries exhausted: the dead letters carry the last error, in words
rraw XRANGE omni:dead - + >"$T/dead.txt"
n=$(grep -c 'network TLS: the certificate is not signed by a trusted CA' "$T/dead.txt")
[ "$n" = 4 ] || fail "dead letters saying the CA is not trusted: $n: $(cat "$T/dead.txt")"
n=$(grep -c 'network TLS: the certificate does not match the host name' "$T/dead.txt")
[ "$n" = 4 ] || fail "dead letters saying the name does not match: $n: $(cat "$T/dead.txt")"
# the log names OpenSSL's reason, per connector URL (host:port, no credentials)
for p in "smtp STARTTLS 127.0.0.1:$SCA" "smtps 127.0.0.1:$ICA"; do
  grep -q "$p: TLS handshake failed: certificate verify failed: self.signed certificate" "$T/daemon.log" ||
    fail "no log line for $p: $(grep -i 'tls' "$T/daemon.log" | head -5)"
done
for p in "smtp STARTTLS localhost:$SNAME" "smtps localhost:$INAME"; do
  grep -q "$p: TLS handshake failed: certificate verify failed: hostname mismatch" "$T/daemon.log" ||
    fail "no log line for $p: $(grep -i 'tls' "$T/daemon.log" | head -5)"
done
grep -q 's3cret' "$T/daemon.log" && fail "the password reached the log"
ok "dead letters say why (not signed by a trusted CA, does not match the host name); the log says 'certificate verify failed: self-signed certificate' / 'hostname mismatch'"

# the servers log a connection when it ends: the daemon closes them as it stops
stop_daemon
sleep 1
python3 - "$T" <<'PY' || fail "what the servers saw"
import glob, json, os, sys
T = sys.argv[1]
import smtp_seen  # tests/integration (PYTHONPATH)
msgs, conns = smtp_seen.readers(T)
for name in ("sca", "sname", "ica", "iname"):
    assert msgs(name) == [], (name, msgs(name))
    for c in conns(name):
        # STARTTLS: EHLO and STARTTLS in clear, then the client's refusal;
        # smtps: the handshake fails before a command
        assert set(c["cmds"]) <= {"EHLO", "STARTTLS"}, (name, c)
        assert c["auth"] == "" and c["transactions"] == 0 and c["mail"] == [], (name, c)
    print(name, len(conns(name)), "connections:", [c["cmds"] for c in conns(name)][:4])
# STARTTLS servers: the client got as far as STARTTLS (the refusal is the
# handshake's): at least one connection per try
assert len(conns("sca")) >= 2 and len(conns("sname")) >= 2, (conns("sca"), conns("sname"))
assert all(c["cmds"] == ["EHLO", "STARTTLS"] for c in conns("sca") + conns("sname")), conns("sca")
# the right CA and name: over TLS, with AUTH, each message once
for name, c in (("sgood", "sok"), ("igood", "iok")):
    got = {}
    for f in glob.glob("%s/%s/*.json" % (T, name)):
        for r in json.load(open(f))["rcpt"]:
            got[r] = got.get(r, 0) + 1
    assert got == {"%s-1@example.com" % c: 1, "%s-2@example.com" % c: 1}, (name, got)
    assert all(x["tls"] and x["auth"] == "PLAIN" for x in conns(name) if x["transactions"]), conns(name)
PY
ok "no MAIL, RCPT, DATA or AUTH reached a refused server (STARTTLS: only EHLO and STARTTLS in clear); the accepted ones got each message once"
check_logs_clean
