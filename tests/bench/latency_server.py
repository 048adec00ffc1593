#!/usr/bin/env python3
"""A provider far away, for make bench-latency: a TLS server on 127.0.0.1
that answers every WhatsApp Cloud API send (POST .../messages) with 200
and a message id --delay-ms after it read the whole request, over HTTP/2
(python3-h2) or HTTP/1.1 keep-alive, whichever the client's ALPN asks for
(--alpn chooses what it offers). Each connection's count of requests goes
to --record as {"alpn", "requests"} when it ends; SIGTERM ends it."""
import argparse
import asyncio
import json
import signal
import ssl

import h2.config
import h2.connection
import h2.events
import h2.settings

ap = argparse.ArgumentParser()
ap.add_argument("--cert", required=True)
ap.add_argument("--key", required=True)
ap.add_argument("--port-file", required=True)
ap.add_argument("--record", required=True)
ap.add_argument("--delay-ms", type=int, default=100)
ap.add_argument("--alpn", default="h2,http/1.1")
ap.add_argument("--max-streams", type=int, default=128)
a = ap.parse_args()
delay = a.delay_ms / 1000.0
rec = open(a.record, "a", buffering=1)
n_conns = 0


def body(to):
    return json.dumps({"messaging_product": "whatsapp",
                       "contacts": [{"input": to, "wa_id": to.lstrip("+")}],
                       "messages": [{"id": "wamid.LAT.%s" % to.lstrip("+")}]}).encode()


class Conn(asyncio.Protocol):
    def connection_made(self, t):
        self.t, self.n, self.dead = t, 0, False
        self.alpn = t.get_extra_info("ssl_object").selected_alpn_protocol() or "http/1.1"
        self.buf = b""
        if self.alpn == "h2":
            self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
            self.h2.local_settings = h2.settings.Settings(client=False, initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: a.max_streams})
            self.h2.initiate_connection()
            self.t.write(self.h2.data_to_send())
            self.streams = {}

    def connection_lost(self, exc):
        self.dead = True
        rec.write(json.dumps({"alpn": self.alpn, "requests": self.n}) + "\n")

    def data_received(self, data):
        if self.alpn == "h2":
            for ev in self.h2.receive_data(data):
                if isinstance(ev, h2.events.RequestReceived):
                    self.streams[ev.stream_id] = b""
                elif isinstance(ev, h2.events.DataReceived):
                    self.streams[ev.stream_id] = self.streams.get(ev.stream_id, b"") + ev.data
                    self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    b = self.streams.pop(ev.stream_id, b"")
                    self.n += 1
                    asyncio.get_running_loop().call_later(delay, self.answer_h2, ev.stream_id, b)
            self.t.write(self.h2.data_to_send())
            return
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].decode("latin-1").split("\r\n")
            length = 0
            for line in head[1:]:
                k, _, v = line.partition(":")
                if k.strip().lower() == "content-length":
                    length = int(v.strip())
            if len(self.buf) < end + 4 + length:
                return
            b = self.buf[end + 4:end + 4 + length]
            self.buf = self.buf[end + 4 + length:]
            self.n += 1
            asyncio.get_running_loop().call_later(delay, self.answer_h1, b)

    def to(self, b):
        try:
            return json.loads(b)["to"]
        except (ValueError, KeyError, TypeError):
            return "?"

    def answer_h2(self, sid, b):
        if self.dead:
            return
        out = body(self.to(b))
        self.h2.send_headers(sid, [(":status", "200"), ("content-type", "application/json"),
                                   ("content-length", str(len(out)))])
        self.h2.send_data(sid, out, end_stream=True)
        self.t.write(self.h2.data_to_send())

    def answer_h1(self, b):
        if self.dead:
            return
        out = body(self.to(b))
        self.t.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                     % len(out) + out)


async def main():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    ctx.set_alpn_protocols(a.alpn.split(","))
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(Conn, "127.0.0.1", 0, ssl=ctx, backlog=512)
    with open(a.port_file, "w") as f:
        f.write(str(srv.sockets[0].getsockname()[1]))
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    await stop
    srv.close()


asyncio.run(main())
