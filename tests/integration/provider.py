"""What a mock provider (tests/mock/mock_provider.c) recorded, for judging
delivery guarantees by the provider's own count."""
import collections
import json
import urllib.parse


def counts(path, prefix=""):
    """Per recipient number (without '+') starting with prefix, of the
    WhatsApp and Twilio sends recorded in path: (requests, accepted), two
    Counters; accepted = answered 2xx. A record without the status the mock
    answered counts as accepted."""
    req, acc = collections.Counter(), collections.Counter()
    for line in open(path):
        r = json.loads(line)
        body = r.get("body") or ""
        if r["path"].endswith("/messages"):
            to = json.loads(body)["to"]
        elif r["path"].endswith("/Messages.json"):
            to = urllib.parse.parse_qs(body)["To"][0]
        else:
            continue
        to = to.lstrip("+")
        if not to.startswith(prefix):
            continue
        req[to] += 1
        if 200 <= r.get("status", 200) < 300:
            acc[to] += 1
    return req, acc
