#!/usr/bin/env python3
"""A WhatsApp Cloud API provider that fails on purpose at the network level,
for the tests of ambiguous outcomes (issue 13). Raw HTTP/1.1 on asyncio
(stdlib only), 127.0.0.1 only, keep-alive by default, optional TLS.

    fault_provider.py [--port N] [--port-file F] [--record F] [--plan SPEC]
                      [--cert C --key K] [--backlog N] [--accept-delay-ms MS]

POST /{version}/{phone_number_id}/messages with a Bearer token and a JSON
body {"messaging_product":"whatsapp","to":"155500001xx",...} is answered
like Meta's Cloud API:
    200 {"messaging_product":"whatsapp","contacts":[{"input":TO,"wa_id":TO}],
         "messages":[{"id":"wamid.FP<n>.<to>"}]}
unless the plan names a fault for that recipient.

SPEC: entries separated by ';', each MODE[:ARG][@N]=PATTERN[,PATTERN...].
A PATTERN is the recipient's "to" (a leading '+' is ignored on both sides)
or a glob on it (fnmatch: 1555001*, *0201, 155500?02??). The first entry
that matches wins; @N applies the mode to the first N requests of each
matching recipient only (later ones are answered normally). Every mode is
applied AFTER the whole request (head and Content-Length body) was read:

    ok                   a normal answer
    late:MS              a normal answer, MS ms later
    close_after_read     close the connection without a byte of answer
    reset_mid_head       write "HTTP/1.1 200 OK\\r\\nContent-Ty", then RST
                         (SO_LINGER 0)
    close_after_headers  a complete 200 head with Content-Length: 120 and
                         no body, then close
    garbage_200          200 with the body "<html>oops"
    empty_200            200 with Content-Length: 0
    idle_close_ms:MS     a normal answer; from then on the connection is
                         closed by the server after MS ms without a request
                         (a keep-alive timeout)
    close_reused         a normal answer when the request is the first on
                         its connection; read and closed without an answer
                         when it is the 2nd or later (a stale keep-alive
                         connection)

--record FILE: one JSON line per request whose body was read completely:
{"to":..., "ts_ms":..., "conn": connection number (from 1, in accept
order), "nth_on_conn": n (from 1), "mode": the mode applied ("ok" for a
close_reused request first on its connection or an @N entry used up),
"peer_port":..., "tls": bool}.

--backlog N: listen() backlog (default 128). --accept-delay-ms MS: accept
nothing for MS ms after start (connections wait in, or overflow, the
kernel's accept queue); with --accept-delay-from first, for MS ms from the
moment the first connection waits in the accept queue (a backlog overflow
at the start of a client's burst, whenever that comes). SIGUSR1 starts such
a pause again (MS from then).
"""
import argparse
import asyncio
import fnmatch
import json
import os
import signal
import socket
import ssl
import struct
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, default=0)
ap.add_argument("--port-file")
ap.add_argument("--record")
ap.add_argument("--plan", default="")
ap.add_argument("--cert")
ap.add_argument("--key")
ap.add_argument("--backlog", type=int, default=128)
ap.add_argument("--accept-delay-ms", type=int, default=0)
ap.add_argument("--accept-delay-from", choices=("start", "first"), default="start")
ap.add_argument("--quiet", action="store_true", help="no connection log on stderr")
A = ap.parse_args()

MODES_WITH_ARG = {"late", "idle_close_ms"}
MODES = MODES_WITH_ARG | {"ok", "close_after_read", "reset_mid_head", "close_after_headers",
                          "garbage_200", "empty_200", "close_reused"}


def parse_plan(spec):
    rules = []
    for entry in filter(None, (e.strip() for e in spec.split(";"))):
        if "=" not in entry:
            sys.exit("plan entry without '=': %r" % entry)
        left, pats = entry.split("=", 1)
        times = 0
        if "@" in left:
            left, n = left.split("@", 1)
            times = int(n)
        mode, _, arg = left.partition(":")
        if mode not in MODES:
            sys.exit("unknown mode %r in the plan" % mode)
        if (mode in MODES_WITH_ARG) != bool(arg):
            sys.exit("mode %r: %s" % (mode, "needs :MS" if mode in MODES_WITH_ARG else "takes no argument"))
        rules.append({"mode": mode, "arg": int(arg) if arg else 0, "times": times,
                      "pats": [p.strip().lstrip("+") for p in pats.split(",") if p.strip()]})
    return rules


RULES = parse_plan(A.plan)
HITS = {}  # (rule index, to) -> requests seen
REC = open(A.record, "a", buffering=1) if A.record else None
STATE = {"conns": 0, "pause_until": time.monotonic() + A.accept_delay_ms / 1000.0, "wamid": 0}


def log(msg):
    if not A.quiet:
        sys.stderr.write("%d %s\n" % (int(time.time() * 1000), msg))
        sys.stderr.flush()


def choose(to):
    """(mode, arg) for one request to this recipient, counting it."""
    t = to.lstrip("+")
    for i, r in enumerate(RULES):
        if any(fnmatch.fnmatchcase(t, p) for p in r["pats"]):
            k = (i, t)
            HITS[k] = HITS.get(k, 0) + 1
            if r["times"] and HITS[k] > r["times"]:
                return "ok", 0
            return r["mode"], r["arg"]
    return "ok", 0


def answer(status, reason, body, ctype="application/json", extra=""):
    b = body.encode() if isinstance(body, str) else body
    head = "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s\r\n" % (
        status, reason, ctype, len(b), extra)
    return head.encode() + b


def wa_error(status, code, msg):
    return answer(status, "Bad Request" if status == 400 else "Error", json.dumps(
        {"error": {"message": msg, "type": "OAuthException", "code": code,
                   "fbtrace_id": "FPtrace"}}, separators=(",", ":")))


def wa_ok(to):
    STATE["wamid"] += 1
    return answer(200, "OK", json.dumps(
        {"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to.lstrip("+")}],
         "messages": [{"id": "wamid.FP%08d.%s" % (STATE["wamid"], to.lstrip("+"))}]},
        separators=(",", ":")))


def rst(writer):
    sock = writer.get_extra_info("socket")
    try:
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    writer.transport.abort()


async def read_request(reader):
    """(method, path, headers, body), or None at EOF / on a broken request."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        return None
    hdrs = {}
    for ln in lines[1:]:
        if ":" in ln:
            k, v = ln.split(":", 1)
            hdrs[k.strip().lower()] = v.strip()
    if "chunked" in hdrs.get("transfer-encoding", "").lower():
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # no trailers expected
                break
            body += await reader.readexactly(size)
            await reader.readexactly(2)
    else:
        body = await reader.readexactly(int(hdrs.get("content-length", "0")))
    return parts[0], parts[1], hdrs, body


async def serve(reader, writer, conn, tls):
    peer = writer.get_extra_info("peername") or ("", 0)
    nth = 0
    idle_ms = 0
    why = "eof"
    try:
        while True:
            try:
                if idle_ms:
                    req = await asyncio.wait_for(read_request(reader), idle_ms / 1000.0)
                else:
                    req = await read_request(reader)
            except asyncio.TimeoutError:
                why = "idle close after %d ms" % idle_ms
                return
            if req is None:
                why = "bad request line"
                return
            method, path, hdrs, body = req
            nth += 1
            keep = hdrs.get("connection", "").lower() != "close"
            p = path.split("?")[0].split("/")
            if not (method == "POST" and len(p) == 4 and p[0] == "" and p[1].startswith("v")
                    and p[3] == "messages"):
                writer.write(answer(404, "Not Found", '{"error":"not found"}'))
                await writer.drain()
                continue
            auth = hdrs.get("authorization", "")
            if not auth.startswith("Bearer ") or len(auth) <= 7:
                writer.write(wa_error(401, 190, "Invalid OAuth access token"))
                await writer.drain()
                continue
            try:
                j = json.loads(body)
                to = j["to"]
                assert j.get("messaging_product") == "whatsapp" and isinstance(to, str)
            except (ValueError, KeyError, TypeError, AssertionError):
                writer.write(wa_error(400, 100, "Invalid parameter"))
                await writer.drain()
                continue
            mode, arg = choose(to)
            if mode == "close_reused" and nth == 1:
                mode = "ok"
            if REC:
                REC.write(json.dumps({"to": to, "ts_ms": int(time.time() * 1000), "conn": conn,
                                      "nth_on_conn": nth, "mode": mode if not arg else
                                      "%s:%d" % (mode, arg), "peer_port": peer[1],
                                      "tls": tls}) + "\n")
            log("conn %d #%d to=%s mode=%s%s" % (conn, nth, to, mode, ":%d" % arg if arg else ""))
            if mode in ("close_after_read", "close_reused"):
                why = mode
                return
            if mode == "reset_mid_head":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Ty")
                await writer.drain()
                await asyncio.sleep(0.02)
                rst(writer)
                why = mode
                return
            if mode == "close_after_headers":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: 120\r\n\r\n")
                await writer.drain()
                why = mode
                return
            if mode == "garbage_200":
                writer.write(answer(200, "OK", "<html>oops", "text/html"))
            elif mode == "empty_200":
                writer.write(answer(200, "OK", b""))
            else:
                if mode == "late":
                    await asyncio.sleep(arg / 1000.0)
                if mode == "idle_close_ms":
                    idle_ms = arg
                writer.write(wa_ok(to))
            await writer.drain()
            if not keep:
                why = "Connection: close"
                return
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError,
            ssl.SSLError, ValueError, OSError) as e:
        why = type(e).__name__
    finally:
        log("conn %d closed after %d requests: %s" % (conn, nth, why))
        if not writer.transport.is_closing():
            writer.close()


async def accepted(sock, ctx):
    loop = asyncio.get_running_loop()
    STATE["conns"] += 1
    conn = STATE["conns"]
    reader = asyncio.StreamReader(limit=1 << 22)
    proto = asyncio.StreamReaderProtocol(reader)
    try:
        transport, _ = await loop.connect_accepted_socket(
            lambda: proto, sock, ssl=ctx, ssl_handshake_timeout=10 if ctx else None)
    except (OSError, ssl.SSLError, asyncio.TimeoutError, ConnectionError) as e:
        log("conn %d: handshake failed: %s" % (conn, e))
        sock.close()
        return
    log("conn %d open from port %s" % (conn, transport.get_extra_info("peername")[1]))
    writer = asyncio.StreamWriter(transport, proto, reader, loop)
    await serve(reader, writer, conn, ctx is not None)


async def main():
    ctx = None
    if A.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(A.cert, A.key)
        ctx.set_alpn_protocols(["http/1.1"])
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", A.port))
    ls.listen(A.backlog)
    ls.setblocking(False)
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, lambda: stop.done() or stop.set_result(None))
    loop.add_signal_handler(signal.SIGUSR1, lambda: STATE.update(
        pause_until=time.monotonic() + A.accept_delay_ms / 1000.0))
    if A.port_file:
        tmp = A.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(ls.getsockname()[1]))
        os.rename(tmp, A.port_file)
    log("listening on 127.0.0.1:%d backlog %d%s" % (ls.getsockname()[1], A.backlog,
                                                  " tls" if ctx else ""))
    tasks = set()

    async def accept_loop():
        if A.accept_delay_ms and A.accept_delay_from == "first":
            first = loop.create_future()
            loop.add_reader(ls, lambda: first.done() or first.set_result(None))
            await first
            loop.remove_reader(ls)
            STATE["pause_until"] = time.monotonic() + A.accept_delay_ms / 1000.0
            log("a connection waits: accepting nothing for %d ms" % A.accept_delay_ms)
        while True:
            wait = STATE["pause_until"] - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            sock, _ = await loop.sock_accept(ls)
            t = asyncio.ensure_future(accepted(sock, ctx))
            tasks.add(t)
            t.add_done_callback(tasks.discard)

    acc = asyncio.ensure_future(accept_loop())
    await stop
    acc.cancel()
    for t in list(tasks):
        t.cancel()
    ls.close()


asyncio.run(main())
