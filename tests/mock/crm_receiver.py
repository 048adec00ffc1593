#!/usr/bin/env python3
"""A small CRM for the tests of the CRM feed: records every POST in arrival
order and can refuse or slow down chosen posts.

Each post is one JSON line in --record, written when it arrives (before any
delay): seq (arrival number), delivery (X-Omnicast-Delivery), event
(X-Omnicast-Event), key (X-Omnicast-Ordering-Key), signature, body (the raw
JSON) and status (the answer it gets).

Control, by a POST to /_control with a JSON object (answered 200):
  {"delay_ms": N}                 every answer waits N ms
  {"fail": {"KEY": N}}           the first post of ordering key KEY (the
                                 first delivery id seen for it) is answered
                                 500 N times; the key's other posts are not
                                 refused
  {"release": "KEY"}             KEY's posts are no longer refused
Only 127.0.0.1. Stopped by its PID.
"""
import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
state = {"seq": 0, "delay_ms": 0, "fail": {}, "first": {}, "failed": {}}
out = None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status):
        body = b"{}"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        if self.path == "/_control":
            ctl = json.loads(body or b"{}")
            with lock:
                if "delay_ms" in ctl:
                    state["delay_ms"] = int(ctl["delay_ms"])
                for k, v in (ctl.get("fail") or {}).items():
                    state["fail"][k] = int(v)
                    state["first"].pop(k, None)
                    state["failed"][k] = 0
                if ctl.get("release") in state["fail"]:
                    state["fail"][ctl["release"]] = 0
            self.answer(200)
            return
        key = self.headers.get("X-Omnicast-Ordering-Key", "")
        delivery = self.headers.get("X-Omnicast-Delivery", "")
        with lock:
            state["seq"] += 1
            seq = state["seq"]
            status = 200
            if key in state["fail"]:
                first = state["first"].setdefault(key, delivery)
                if first == delivery and state["failed"][key] < state["fail"][key]:
                    state["failed"][key] += 1
                    status = 500
            delay = state["delay_ms"]
            rec = {
                "seq": seq,
                "t": time.monotonic(),
                "path": self.path,
                "delivery": delivery,
                "event": self.headers.get("X-Omnicast-Event", ""),
                "key": key,
                "signature": self.headers.get("X-Omnicast-Signature", ""),
                "body": body.decode("utf-8", "replace"),
                "status": status,
            }
            out.write(json.dumps(rec) + "\n")
            out.flush()
        if delay:
            time.sleep(delay / 1000.0)
        self.answer(status)


def main():
    global out
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--record", required=True)
    a = ap.parse_args()
    out = open(a.record, "a")
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    with open(a.port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    import os
    os.rename(a.port_file + ".tmp", a.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
