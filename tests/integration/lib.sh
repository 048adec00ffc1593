# Shared helpers for integration tests: a private redis-server, mock
# providers and the daemon, all on 127.0.0.1, all stopped by PID when the
# test exits (however it exits). Every wait is bounded.
set -euo pipefail

OMNI_BUILD=${OMNI_BUILD:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build}
OMNI_SRC=${OMNI_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# python helpers shared by the tests (resp.py: commands for redis-cli --pipe)
export PYTHONPATH="$OMNI_SRC/tests/integration${PYTHONPATH:+:$PYTHONPATH}"
T=$(mktemp -d /tmp/omni-test.XXXXXX)
# python3 is the system's, /usr/bin/python3 (make deps installs its modules:
# aiosmtpd, jsonschema, yaml), or OMNI_PYTHON: first in PATH through $T/bin,
# for the tests, their helpers and the mocks alike. A python3 found earlier
# in PATH may be a version manager's shim (pyenv's costs ~0.7 s of CPU per
# start, and the tests start python3 thousands of times).
OMNI_PYTHON=${OMNI_PYTHON:-/usr/bin/python3}
if [ -x "$OMNI_PYTHON" ]; then
  mkdir -p "$T/bin"
  ln -s "$OMNI_PYTHON" "$T/bin/python3"
  export PATH="$T/bin:$PATH"
fi
PIDS=()
TEST_NAME=$(basename "$0" .sh)

cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ $rc -ne 0 ]; then
    echo "--- $TEST_NAME failed; logs from $T:"
    for f in "$T"/*.log; do [ -f "$f" ] && { echo "== $f"; tail -n 60 "$f"; }; done
  fi
  rm -rf "$T"
  exit $rc
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok - $*"; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_for SECONDS COMMAND...: poll until COMMAND succeeds, or fail.
wait_for() {
  local secs=$1; shift
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || fail "timed out after ${secs}s waiting for: $*"
    sleep 0.1
  done
}

# start_redis [EXTRA ARGS]: a private redis-server; the extra arguments
# (e.g. --appendonly yes) are kept for restart_redis
start_redis() {
  REDIS_PORT=$(free_port)
  REDIS_ARGS=(--save '' --appendonly no "$@")
  mkdir -p "$T/redis"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 "${REDIS_ARGS[@]}" \
    --dir "$T/redis" --logfile "$T/redis.log" --daemonize no &
  REDIS_PID=$!
  PIDS+=("$REDIS_PID")
  wait_for 20 redis-cli -p "$REDIS_PORT" ping
}

stop_redis() {
  kill -TERM "$REDIS_PID" 2>/dev/null || true
  wait "$REDIS_PID" 2>/dev/null || true
}

restart_redis() {
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 "${REDIS_ARGS[@]}" \
    --dir "$T/redis" --logfile "$T/redis.log" --daemonize no &
  REDIS_PID=$!
  PIDS+=("$REDIS_PID")
  wait_for 20 redis-cli -p "$REDIS_PORT" ping
}

rcli() { redis-cli -p "$REDIS_PORT" --no-raw "$@"; }
rraw() { redis-cli -p "$REDIS_PORT" --raw "$@"; }

# start_mock NAME [ARGS...]: a mock provider recording to $T/NAME.jsonl;
# sets MOCK_PORT and MOCK_PID.
start_mock() {
  local name=$1; shift
  rm -f "$T/$name.port"
  "$OMNI_BUILD/tests/mock_provider" --port 0 --port-file "$T/$name.port" \
    --record "$T/$name.jsonl" "$@" >"$T/$name.log" 2>&1 &
  MOCK_PID=$!
  PIDS+=("$MOCK_PID")
  wait_for 20 test -s "$T/$name.port"
  MOCK_PORT=$(cat "$T/$name.port")
}

# start_daemon CONF [NAME]: sets DAEMON_PID; log in $T/NAME.log
start_daemon() {
  local conf=$1 name=${2:-daemon}
  "$OMNI_BUILD/omnicastd" --config "$conf" >>"$T/$name.log" 2>&1 &
  DAEMON_PID=$!
  PIDS+=("$DAEMON_PID")
}

# stop_daemon [PID]: SIGTERM, and the daemon must drain and exit 0 (under
# the sanitizers a leak or an error makes that exit non-zero)
stop_daemon() {
  local pid=${1:-$DAEMON_PID}
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 60))
  while kill -0 "$pid" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { kill -KILL "$pid"; fail "daemon $pid did not stop on SIGTERM"; }
    sleep 0.1
  done
  local rc=0
  wait "$pid" 2>/dev/null || rc=$?
  [ "$rc" -eq 0 ] || fail "daemon $pid exited with status $rc"
}

# no sanitizer reports in any log
check_logs_clean() {
  if grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T"/*.log 2>/dev/null; then
    fail "sanitizer report in the logs above"
  fi
}

# daemon_conf FILE EXTRA_SECTIONS: a config on the private redis
daemon_conf() {
  local file=$1; shift
  cat >"$file" <<CONF
[daemon]
redis = redis://127.0.0.1:$REDIS_PORT/0
consumer = ${CONSUMER:-test-1}
log_level = ${LOG_LEVEL:-info}
block_ms = 200
claim_idle_ms = ${CLAIM_IDLE_MS:-2000}
reclaim_interval_ms = 500
lease_ms = ${LEASE_MS:-2000}
retry_base_ms = ${RETRY_BASE_MS:-100}
retry_cap_ms = 1000
chunk_size = ${CHUNK_SIZE:-100}
$*
CONF
}

# index_ready: the daemon's one-time campaign-index backfill is through
# (it sets omni:campaigns:indexed soon after start): a test that counts
# Redis keys takes its baseline after it
index_done() { [ "$(rraw EXISTS omni:campaigns:indexed)" = 1 ]; }
index_ready() { wait_for 30 index_done; }

# campaign_field ID FIELD
campaign_field() { rraw HGET "omni:campaign:$1" "$2"; }

campaign_done() { [ "$(campaign_field "$1" state)" = "${2:-done}" ]; }

# counters_add_up ID: sent+failed+suppressed+uncertain+cancelled = total
counters_add_up() {
  local id=$1 s=0 f
  for f in sent failed suppressed uncertain cancelled; do
    s=$((s + $(campaign_field "$id" $f)))
  done
  [ "$s" -eq "$(campaign_field "$id" total)" ]
}

enqueue() { rcli XADD omni:jobs '*' job "$1" >/dev/null; }

# fill_list KEY N: RPUSH N recipients {"to":"+1555%07d","vars":{"name":"User%d"}}
fill_list() {
  python3 - "$1" "$2" <<'PY' | redis-cli -p "$REDIS_PORT" --pipe >/dev/null
import sys
key, n = sys.argv[1], int(sys.argv[2])
from resp import cmd
for b in range(1, n + 1, 1000):
    items = ['{"to":"+1555%07d","vars":{"name":"User%d"}}' % (i, i) for i in range(b, min(b + 1000, n + 1))]
    cmd("RPUSH", key, *items)
PY
}

# wa_conf MOCK_PORT [EXTRA]: a whatsapp connector on the mock provider
wa_section() {
  cat <<SECTION
[connector.wa]
type = whatsapp
api_base = http://127.0.0.1:$1
phone_number_id = 1234567890
access_token = testtoken
app_secret = appsecret
verify_token = verifytoken
${2:-}
SECTION
  # unpaced unless the test sets a rate (or names rate_per_s in a comment to
  # keep the default): a whatsapp connector's own default is 80/s (a new
  # number's tier), which would make the big campaigns slow
  case "${2:-}" in *rate_per_s*) ;; *) echo "rate_per_s = 0" ;; esac
  # no customer service window unless the test names session_window_s:
  # the mock provider has none, and tests about delivery send text
  # broadcasts (a whatsapp connector's own default, 86400, refuses a
  # broadcast without a template: test_wa_window checks it)
  case "${2:-}" in *session_window_s*) ;; *) echo "session_window_s = 0" ;; esac
}

# recorded_tos FILE: the recipients a mock provider saw, one per line
recorded_tos() {
  python3 - "$1" <<'PY'
import json, sys, urllib.parse
for line in open(sys.argv[1]):
    r = json.loads(line)
    b = r.get("body") or ""
    if r["path"].endswith("/messages"):
        print(json.loads(b)["to"])
    elif r["path"].endswith("/Messages.json"):
        print(urllib.parse.parse_qs(b)["To"][0])
PY
}

# start_smtp NAME [ARGS...]: a real SMTP server (aiosmtpd) saving to
# $T/NAME/; sets SMTP_PORT
start_smtp() {
  start_mail_server smtp_sink.py "$@"
  SMTP_PORT=$SRV_PORT
}

# start_mail_server SCRIPT NAME [ARGS...]: tests/mock/SCRIPT --port-file
# --outdir $T/NAME ARGS; sets SRV_PORT
start_mail_server() {
  local script=$1 name=$2; shift 2
  /usr/bin/python3 "$OMNI_SRC/tests/mock/$script" --port-file "$T/$name.port" \
    --outdir "$T/$name" "$@" >"$T/$name.log" 2>&1 &
  PIDS+=($!)
  wait_for 20 test -s "$T/$name.port"
  SRV_PORT=$(cat "$T/$name.port")
}

# start_smtp_mock NAME [ARGS...]: the scriptable SMTP server
# (tests/mock/smtp_server.py) saving to $T/NAME/; sets SRV_PORT. Python
# checks read what it saw with smtp_seen.py (beside this file).
start_smtp_mock() { start_mail_server smtp_server.py "$@"; }

# msg_field CAMPAIGN FIELD JSONKEY: a key of one recipient's record
msg_field() {
  rraw HGET "omni:msg:$1" "$2" | python3 -c "import json,sys; print(json.load(sys.stdin).get('$3',''))"
}

# q PATTERN [FILE]: grep quietly but read all input (grep -q stops early and
# its producer dies of SIGPIPE, which pipefail turns into a failure)
q() { grep "$@" >/dev/null; }

# WhatsApp webhooks as Meta posts them, to the instance "wa" at $B:
# sign_wa signs stdin with the tests' app secret ("appsecret");
# post_wa BODY [SIGNATURE] posts it signed (or with the signature given),
# prints the status code, leaves the answer in $T/wbody (at most 10 s).
sign_wa() { python3 -c 'import hmac,hashlib,sys; print("sha256="+hmac.new(b"appsecret", sys.stdin.buffer.read(), hashlib.sha256).hexdigest())'; }
post_wa() {
  local sig=${2:-$(printf '%s' "$1" | sign_wa)}
  curl -s -m 10 -o "$T/wbody" -w '%{http_code}' -H "Content-Type: application/json" \
    -H "X-Hub-Signature-256: $sig" --data-binary "$1" "$B/webhooks/wa" || true
}
# WA_HEAD/WA_TAIL: the envelope of a "messages" change; printf "$WA_HEAD"'"statuses":[...]'"$WA_TAIL"
WA_HEAD='{"object":"whatsapp_business_account","entry":[{"id":"W","changes":[{"field":"%s","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15551230000","phone_number_id":"1234567890"},'
WA_TAIL='}}]}]}'
