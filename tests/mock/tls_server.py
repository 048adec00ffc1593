#!/usr/bin/env python3
"""A small HTTP/1.1-over-TLS server for the native client's TLS tests (on
127.0.0.1 only). Every request is answered 200 {"ok":true}; --mode says how:

  length      Content-Length, keep-alive (the ordinary case)
  eof-notify  no Content-Length (the body ends with the connection), then
              close_notify and close
  eof-bare    the same, then the TCP connection closed without close_notify

Each connection appends a line to --log: "conn reused=0|1 requests=N" (TLS
session resumption as the server saw it). Writes its port to --port-file."""
import argparse
import socket
import ssl
import threading

ap = argparse.ArgumentParser()
ap.add_argument("--cert", required=True)
ap.add_argument("--key", required=True)
ap.add_argument("--mode", default="length", choices=["length", "eof-notify", "eof-bare"])
ap.add_argument("--port-file", required=True)
ap.add_argument("--log", required=True)
a = ap.parse_args()

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(a.cert, a.key)
lock = threading.Lock()
BODY = b'{"ok":true}'


def read_request(s, buf):
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            return None, buf
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    n = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            n = int(v.strip())
    while len(rest) < n:
        d = s.recv(65536)
        if not d:
            return None, rest
        rest += d
    return head, rest[n:]


def serve(raw):
    raw.settimeout(30)
    try:
        s = ctx.wrap_socket(raw, server_side=True)
    except (ssl.SSLError, OSError):
        raw.close()
        return
    n, buf = 0, b""
    try:
        while True:
            head, buf = read_request(s, buf)
            if head is None:
                break
            n += 1
            if a.mode == "length":
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY))
                continue
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" + BODY)
            if a.mode == "eof-notify":
                try:
                    s.unwrap()  # close_notify
                except (ssl.SSLError, OSError):
                    pass
            break
    except (ssl.SSLError, OSError):
        pass
    finally:
        with lock, open(a.log, "a") as f:
            f.write("conn reused=%d requests=%d\n" % (1 if s.session_reused else 0, n))
        # SSLSocket.close() sends no close_notify (only unwrap does)
        s.close()


srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(128)
with open(a.port_file, "w") as f:
    f.write(str(srv.getsockname()[1]))
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
