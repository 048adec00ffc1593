#!/usr/bin/env python3
"""An HTTP/2-over-TLS provider (ALPN h2, 127.0.0.1 only, python3-h2) for the
native HTTP/2 client's tests. It answers WhatsApp Cloud API sends
(POST .../messages, {"to": ...}) with 200 and a message id, and misbehaves
on the recipients --plan names, each the first time it sees them:

  goaway:to=X   answer X, then hold every later stream for half a second,
                send GOAWAY with last_stream_id = X's stream, never process
                the held ones, close the connection half a second later
  refuse:to=X   RST_STREAM REFUSED_STREAM (not processed: safe to retry)
  rst:to=X      the whole request read (processed), then RST_STREAM
                INTERNAL_ERROR instead of an answer
  close:to=X    the whole request read (processed), then the connection cut
  late:to=X:ms=N  processed, answered N ms later (after the client's timeout)

--max-streams N says SETTINGS_MAX_CONCURRENT_STREAMS = N. Every request is
a line in --record: {"ev": "processed"|"refused"|"ignored", "to", "sid",
"conn", "path"}, a processed one with "max_open" (the most streams its
connection had open at once so far); each connection's end is a line {"ev": "conn", "conn",
"max_open"} (the most streams it had open at once), and a GOAWAY from the
client is {"ev": "goaway", "conn", "code", "last", "open"}. Port in
--port-file."""
import argparse
import asyncio
import itertools
import json
import ssl

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

ap = argparse.ArgumentParser()
ap.add_argument("--cert", required=True)
ap.add_argument("--key", required=True)
ap.add_argument("--port-file", required=True)
ap.add_argument("--record", required=True)
ap.add_argument("--plan", default="")
ap.add_argument("--max-streams", type=int, default=100)
a = ap.parse_args()

plan = {}
for item in filter(None, a.plan.split(",")):
    kind, *opts = item.split(":")
    o = dict(x.split("=", 1) for x in opts)
    plan[o["to"].lstrip("+")] = (kind, int(o.get("ms", "0")))
used = set()
rec = open(a.record, "a", buffering=1)
conn_ids = itertools.count(1)


def record(**kw):
    rec.write(json.dumps(kw) + "\n")


class Conn(asyncio.Protocol):
    def __init__(self):
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        self.id = next(conn_ids)
        self.streams = {}
        self.open = set()
        self.max_open = 0
        self.hold_after = None  # GOAWAY pending: streams above this are held
        self.dead = False

    def connection_made(self, transport):
        self.t = transport
        self.h2.local_settings = h2.settings.Settings(client=False, initial_values={
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: a.max_streams,
            h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: 65536})
        self.h2.initiate_connection()
        self.flush()

    def flush(self):
        if not self.dead:
            self.t.write(self.h2.data_to_send())

    def connection_lost(self, exc):
        self.dead = True
        record(ev="conn", conn=self.id, max_open=self.max_open)

    def data_received(self, data):
        if self.dead:
            return
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.flush()
            return
        for ev in events:
            if isinstance(ev, h2.events.RequestReceived):
                self.streams[ev.stream_id] = {"headers": dict(ev.headers), "body": b""}
                self.open.add(ev.stream_id)
                self.max_open = max(self.max_open, len(self.open))
            elif isinstance(ev, h2.events.DataReceived):
                s = self.streams.get(ev.stream_id)
                if s is not None:
                    s["body"] += ev.data
                self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                self.request(ev.stream_id)
            elif isinstance(ev, h2.events.StreamReset):
                self.open.discard(ev.stream_id)
            elif isinstance(ev, h2.events.ConnectionTerminated):
                # the client's GOAWAY (an idle connection it ends)
                record(ev="goaway", conn=self.id, code=int(ev.error_code),
                       last=ev.last_stream_id, open=len(self.open))
        self.flush()

    def answer(self, sid, to):
        if self.dead:
            return
        body = json.dumps({"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}],
                           "messages": [{"id": "wamid.H2.%d.%d.%s" % (self.id, sid, to)}]}).encode()
        try:
            self.h2.send_headers(sid, [(":status", "200"), ("content-type", "application/json"),
                                       ("content-length", str(len(body)))])
            self.h2.send_data(sid, body, end_stream=True)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            pass
        self.open.discard(sid)
        self.flush()

    def request(self, sid):
        s = self.streams.pop(sid)
        path = s["headers"].get(":path", "")
        try:
            to = json.loads(s["body"])["to"].lstrip("+")
        except (ValueError, KeyError, TypeError):
            to = ""
        if self.hold_after is not None and sid > self.hold_after:
            record(ev="ignored", to=to, sid=sid, conn=self.id, path=path)
            return
        kind, ms = plan.get(to, ("", 0))
        if to in used:
            kind = ""
        used.add(to)
        if kind == "refuse":
            record(ev="refused", to=to, sid=sid, conn=self.id, path=path)
            self.h2.reset_stream(sid, h2.errors.ErrorCodes.REFUSED_STREAM)
            self.open.discard(sid)
            return
        record(ev="processed", to=to, sid=sid, conn=self.id, path=path, plan=kind,
               max_open=self.max_open)
        loop = asyncio.get_running_loop()
        if kind == "rst":
            self.h2.reset_stream(sid, h2.errors.ErrorCodes.INTERNAL_ERROR)
            self.open.discard(sid)
        elif kind == "close":
            self.flush()
            self.dead = True
            self.t.abort()
        elif kind == "late":
            loop.call_later(ms / 1000, self.answer, sid, to)
        else:
            self.answer(sid, to)
            if kind == "goaway":
                self.hold_after = sid
                loop.call_later(0.5, self.goaway, sid)

    def goaway(self, last):
        if self.dead:
            return
        self.h2.close_connection(last_stream_id=last)
        self.flush()
        asyncio.get_running_loop().call_later(0.5, self.close)

    def close(self):
        if not self.dead:
            self.t.close()


async def main():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    ctx.set_alpn_protocols(["h2"])
    srv = await asyncio.get_running_loop().create_server(Conn, "127.0.0.1", 0, ssl=ctx, backlog=128)
    with open(a.port_file, "w") as f:
        f.write(str(srv.sockets[0].getsockname()[1]))
    await srv.serve_forever()


asyncio.run(main())
