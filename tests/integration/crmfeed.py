"""Helpers of test_crm_order: conversation events to add to the stream, and
the checks of what the CRM receiver (tests/mock/crm_receiver.py) recorded.

  crmfeed.py gen PREFIX SEED KEY:START:COUNT ...
      XADD commands (RESP, for redis-cli --pipe) adding COUNT events of
      each key, numbered from START, the keys interleaved at random but
      each key's events in their order. A key "cv..." is a conversation
      (conversation.created first, then message.* events); "mail:NAME" an
      event without a conversation (contact.bounced of NAME@example.com on
      channel email).
  crmfeed.py check RECORD KEY:COUNT ...
      every event 0..COUNT-1 of each key was accepted (a 2xx) at least
      once, and no post of an event arrived before every earlier event of
      its key had been accepted. Prints a summary; exit 1 with the reason.
"""
import json
import random
import sys


def okey(k):
    if k.startswith("mail:"):
        return "contact:email:%s@example.com" % k[5:]
    return "conversation:" + k


def gen(prefix, seed, specs):
    from resp import cmd

    rnd = random.Random(seed)
    todo = []
    for s in specs:
        k, start, count = s.rsplit(":", 2)
        todo.append([k, int(start), int(start) + int(count)])
    while todo:
        t = rnd.choice(todo)
        k, i = t[0], t[1]
        t[1] += 1
        if t[1] >= t[2]:
            todo.remove(t)
        if k.startswith("mail:"):
            name = k[5:]
            d = {"type": "contact.bounced", "channel": "email", "contact": name + "@example.com",
                 "campaign": prefix, "via": "dsn", "error": "5.1.1 #%d" % i, "i": i,
                 "at": 1732000000000 + i}
        else:
            typ = "conversation.created" if i == 0 else rnd.choice(
                ["message.received", "message.sent", "message.delivered"])
            d = {"type": typ, "conversation_id": k, "channel": "whatsapp",
                 "contact": "+1555%07d" % (sum(k.encode()) % 10000000), "text": "m%d" % i, "i": i,
                 "campaign": prefix, "at": 1732000000000 + i}
        cmd("XADD", "omni:conversations", "*", "event", d["type"], "data",
            json.dumps(d, separators=(",", ":")))


def load(path):
    recs = []
    for line in open(path):
        r = json.loads(line)
        if r["path"] != "/crm":
            continue
        d = json.loads(r["body"])
        k = d.get("conversation_id") or "mail:" + d["contact"].split("@")[0]
        r["k"], r["i"] = k, d["i"]
        recs.append(r)
    recs.sort(key=lambda r: r["seq"])
    return recs


def check(path, specs):
    recs = load(path)
    want = {}
    for s in specs:
        k, n = s.rsplit(":", 1)
        want[k] = int(n)
    accepted = {}  # (k, i) -> seq of the first 2xx
    for r in recs:
        if r["k"] not in want:
            continue
        if r["key"] != okey(r["k"]):
            sys.exit("event %s/%d came with ordering key %r" % (r["k"], r["i"], r["key"]))
        for j in range(r["i"]):
            if (r["k"], j) not in accepted:
                sys.exit("event %s/%d was posted (arrival %d) before %s/%d was accepted"
                         % (r["k"], r["i"], r["seq"], r["k"], j))
        if r["status"] < 300:
            accepted.setdefault((r["k"], r["i"]), r["seq"])
    for k, n in want.items():
        for i in range(n):
            if (k, i) not in accepted:
                sys.exit("event %s/%d never accepted" % (k, i))
    posts = sum(1 for r in recs if r["k"] in want)
    print("%d events of %d keys in order, %d posts" % (len(accepted), len(want), posts))


if __name__ == "__main__":
    if sys.argv[1] == "gen":
        gen(sys.argv[2], int(sys.argv[3]), sys.argv[4:])
    else:
        check(sys.argv[2], sys.argv[3:])
