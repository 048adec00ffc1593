#!/usr/bin/env python3
"""A webhook receiver that reads slowly: it accepts connections on
127.0.0.1, waits --delay seconds before reading each request (so a big
request fills the client's socket buffers and the client must wait for
the socket to become writable), then reads the whole request and answers
200 with a JSON body. Writes its port to --port-file and one line per
request (the body's length) to --record."""
import argparse, socket, time

ap = argparse.ArgumentParser()
ap.add_argument("--port-file", required=True)
ap.add_argument("--record", required=True)
ap.add_argument("--delay", type=float, default=1.0)
a = ap.parse_args()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(16)
with open(a.port_file, "w") as f:
    f.write(str(s.getsockname()[1]))
while True:
    c, _ = s.accept()
    c.settimeout(30)
    try:
        while True:
            time.sleep(a.delay)
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = c.recv(65536)
                if not chunk:
                    raise EOFError
                buf += chunk
            head, body = buf.split(b"\r\n\r\n", 1)
            n = 0
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    n = int(v)
            while len(body) < n:
                chunk = c.recv(1 << 20)
                if not chunk:
                    raise EOFError
                body += chunk
            with open(a.record, "a") as f:
                f.write("%d\n" % len(body))
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 11\r\n\r\n{\"ok\":true}")
    except (EOFError, OSError):
        c.close()
