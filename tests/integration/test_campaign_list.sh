#!/bin/bash
# GET /v1/campaigns: a few campaigns through the outbox connector, then the
# list equals what Redis holds (newest first, counters as numbers), the
# state filter, paging with the next cursor, 400 on a bad query, 401
# without a token.
source "$(dirname "$0")/lib.sh"

start_redis
HTTP_PORT=$(free_port)
echo "t0ken-list" >"$T/tokens"
daemon_conf "$T/omni.conf" "
http_listen = 127.0.0.1:$HTTP_PORT
api_tokens_file = $T/tokens

[connector.out]
type = outbox
path = $T/out.jsonl

[channels]
sms = out"
start_daemon "$T/omni.conf"
B="http://127.0.0.1:$HTTP_PORT"
api() { curl -s -H "Authorization: Bearer t0ken-list" "$B$1"; }
code() { curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer t0ken-list" "$B$1"; }

for i in 1 2 3 4 5; do
  enqueue "{\"type\":\"broadcast\",\"id\":\"l$i\",\"channel\":\"sms\",\"message\":{\"text\":\"x\"},\"recipients\":[{\"to\":\"+155500000$i\"},{\"to\":\"+155500001$i\"}]}"
  wait_for 30 campaign_done "l$i"
done
# one scheduled far ahead: it stays scheduled for the whole test
at=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
enqueue "{\"type\":\"broadcast\",\"id\":\"later\",\"channel\":\"sms\",\"send_at\":\"$at\",\"message\":{\"text\":\"x\"},\"recipients\":[{\"to\":\"+15550000099\"}]}"
wait_for 30 campaign_done later scheduled
wait_for 20 curl -sf "$B/readyz"

# what Redis holds, newest first, against the whole list
for k in $(rraw --scan --pattern 'omni:campaign:*'); do
  case "$k" in *:rcpt) continue ;; esac
  id=${k#omni:campaign:}
  echo "$id $(campaign_field "$id" created_at) $(campaign_field "$id" state) $(campaign_field "$id" total) $(campaign_field "$id" sent)"
done >"$T/redis.txt"
[ "$(wc -l <"$T/redis.txt")" -eq 6 ] || fail "expected 6 campaigns in Redis: $(cat "$T/redis.txt")"
api /v1/campaigns >"$T/all.json" || fail "GET /v1/campaigns"
python3 - "$T/all.json" "$T/redis.txt" <<'PY' || fail "the list does not match Redis: $(cat "$T/all.json")"
import json, sys
a = json.load(open(sys.argv[1]))
rows = [l.split() for l in open(sys.argv[2])]
want = sorted(rows, key=lambda r: (int(r[1]), r[0]), reverse=True)
got = a["campaigns"]
assert a["next"] is None and a["truncated"] is False, a
assert [c["id"] for c in got] == [r[0] for r in want], ([c["id"] for c in got], want)
for c, r in zip(got, want):
    assert c["created_at"] == int(r[1]) and c["state"] == r[2], (c, r)
    assert c["total"] == int(r[3]) and c["sent"] == int(r[4]), (c, r)
    assert c["type"] == "broadcast" and "spec" not in c, c
    assert isinstance(c["failed"], int) and isinstance(c["pending"], int), c
assert got[0]["id"] == "later" and got[0]["state"] == "scheduled", got[0]
assert got[1]["id"] == "l5" and got[1]["sent"] == 2 and isinstance(got[1]["finished_at"], int), got[1]
PY
ok "GET /v1/campaigns: every campaign Redis holds, newest first, numbers as numbers"

api '/v1/campaigns?state=scheduled' | python3 -c '
import json, sys; a = json.load(sys.stdin)
assert [c["id"] for c in a["campaigns"]] == ["later"], a' || fail "state=scheduled"
api '/v1/campaigns?state=done' | python3 -c '
import json, sys; a = json.load(sys.stdin)
assert [c["id"] for c in a["campaigns"]] == ["l5", "l4", "l3", "l2", "l1"], a' || fail "state=done"
api '/v1/campaigns?state=paused' | python3 -c '
import json, sys; a = json.load(sys.stdin)
assert a["campaigns"] == [] and a["next"] is None, a' || fail "state=paused"
ok "state filter"

# pages of 2 with the next cursor walk every done campaign once, in order
ids=""
url='/v1/campaigns?state=done&limit=2'
for page in 1 2 3 4; do
  api "$url" >"$T/page$page.json" || fail "page $page"
  ids="$ids $(python3 -c 'import json,sys; print(" ".join(c["id"] for c in json.load(open(sys.argv[1]))["campaigns"]))' "$T/page$page.json")"
  next=$(python3 -c 'import json,sys; n=json.load(open(sys.argv[1]))["next"]; print(n or "")' "$T/page$page.json")
  [ -n "$next" ] || break
  url="/v1/campaigns?state=done&limit=2&cursor=$(python3 -c 'import urllib.parse,sys; print(urllib.parse.quote(sys.argv[1]))' "$next")"
done
[ "$(echo $ids)" = "l5 l4 l3 l2 l1" ] || fail "paging gave: $ids"
[ "$page" = 3 ] || fail "paging took $page pages"
ok "paging: limit=2 and next, three pages, each campaign once"

for bad in 'limit=0' 'limit=501' 'limit=abc' 'limit=' 'state=bogus' 'cursor=nope' 'cursor=12:bad%20id'; do
  c=$(code "/v1/campaigns?$bad")
  [ "$c" = 400 ] || fail "?$bad answered $c"
done
api '/v1/campaigns?limit=0' | q '"limit: must be' || fail "400 without its reason"
api '/v1/campaigns?state=bogus' | q '"state: must be' || fail "400 without its reason"
[ "$(code '/v1/campaigns?limit=500')" = 200 ] || fail "limit=500 refused"
c=$(curl -s -o /dev/null -w '%{http_code}' "$B/v1/campaigns")
[ "$c" = 401 ] || fail "no token answered $c"
c=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer wrong" "$B/v1/campaigns")
[ "$c" = 401 ] || fail "a wrong token answered $c"
c=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer t0ken-list" "$B/v1/campaigns")
[ "$c" = 405 ] || fail "POST answered $c"
ok "400 with a reason on a bad limit, state or cursor; 401 without a token; 405 on POST"

# the pages above came from the index (omni:campaigns, written by
# create.lua; the daemon found no older campaigns to add and marked it)
marked() { [ "$(rraw EXISTS omni:campaigns:indexed)" = 1 ]; }
wait_for 20 marked
[ "$(rraw ZCARD omni:campaigns)" = 6 ] || fail "index: $(rraw ZRANGE omni:campaigns 0 -1 WITHSCORES | tr '\n' ' ')"
[ "$(rraw ZSCORE omni:campaigns l3)" = "$(campaign_field l3 created_at)" ] || fail "index score of l3"

# 1,200 more campaigns (hashes written straight into Redis, older than the
# rest, as campaigns from before the index: the mark removed) take several
# SCAN steps: pages of 500 still walk all 1,206 once, newest first
rcli DEL omni:campaigns:indexed >/dev/null
python3 - <<'PY' | redis-cli -p "$REDIS_PORT" --pipe >/dev/null
for i in range(1, 1201):
    args = ["HSET", "omni:campaign:f%04d" % i, "id", "f%04d" % i, "type", "broadcast",
            "state", "done", "total", "1", "sent", "1", "created_at", str(1000 + i // 2)]
    out = "*%d\r\n" % len(args) + "".join("$%d\r\n%s\r\n" % (len(a), a) for a in args)
    print(out, end="")
PY
rm -f "$T/walk.txt"
url='/v1/campaigns?limit=500'
for page in 1 2 3 4 5; do
  api "$url" >"$T/big$page.json" || fail "big page $page"
  next=$(python3 - "$T/big$page.json" "$T/walk.txt" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))
assert a["truncated"] is False, a["truncated"]
with open(sys.argv[2], "a") as f:
    for c in a["campaigns"]:
        f.write("%d %s\n" % (c["created_at"], c["id"]))
print(a["next"] or "")
PY
) || fail "big page $page: $(head -c 300 "$T/big$page.json")"
  [ -n "$next" ] || break
  url="/v1/campaigns?limit=500&cursor=$next"
done
[ "$page" = 3 ] || fail "1,206 campaigns took $page pages of 500"
python3 - "$T/walk.txt" <<'PY' || fail "the walk over 1,206 campaigns is wrong"
import sys
rows = [l.split() for l in open(sys.argv[1])]
keys = [(int(t), i) for t, i in rows]
assert len(keys) == 1206 and len(set(i for _, i in keys)) == 1206, len(keys)
assert keys == sorted(keys, reverse=True)
assert keys[-1] == (1000, "f0001"), keys[-1]
PY
ok "1,206 campaigns over several SCAN steps: three pages of 500, each once, newest first"

# a restarted daemon adds them to the index (the one-time backfill), marks
# it, and the same walk comes from the index; ties in created_at (two
# campaigns a millisecond) page by id
stop_daemon
start_daemon "$T/omni.conf"
wait_for 30 marked
[ "$(rraw ZCARD omni:campaigns)" = 1206 ] || fail "backfill: $(rraw ZCARD omni:campaigns) in the index"
wait_for 20 curl -sf "$B/readyz"
mv "$T/walk.txt" "$T/walk-scan.txt"
url='/v1/campaigns?limit=500'
for page in 1 2 3 4 5; do
  api "$url" >"$T/idx$page.json" || fail "index page $page"
  next=$(python3 - "$T/idx$page.json" "$T/walk.txt" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))
assert a["truncated"] is False, a["truncated"]
with open(sys.argv[2], "a") as f:
    for c in a["campaigns"]:
        f.write("%d %s\n" % (c["created_at"], c["id"]))
print(a["next"] or "")
PY
) || fail "index page $page: $(head -c 300 "$T/idx$page.json")"
  [ -n "$next" ] || break
  url="/v1/campaigns?limit=500&cursor=$next"
done
[ "$page" = 3 ] || fail "1,206 campaigns took $page pages of 500 from the index"
cmp -s "$T/walk.txt" "$T/walk-scan.txt" || fail "the index walk differs from the scan's"
# small pages through the ties: limit=3 from the oldest ones
ids=""
url='/v1/campaigns?limit=3&cursor=1003:zzz'
for page in 1 2 3; do
  api "$url" >"$T/tie$page.json"
  ids="$ids $(python3 -c 'import json,sys; print(" ".join(c["id"] for c in json.load(open(sys.argv[1]))["campaigns"]))' "$T/tie$page.json")"
  next=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["next"] or "")' "$T/tie$page.json")
  [ -n "$next" ] || break
  url="/v1/campaigns?limit=3&cursor=$next"
done
[ "$(echo $ids)" = "f0007 f0006 f0005 f0004 f0003 f0002 f0001" ] || fail "tie paging gave: $ids"
# omnicast campaigns reads the index too: every campaign, newest first
"$OMNI_BUILD/omnicast" --redis "redis://127.0.0.1:$REDIS_PORT/0" --json campaigns >"$T/cli.json"
python3 - "$T/cli.json" "$T/walk.txt" <<'PY' || fail "omnicast campaigns from the index"
import json, sys
got = [json.loads(l)["id"] for l in open(sys.argv[1])]
want = [l.split()[1] for l in open(sys.argv[2])]
assert got == want, (got[:5], want[:5], len(got), len(want))
PY
ok "the index: create.lua adds each campaign, a restart backfills older ones; the same pages, ties paged by id"

# Redis gone: 503, not an empty list
stop_redis
c=$(code /v1/campaigns)
[ "$c" = 503 ] || fail "without Redis answered $c"
ok "503 without Redis"

stop_daemon
check_logs_clean
