#!/usr/bin/env python3
"""A TLS server that finishes each handshake and then resets the
connection (SO_LINGER 0) without an alert: what a client sees when a
server's alert is lost to its reset. Prints its port, runs until killed.

usage: tls_reset_server.py CERT KEY
"""
import socket
import ssl
import struct
import sys
import threading


def serve(ctx, conn):
    conn.settimeout(10)
    try:
        tls = ctx.wrap_socket(conn, server_side=True)
        # TLS 1.3: the client's Finished is in; wait for its first bytes
        # so that the reset meets unread data
        tls.recv(1)
        conn = tls
    except (OSError, ssl.SSLError):
        pass
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def main():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[1], sys.argv[2])
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    print(srv.getsockname()[1], flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(ctx, conn), daemon=True).start()

if __name__ == "__main__":
    main()
