#!/bin/bash
# Scoped API tokens (issue 20 point 5): api_tokens_file lines "TOKEN
# scope,..."; each token against every /v1 route: the scope the route needs
# lets the request through to its route, a token without it gets 403
# insufficient_scope and nothing happens in Redis; a token without scopes
# keeps full access; a /v1 route without a scope row needs admin; 401
# comes before 403; an unknown scope stops the daemon at start with
# file:line and no part of the line in the log.
source "$(dirname "$0")/lib.sh"

start_redis
HTTP_PORT=$(free_port)
cat >"$T/tokens" <<'TOK'
# full access (no scopes), then one token per scope, then two scopes
tok-full
tok-send   send
tok-read	read
tok-control control
tok-agent agent
tok-admin admin
tok-rc read , control
TOK
chmod 0600 "$T/tokens"
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
wait_for 20 curl -sf "$B/readyz"

# call TOKEN METHOD PATH [BODY]: the status; the body in $T/body.json
call() {
  local tok=$1 m=$2 p=$3 body=${4:-}
  if [ "$m" = POST ]; then
    curl -s -o "$T/body.json" -w '%{http_code}' -X POST -H "Authorization: Bearer $tok" \
      -H 'Content-Type: application/json' --data-binary "$body" "$B$p"
  else
    curl -s -o "$T/body.json" -w '%{http_code}' -H "Authorization: Bearer $tok" "$B$p"
  fi
}
# denied TOKEN METHOD PATH SCOPE [BODY]: 403 insufficient_scope naming SCOPE
denied() {
  local tok=$1 m=$2 p=$3 scope=$4 body=${5:-}
  local st
  st=$(call "$tok" "$m" "$p" "$body")
  [ "$st" = 403 ] || fail "$tok $m $p: $st, want 403: $(cat "$T/body.json")"
  local want="{\"error\":{\"code\":\"insufficient_scope\",\"message\":\"this route needs scope $scope, which the token does not have\"}}"
  [ "$(cat "$T/body.json")" = "$want" ] || fail "$tok $m $p: bad 403 body: $(cat "$T/body.json")"
}
# allowed TOKEN METHOD PATH WANT [BODY]: the route answered WANT
allowed() {
  local tok=$1 m=$2 p=$3 want=$4 body=${5:-}
  local st
  st=$(call "$tok" "$m" "$p" "$body")
  [ "$st" = "$want" ] || fail "$tok $m $p: $st, want $want: $(cat "$T/body.json")"
}
jobs_len() { rraw XLEN omni:jobs; }

at=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
bc() { echo "{\"type\":\"broadcast\",\"id\":\"$1\",\"channel\":\"sms\",\"send_at\":\"$at\",\"message\":{\"text\":\"hi\"},\"recipients\":[{\"to\":\"+15550000001\"}]}"; }
msg() { echo "{\"type\":\"message\",\"id\":\"$1\",\"channel\":\"sms\",\"message\":{\"text\":\"hi\"},\"recipients\":[{\"to\":\"+15550000002\"}]}"; }

# ---- send: broadcasts and messages
n0=$(jobs_len)
for t in tok-read tok-control tok-agent tok-admin tok-rc; do
  denied $t POST /v1/broadcasts send "$(bc "b-$t")"
  denied $t POST /v1/messages send "$(msg "m-$t")"
done
[ "$(jobs_len)" = "$n0" ] || fail "a refused job reached omni:jobs"
allowed tok-send POST /v1/broadcasts 202 "$(bc sched1)"
allowed tok-full POST /v1/broadcasts 202 "$(bc sched2)"
allowed tok-send POST /v1/messages 202 "$(msg m1)"
[ "$(jobs_len)" = "$((n0 + 3))" ] || fail "the allowed jobs are not all in omni:jobs"
wait_for 30 campaign_done sched1 scheduled
wait_for 30 campaign_done sched2 scheduled
ok "send: broadcasts and messages only with send (or no scopes); a refused job is not queued"

# ---- read
for p in /v1/campaigns /v1/campaigns/sched1 /v1/campaigns/sched1/uncertain /v1/conversations; do
  for t in tok-send tok-control tok-agent tok-admin; do denied $t GET "$p" read; done
  for t in tok-read tok-rc tok-full; do allowed $t GET "$p" 200; done
done
allowed tok-read GET /v1/campaigns/nosuch 404
allowed tok-read GET /v1/conversations/nosuch 404
denied tok-send GET /v1/conversations/nosuch read
# HEAD is a read
st=$(curl -s -o /dev/null -w '%{http_code}' -I -H "Authorization: Bearer tok-send" "$B/v1/campaigns/sched1")
[ "$st" = 403 ] || fail "HEAD with a send token: $st"
ok "read: campaigns, a campaign, uncertain, conversations only with read"

# ---- control: a refused pause or cancel leaves the campaign as it was
for t in tok-send tok-read tok-agent tok-admin; do
  for a in pause resume cancel; do denied $t POST "/v1/campaigns/sched1/$a" control; done
done
[ "$(campaign_field sched1 state)" = scheduled ] || fail "a refused control changed the campaign"
[ -z "$(campaign_field sched1 paused_at)" ] || fail "a refused pause left paused_at"
allowed tok-control POST /v1/campaigns/sched1/pause 200
[ "$(campaign_field sched1 state)" = paused ] || fail "pause with control did not pause"
allowed tok-rc POST /v1/campaigns/sched1/resume 200
allowed tok-control POST /v1/campaigns/sched1/cancel 200
allowed tok-full POST /v1/campaigns/sched2/cancel 200
allowed tok-control POST /v1/campaigns/nosuch/pause 404
ok "control: pause, resume, cancel only with control; a refused one changes nothing"

# ---- agent
for t in tok-send tok-read tok-control tok-admin tok-rc; do
  denied $t POST /v1/conversations/cv-x/close agent
done
allowed tok-agent POST /v1/conversations/cv-x/close 404
ok "agent: closing a conversation only with agent"

# ---- admin: connectors, and every /v1 route without a scope row
for t in tok-send tok-read tok-control tok-agent tok-rc; do
  denied $t POST /v1/connectors/out/resume admin
  denied $t GET /v1/no-such-route admin
  denied $t POST /v1/campaigns/sched1/frobnicate admin
done
rraw DEL omni:connector:out >/dev/null
allowed tok-admin POST /v1/connectors/out/resume 202
[ -n "$(rraw HGET omni:connector:out resume)" ] || fail "resume with admin was not written"
allowed tok-admin GET /v1/no-such-route 404
allowed tok-full GET /v1/no-such-route 404
allowed tok-admin POST /v1/campaigns/sched1/frobnicate 404
ok "admin: connectors resume and routes without a scope row only with admin"

# ---- the route's own answers stay: wrong method is 405 for a token with
# the route's scope, 401 comes before any scope
allowed tok-send GET /v1/broadcasts 405
denied tok-read GET /v1/broadcasts send
allowed nope POST /v1/broadcasts 401 "$(bc x)"
allowed tok-sen POST /v1/broadcasts 401 "$(bc x)"
allowed "tok-send send" POST /v1/broadcasts 401 "$(bc x)"
st=$(curl -s -o /dev/null -w '%{http_code}' "$B/v1/campaigns")
[ "$st" = 401 ] || fail "no token: $st"
# open routes need no token, scoped or not
allowed tok-send GET /healthz 200
allowed tok-send GET /metrics 200
ok "405 and 401 as before; health and metrics stay open"

! grep -q 'tok-' "$T/daemon.log" || fail "a token in the log"
grep -q "7 API tokens, 6 of them scoped" "$T/daemon.log" || fail "no token count at start"
stop_daemon

# ---- an unknown scope stops the daemon at start, naming file:line only
printf '# tokens\ngood-one read\nsecret-two read,sned\n' >"$T/tokens"
start_daemon "$T/omni.conf" bad
wait_for 20 sh -c "! kill -0 $DAEMON_PID"
rc=0; wait "$DAEMON_PID" || rc=$?
[ $rc -ne 0 ] || fail "the daemon started with an unknown scope"
grep -q "api_tokens_file $T/tokens:3: unknown scope" "$T/bad.log" || fail "no error naming line 3"
! grep -q 'secret-two\|sned\|good-one' "$T/bad.log" || fail "the error shows the line"
"$OMNI_BUILD/omnicastd" --config "$T/omni.conf" --check-config >"$T/check.log" 2>&1 && fail "--check-config passed"
grep -q "tokens:3: unknown scope" "$T/check.log" || fail "--check-config: no error naming line 3"
! grep -q 'secret-two\|sned' "$T/check.log" || fail "--check-config shows the line"
ok "an unknown scope: an error with file:line at start and in --check-config, the line not shown"
check_logs_clean
