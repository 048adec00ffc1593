#!/usr/bin/env python3
"""TLS in front of a local mock provider: accepts TLS connections on
127.0.0.1 with --cert/--key (ALPN offers http/1.1 only), and pipes the
decrypted bytes to 127.0.0.1:--backend and back, so the mock provider's
wire format and recording stay the same over https. Writes its port to
--port-file. Every connection is closed when either side closes."""
import argparse
import asyncio
import ssl

ap = argparse.ArgumentParser()
ap.add_argument("--cert", required=True)
ap.add_argument("--key", required=True)
ap.add_argument("--backend", type=int, required=True)
ap.add_argument("--port-file", required=True)
a = ap.parse_args()

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(a.cert, a.key)
ctx.set_alpn_protocols(["http/1.1"])


async def pipe(r, w):
    try:
        while True:
            data = await r.read(65536)
            if not data:
                break
            w.write(data)
            await w.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        w.close()


async def serve(cr, cw):
    try:
        br, bw = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", a.backend), 10)
    except (OSError, asyncio.TimeoutError):
        cw.close()
        return
    await asyncio.gather(pipe(cr, bw), pipe(br, cw))


async def main():
    srv = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=ctx)
    with open(a.port_file, "w") as f:
        f.write(str(srv.sockets[0].getsockname()[1]))
    async with srv:
        await srv.serve_forever()


asyncio.run(main())
