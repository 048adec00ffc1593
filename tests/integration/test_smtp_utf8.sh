#!/bin/bash
# SMTPUTF8 (RFC 6531) in the native SMTP client (smtpc.c), judged at the
# mock SMTP server (tests/mock/smtp_server.py): a recipient or sender with
# non-ASCII in its local part goes as UTF-8 with `MAIL FROM:<...> SMTPUTF8`
# to a server that announces SMTPUTF8 (ASCII messages on the same
# connections without it); to one that does not, the message fails for good
# at once (one attempt, no retry) and not a byte of it reaches the server.
# A non-ASCII domain is refused when the recipient is read (no IDNA).
source "$(dirname "$0")/lib.sh"

start_redis
start_smtp_mock u --smtputf8
U=$SRV_PORT
start_smtp_mock a
A=$SRV_PORT

HTTP_PORT=$(free_port)
conn() { # NAME PORT FROM
  printf '\n[connector.%s]\ntype = smtp\nurl = smtp://127.0.0.1:%s\ntls = none\nfrom = %s\nmax_inflight = 4\n' "$1" "$2" "$3"
}
daemon_conf "$T/omni.conf" "
http_listen = 127.0.0.1:$HTTP_PORT
max_attempts = 3
$(conn mu "$U" 'Acme <news@acme.example>')
$(conn ma "$A" 'Acme <news@acme.example>')
$(conn mfu "$U" 'Jörg <jörg@acme.example>')
$(conn mfa "$A" 'Jörg <jörg@acme.example>')

[channels]
mu = mu
ma = ma
mfu = mfu
mfa = mfa"
start_daemon "$T/omni.conf"
wait_for 20 curl -sf "http://127.0.0.1:$HTTP_PORT/readyz"

R='[{"to":"ascii@example.com"},{"to":"josé@example.com"},{"to":"用户@example.com"}]'
for c in mu ma mfu mfa; do
  enqueue "{\"type\":\"broadcast\",\"id\":\"c-$c\",\"channel\":\"$c\",\"message\":{\"subject\":\"Hi\",\"text\":\"Hello\"},\"recipients\":$R}"
done
# a non-ASCII domain: no IDNA here; the address is refused as it is read
# (an inline list: the job is rejected)
enqueue '{"type":"broadcast","id":"c-dom","channel":"mu","message":{"subject":"Hi","text":"Hello"},"recipients":[{"to":"ana@exämple.com"}]}'
for c in mu ma mfu mfa; do wait_for 60 campaign_done "c-$c"; done
wait_for 20 grep -q 'rejected: recipients\[0\].to: not an email address' "$T/daemon.log"

rec() { rraw HGET "omni:msg:c-$1" "$1:$2"; }
expect() { # CHANNEL ADDRESS STATE [PATTERN...]
  local c=$1 to=$2 st=$3 r
  shift 3
  r=$(rec "$c" "$to")
  echo "$r" | q "\"state\":\"$st\"" || fail "$c $to: not $st: $r"
  for p in "$@"; do echo "$r" | q "$p" || fail "$c $to: no $p in $r"; done
}
for to in ascii@example.com josé@example.com 用户@example.com; do
  expect mu "$to" sent
  expect mfu "$to" sent
done
expect ma ascii@example.com sent
for to in josé@example.com 用户@example.com; do
  expect ma "$to" failed '"error":"invalid_recipient"' '"attempts":1'
done
for to in ascii@example.com josé@example.com 用户@example.com; do
  expect mfa "$to" failed '"error":"rejected"' '"attempts":1'
done
n=$(grep -c "smtp 127.0.0.1:$A: the server does not offer SMTPUTF8" "$T/daemon.log")
[ "$n" = 1 ] || fail "the log said $n times that the server does not offer SMTPUTF8"
n=$(grep -c "SMTPUTF8" "$T/daemon.log")
[ "$n" = 1 ] || fail "SMTPUTF8 in $n log lines: $(grep SMTPUTF8 "$T/daemon.log")"
ok "to a server that announces SMTPUTF8: UTF-8 recipients and senders sent; to one that does not: failed at once for good (invalid_recipient / rejected, one attempt), ASCII still sent; a non-ASCII domain: refused when read"

stop_daemon
sleep 1
python3 - "$T" <<'PY' || fail "what the servers saw"
import glob, json, os, sys
T = sys.argv[1]
import smtp_seen  # tests/integration (PYTHONPATH)
msgs, conns = smtp_seen.readers(T)
# the SMTPUTF8 server: six messages, each once; SMTPUTF8 on MAIL exactly
# where an address (or the From header) is not ASCII; the To header as given
u = msgs("u")
got = sorted((m["mail_from"], m["rcpt"][0]) for m in u)
want = sorted((f, t) for f in ("<news@acme.example>", "<jörg@acme.example>")
              for t in ("ascii@example.com", "josé@example.com", "用户@example.com"))
assert got == want, got
for m in u:
    ascii = m["mail_from"].isascii() and m["rcpt"][0].isascii()
    assert m["mail"].endswith(" SMTPUTF8") != ascii, m["mail"]
    assert ("\r\nTo: %s\r\n" % m["rcpt"][0]).encode() in m["data"], m["data"][:400]
# the other: only the ASCII message of the ASCII sender; no MAIL line with a
# byte outside ASCII ever, none from the UTF-8 sender, no SMTPUTF8
a = msgs("a")
assert [(m["mail_from"], m["rcpt"]) for m in a] == [("<news@acme.example>", ["ascii@example.com"])], a
mails = [l for c in conns("a") for l in c["mail"]]
assert mails and all(l.isascii() and "SMTPUTF8" not in l and "jörg" not in l for l in mails), mails
assert sum(c["transactions"] for c in conns("a")) == 1, conns("a")
print("u:", len(u), "messages; a:", len(a), "message, MAIL lines:", mails)
PY
ok "the SMTPUTF8 server got six messages, MAIL with SMTPUTF8 exactly where an address is not ASCII; the other got one MAIL, ASCII, and nothing of the rest"
check_logs_clean
