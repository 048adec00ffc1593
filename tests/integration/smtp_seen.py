"""What tests/mock/smtp_server.py saw, for the Python checks of the SMTP
tests: msgs(T, NAME) the messages it accepted under T/NAME (each its .json
with "data", the .eml's bytes), oldest first; conns(T, NAME) its connection
records (conns.jsonl), [] when none ended; readers(T): both, bound to T."""
import glob
import json
import os


def msgs(T, name):
    out = []
    for f in sorted(glob.glob("%s/%s/*.json" % (T, name))):
        j = json.load(open(f))
        j["data"] = open(f[:-5] + ".eml", "rb").read()
        out.append(j)
    return out


def conns(T, name):
    p = "%s/%s/conns.jsonl" % (T, name)
    return [json.loads(l) for l in open(p)] if os.path.exists(p) else []


def readers(T):
    return (lambda name: msgs(T, name)), (lambda name: conns(T, name))
