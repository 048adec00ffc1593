"""Redis protocol for the integration tests: commands written to stdout in
RESP, for `redis-cli --pipe` (bulk seeding without a client library)."""
import sys

_out = sys.stdout.buffer


def cmd(*args):
    """Write one command; every argument is sent as a bulk string."""
    _out.write(b"*%d\r\n" % len(args))
    for a in args:
        a = str(a).encode()
        _out.write(b"$%d\r\n%s\r\n" % (len(a), a))
