#!/usr/bin/python3
"""A real SMTP server for tests (python3-aiosmtpd from Debian), on 127.0.0.1.

Saves each accepted message as OUTDIR/<seq>.eml (the DATA exactly as
received) and OUTDIR/<seq>.json (envelope). Can refuse recipients and
temp-fail the first N messages. With --data-reply-file F, while F has a
line, DATA is answered with its first line instead (a real server's words,
e.g. "550 5.7.26 ..."): the line is used once and removed, unless it starts
with "*" (then it stays, without the "*", until the file changes).
Every refused DATA is counted in OUTDIR/refused.log (one line each).

  smtp_sink.py --port-file F --outdir DIR [--port N] [--reject-rcpt ADDR=CODE]...
               [--tempfail-first N] [--data-reply-file F]
"""
import argparse
import asyncio
import json
import os
import signal

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, outdir, reject, tempfail, reply_file=None):
        self.outdir, self.reject, self.tempfail, self.seq = outdir, reject, tempfail, 0
        self.reply_file = reply_file

    def scripted_reply(self):
        if not self.reply_file or not os.path.exists(self.reply_file):
            return None
        with open(self.reply_file) as f:
            lines = [l.rstrip("\r\n") for l in f if l.strip()]
        if not lines:
            return None
        line = lines[0]
        if line.startswith("*"):
            return line[1:]
        with open(self.reply_file + ".tmp", "w") as f:
            f.write("".join(l + "\n" for l in lines[1:]))
        os.rename(self.reply_file + ".tmp", self.reply_file)
        return line

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        code = self.reject.get(address.lower())
        if code:
            return "%d 5.1.1 <%s>: Recipient address rejected" % (code, address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        line = self.scripted_reply()
        if line:
            with open(os.path.join(self.outdir, "refused.log"), "a") as f:
                f.write("%s %s\n" % (",".join(envelope.rcpt_tos), line.split(" ")[0]))
            return line
        if self.tempfail > 0:
            self.tempfail -= 1
            return "451 4.3.0 Try again later"
        self.seq += 1
        base = os.path.join(self.outdir, "%06d" % self.seq)
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.rename(base + ".eml.tmp", base + ".eml")
        with open(base + ".json", "w") as f:
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                       "size": len(envelope.original_content or b"")}, f)
        return "250 2.0.0 Ok: queued as %06d" % self.seq


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--outdir", required=True)
    ap.add_argument("--reject-rcpt", action="append", default=[])
    ap.add_argument("--tempfail-first", type=int, default=0)
    ap.add_argument("--data-reply-file")
    a = ap.parse_args()
    reject = {}
    for r in a.reject_rcpt:
        addr, code = r.rsplit("=", 1)
        reject[addr.lower()] = int(code)
    os.makedirs(a.outdir, exist_ok=True)
    port = a.port
    if port == 0:
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
    c = Controller(Sink(a.outdir, reject, a.tempfail_first, a.data_reply_file), hostname="127.0.0.1", port=port,
                   decode_data=False)
    c.start()
    with open(a.port_file + ".tmp", "w") as f:
        f.write("%d\n" % port)
    os.rename(a.port_file + ".tmp", a.port_file)
    loop = asyncio.new_event_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    loop.run_until_complete(stop)
    c.stop()


if __name__ == "__main__":
    main()
