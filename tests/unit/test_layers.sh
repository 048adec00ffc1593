#!/usr/bin/env bash
# The layering rule of docs/architecture.md: a file never includes the
# header of a module in a layer above its own. Each daemon module (the .c
# and its .h) has a rank; "X.h" included by a module of a lower rank fails
# the test. A module missing from the table fails too, so a new file gets
# its place on purpose.
set -u
SRC=${OMNI_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}

declare -A rank=(
  # 0: pure logic and the building blocks (no context, no stage)
  [clock]=0 [log]=0 [address]=0 [job]=0 [template]=0 [ratelimit]=0 [verdict]=0
  [seen]=0 [uncertain]=0 [counters]=0 [config]=0 [scripts]=0 [store]=0 [h1]=0
  [transport]=0 [registry]=0 [quiet]=0 [keys]=0 [redisurl]=0 [jsontmpl]=0 [h1parse]=0 [sentinel]=0
  [transport]=0 [registry]=0 [quiet]=0 [keys]=0 [redisurl]=0 [jsontmpl]=0 [h1parse]=0
  [redistls]=0 [rconn]=0 [export]=0 [scopes]=0 [smtpc]=0 [smtpproto]=0 [tlsclient]=0 [netio]=0 [h2]=0 [jfast]=0 [digits]=0
  # 1: the context and what sits right above Redis and the connectors
  [omni]=1 [stream]=1 [conn]=1
  # 2..5: the stages, in the order of the data path
  [queue]=2 [campaign]=3 [render]=4 [dispatch]=5
  # 6: beside the data path: inbound events, CRM, sweep, HTTP, metrics
  [conv]=6 [crm]=6 [sweep]=6 [http]=6 [metrics]=6 [http_framing]=0 [http_internal]=6 [webhooks]=6 [api]=6 [ui]=6 [admin]=6
  # 7: the programs that wire everything
  [main]=7 [cli]=7
)

bad=0
for f in "$SRC"/daemon/*.c "$SRC"/daemon/*.h; do
  mod=$(basename "$f"); mod=${mod%.*}
  if [ -z "${rank[$mod]+x}" ]; then
    echo "FAIL: daemon/$(basename "$f"): module '$mod' has no layer in $0"
    bad=1
    continue
  fi
  while read -r inc; do
    dep=${inc%.h}
    [ -n "${rank[$dep]+x}" ] || continue # system, connector ABI
    if [ "${rank[$dep]}" -gt "${rank[$mod]}" ]; then
      echo "FAIL: daemon/$(basename "$f") (layer ${rank[$mod]}) includes $inc (layer ${rank[$dep]})"
      bad=1
    fi
  done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([a-z0-9_]*\.h\)".*/\1/p' "$f")
done
# the intake in particular knows no stage: its handlers are registered
if grep -Eq '(campaign|dispatch)_[a-z_]*\(' "$SRC/daemon/queue.c"; then
  echo "FAIL: daemon/queue.c calls a campaign_/dispatch_ function"
  bad=1
fi
[ $bad -eq 0 ] && echo "ok: no daemon file includes a layer above its own"
exit $bad
