#!/usr/bin/python3
"""A scriptable SMTP server for the native SMTP client's tests (asyncio,
stdlib only, 127.0.0.1). Speaks RFC 5321 with a multi-line EHLO reply;
announces PIPELINING unless --no-pipelining, SMTPUTF8 with --smtputf8 (and
then takes UTF-8 addresses only with MAIL's SMTPUTF8 parameter: 553
otherwise, RFC 6531 3.5); STARTTLS with --starttls,
implicit TLS with --smtps (both need --cert/--key); AUTH with --auth
USER:PASS, announcing --auth-mechs (default "PLAIN LOGIN"; CRAM-MD5 is
checked too), and then MAIL before AUTH is refused.

Saves each accepted message as OUTDIR/<seq>.eml (the DATA dot-unstuffed, as
the client built it) and OUTDIR/<seq>.json (mail_from, rcpt, conn, mail: its
MAIL line). Appends
one JSON line per connection to OUTDIR/conns.jsonl when it ends: messages,
transactions, one_read (transactions whose MAIL, RCPT and DATA came in one
read), tls, ehlo (the name the client gave), auth (the mechanism), cmds
(the verb of every command line, in order), mail (every MAIL line whole,
as bytes decoded as UTF-8, invalid bytes escaped).

Faults (each once per server unless said):
  --reject-rcpt ADDR=CODE   refuse that recipient (every time)
  --close-after-mail N      close the connection on the Nth MAIL (no reply)
  --close-after-dot ADDR    take ADDR's message, then close without a reply
  --slow-dot ADDR=SEC       answer ADDR's dot after SEC seconds (it is kept)
  --421-after N             after N accepted messages, answer the next MAIL
                            with 421 and close
"""
import argparse
import asyncio
import json
import os
import signal
import socket
import ssl

a = None
state = {"seq": 0, "mails": 0, "close_dot_done": False, "slow_done": False, "r421_done": False}
conn_ids = [0]


def save(mail_from, rcpt, data, conn, mail=""):
    state["seq"] += 1
    base = os.path.join(a.outdir, "%06d" % state["seq"])
    with open(base + ".eml.tmp", "wb") as f:
        f.write(data)
    os.rename(base + ".eml.tmp", base + ".eml")
    with open(base + ".json", "w") as f:
        json.dump({"mail_from": mail_from, "rcpt": rcpt, "conn": conn, "mail": mail}, f)
    return state["seq"]


async def handle(reader, writer):
    conn_ids[0] += 1
    cid = conn_ids[0]
    st = {"messages": 0, "transactions": 0, "one_read": 0, "tls": a.smtps, "ehlo": "",
          "auth": "", "cmds": [], "mail": []}
    buf = b""
    nread = 0
    authed = not a.auth
    mail_from, rcpt, reads, in_data, data = None, [], {}, False, []
    utf8, mail_line = False, ""

    async def send(s):
        writer.write(s.encode())
        await writer.drain()

    def reset():
        nonlocal mail_from, rcpt, reads
        mail_from, rcpt, reads = None, [], {}

    async def lines():
        nonlocal buf, nread
        while True:
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                yield line + b"\n"
            d = await reader.read(65536)
            if not d:
                return
            nread += 1
            buf += d

    try:
        await send("220 mock.test ESMTP ready\r\n")
        it = lines()
        async for line in it:
            if in_data:
                if line == b".\r\n":
                    in_data = False
                    body = b"".join(data)
                    data = []
                    st["messages"] += 1
                    to = rcpt[0] if rcpt else ""
                    if a.close_after_dot and to == a.close_after_dot and not state["close_dot_done"]:
                        state["close_dot_done"] = True
                        save(mail_from, rcpt, body, cid)
                        break
                    if a.slow_dot and to == a.slow_dot[0] and not state["slow_done"]:
                        state["slow_done"] = True
                        save(mail_from, rcpt, body, cid)
                        await asyncio.sleep(a.slow_dot[1])
                        await send("250 2.0.0 Ok: queued late\r\n")
                        reset()
                        continue
                    n = save(mail_from, rcpt, body, cid, mail_line)
                    await send("250 2.0.0 Ok: queued as %06d\r\n" % n)
                    reset()
                else:
                    data.append(line[1:] if line.startswith(b"..") else line)
                continue
            cmd = line.rstrip(b"\r\n").decode("utf-8", "replace")
            u = cmd.upper()
            if len(st["cmds"]) < 1000:
                st["cmds"].append(u.split(" ")[0].split(":")[0])
            if u.startswith("EHLO ") or u.startswith("HELO "):
                st["ehlo"] = cmd[5:]
                if u.startswith("HELO"):
                    await send("250 mock.test\r\n")
                    continue
                caps = ["mock.test greets you", "SIZE 10240000", "8BITMIME"]
                if not a.no_pipelining:
                    caps.append("PIPELINING")
                if a.starttls and not st["tls"]:
                    caps.append("STARTTLS")
                if a.auth:
                    caps.append("AUTH " + a.auth_mechs)
                if a.smtputf8:
                    caps.append("SMTPUTF8")
                caps.append("ENHANCEDSTATUSCODES")
                await send("".join("250%s%s\r\n" % ("-" if i < len(caps) - 1 else " ", c)
                                   for i, c in enumerate(caps)))
            elif u == "STARTTLS" and a.starttls:
                if buf:
                    await send("501 5.5.2 bytes after STARTTLS\r\n")
                    break
                await send("220 2.0.0 Ready to start TLS\r\n")
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                ctx.load_cert_chain(a.cert, a.key)
                await writer.start_tls(ctx)
                st["tls"] = True
            elif u.startswith("AUTH "):
                parts = cmd.split()
                mech = parts[1].upper()
                st["auth"] = mech
                user, pw = a.auth.split(":", 1)
                import base64
                if mech == "PLAIN":
                    await send("334 \r\n")
                    l2 = await it.__anext__()
                    got = base64.b64decode(l2.strip())
                    ok = got == b"\0" + user.encode() + b"\0" + pw.encode()
                elif mech == "LOGIN":
                    await send("334 VXNlcm5hbWU6\r\n")
                    u1 = base64.b64decode((await it.__anext__()).strip())
                    await send("334 UGFzc3dvcmQ6\r\n")
                    p1 = base64.b64decode((await it.__anext__()).strip())
                    ok = u1 == user.encode() and p1 == pw.encode()
                elif mech == "CRAM-MD5":
                    import hashlib, hmac
                    ch = b"<1896.697170952@mock.test>"
                    await send("334 %s\r\n" % base64.b64encode(ch).decode())
                    got = base64.b64decode((await it.__anext__()).strip())
                    want = user.encode() + b" " + hmac.new(pw.encode(), ch, hashlib.md5).hexdigest().encode()
                    ok = got == want
                else:
                    ok = False
                if ok:
                    authed = True
                    await send("235 2.7.0 Authentication successful\r\n")
                else:
                    await send("535 5.7.8 Authentication credentials invalid\r\n")
            elif u.startswith("MAIL FROM:"):
                if len(st["mail"]) < 1000:
                    st["mail"].append(line.rstrip(b"\r\n").decode("utf-8", "backslashreplace"))
                state["mails"] += 1
                st["transactions"] += 1
                if a.close_after_mail and state["mails"] == a.close_after_mail:
                    break
                if (a.r421_after is not None and not state["r421_done"]
                        and state["seq"] >= a.r421_after):
                    state["r421_done"] = True
                    await send("421 4.3.2 Service shutting down\r\n")
                    break
                if not authed:
                    await send("530 5.7.0 Authentication required\r\n")
                    continue
                utf8 = "SMTPUTF8" in u.split(" ")[1:]
                mail_line = line.rstrip(b"\r\n").decode("utf-8", "backslashreplace")
                mail_from = cmd[10:].split(" ")[0]
                reads = {"mail": nread}
                await send("250 2.1.0 Ok\r\n")
            elif u.startswith("RCPT TO:"):
                addr = cmd[8:].strip().strip("<>")
                reads["rcpt"] = nread
                code = a.reject.get(addr.lower())
                if not (utf8 and a.smtputf8) and max(line) >= 0x80:
                    await send("553 5.6.7 <%s>: non-ASCII address without SMTPUTF8\r\n" % addr)
                elif code:
                    await send("%d 5.1.1 <%s>: Recipient address rejected\r\n" % (code, addr))
                elif mail_from is None:
                    await send("503 5.5.1 Error: need MAIL command\r\n")
                else:
                    rcpt.append(addr)
                    await send("250 2.1.5 Ok\r\n")
            elif u == "DATA":
                if reads.get("mail") is not None and reads.get("mail") == reads.get("rcpt") == nread:
                    st["one_read"] += 1
                if not rcpt:
                    await send("554 5.5.1 Error: no valid recipients\r\n")
                    continue
                in_data = True
                await send("354 End data with <CR><LF>.<CR><LF>\r\n")
            elif u == "RSET":
                reset()
                await send("250 2.0.0 Ok\r\n")
            elif u == "NOOP":
                await send("250 2.0.0 Ok\r\n")
            elif u == "QUIT":
                await send("221 2.0.0 Bye\r\n")
                break
            else:
                await send("502 5.5.2 Error: command not recognized\r\n")
    except (ConnectionError, ssl.SSLError, StopAsyncIteration, asyncio.IncompleteReadError):
        pass
    finally:
        with open(os.path.join(a.outdir, "conns.jsonl"), "a") as f:
            f.write(json.dumps(dict(st, conn=cid)) + "\n")
        try:
            writer.close()
        except Exception:
            pass


async def main():
    ctx = None
    if a.smtps:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.cert, a.key)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    server = await asyncio.start_server(handle, sock=s, ssl=ctx, backlog=256)
    with open(a.port_file + ".tmp", "w") as f:
        f.write("%d\n" % s.getsockname()[1])
    os.rename(a.port_file + ".tmp", a.port_file)
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    async with server:
        await stop


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--outdir", required=True)
    ap.add_argument("--no-pipelining", action="store_true")
    ap.add_argument("--starttls", action="store_true")
    ap.add_argument("--smtputf8", action="store_true")
    ap.add_argument("--smtps", action="store_true")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--auth")
    ap.add_argument("--auth-mechs", default="PLAIN LOGIN")
    ap.add_argument("--reject-rcpt", action="append", default=[])
    ap.add_argument("--close-after-mail", type=int, default=0)
    ap.add_argument("--close-after-dot")
    ap.add_argument("--slow-dot")
    ap.add_argument("--421-after", dest="r421_after", type=int)
    a = ap.parse_args()
    a.reject = {}
    for r in a.reject_rcpt:
        addr, code = r.rsplit("=", 1)
        a.reject[addr.lower()] = int(code)
    if a.slow_dot:
        addr, sec = a.slow_dot.rsplit("=", 1)
        a.slow_dot = (addr, float(sec))
    os.makedirs(a.outdir, exist_ok=True)
    asyncio.run(main())
