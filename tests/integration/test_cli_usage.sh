#!/bin/bash
# omnicast's command table: the usage text (--help, help) is generated from
# it and says what it always said, help COMMAND prints one command's lines,
# argument counts outside a command's range and unknown commands exit 2 with
# the usage on stderr, before any Redis is contacted (none runs here).
source "$(dirname "$0")/lib.sh"

cat >"$T/want.txt" <<'TXT'
usage: omnicast [--config FILE] [--redis URL] [--prefix P] [--json] COMMAND ...
       (--json may also follow the command's arguments)

commands:
  enqueue FILE|-               validate a job and queue it (XADD omni:jobs)
  status ID                    a campaign's state and counters
  campaign pause|resume|cancel ID
                               control a campaign on every instance
  campaign uncertain ID        the uncertain recipients: reason, time on the wire
  campaign resend-uncertain ID send again the recipients left uncertain by a crash
  connector resume NAME        a halted connector instance sends again (every instance)
  watch ID                     live progress until the campaign ends
  campaigns                    every campaign with its state and counts
  export ID [--csv] [--state S]
                               every recipient's record, NDJSON (or CSV) on stdout
  conversations [--open] [--campaign ID]
  conversation send ID TEXT    an agent's message into an open conversation
  suppress add|remove CHANNEL ADDRESS | suppress list CHANNEL
  dead list [N] | dead show ENTRY | dead replay ENTRY
  help [COMMAND]               this text, or one command's usage

exit codes: 0 ok, 1 failed, 2 usage, 3 invalid job, 4 Redis unavailable
TXT
OC=("$OMNI_BUILD/omnicast" --redis redis://127.0.0.1:1/0)
"${OC[@]}" --help >"$T/help.txt" || fail "--help exit $?"
diff "$T/want.txt" "$T/help.txt" >&2 || fail "--help text changed"
"${OC[@]}" help >"$T/help2.txt" || fail "help exit $?"
cmp -s "$T/want.txt" "$T/help2.txt" || fail "help differs from --help"
"${OC[@]}" help campaign >"$T/one.txt" || fail "help campaign"
[ "$(grep -c '^  campaign ' "$T/one.txt")" -eq 3 ] && ! grep -q '^  status' "$T/one.txt" ||
  fail "help campaign: $(cat "$T/one.txt")"
ok "--help and help print the usage from the command table; help campaign its three lines"

usage_error() { # ARGS...: exit 2, the usage on stderr, nothing on stdout
  local rc=0
  "${OC[@]}" "$@" >"$T/out.txt" 2>"$T/err.txt" || rc=$?
  [ $rc -eq 2 ] || fail "omnicast $*: exit $rc, want 2"
  grep -q '^usage: omnicast' "$T/err.txt" && [ ! -s "$T/out.txt" ] || fail "omnicast $*: no usage on stderr"
}
usage_error
usage_error frobnicate
grep -q "unknown command 'frobnicate'" "$T/err.txt" || fail "unknown command message"
usage_error help frobnicate
usage_error enqueue
usage_error enqueue a b
usage_error status
usage_error status a b
usage_error watch
usage_error campaigns x
usage_error export
usage_error export a b
usage_error export a --state nope
usage_error export a --frob
usage_error campaign pause
usage_error campaign pause a b
usage_error campaign frob x
usage_error suppress add
usage_error suppress add sms
usage_error dead
usage_error dead show
usage_error dead frob x
usage_error conversations --bogus
usage_error conversation
usage_error conversation send
usage_error conversation send cv1
usage_error conversation send cv1 hi there
usage_error conversation frob cv1 hi
usage_error help a b
usage_error status --json
usage_error status a --json b
usage_error campaigns x --json
usage_error --json campaign pause --json
ok "argument counts outside each command's range and bad subcommands exit 2 with the usage"

# a well-formed command reaches Redis: exit 4 (nothing listens on port 1)
for a in "status x" "campaigns" "campaign pause x" "dead list" "dead list 5" "suppress list sms" "conversations --open" "watch x" "conversation send cv1 hi"; do
  rc=0; "${OC[@]}" $a >/dev/null 2>&1 || rc=$?
  [ $rc -eq 4 ] || fail "omnicast $a: exit $rc, want 4 (Redis unavailable)"
done
ok "well-formed commands get past the table to Redis (exit 4 without one)"
