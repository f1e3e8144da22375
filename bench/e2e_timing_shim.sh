#!/usr/bin/env bash
# Host binary shim for bench/real_orchestrator_e2e.sh: runs $SPEC_KITTY_REAL_BIN with the same
# arguments, stdin, stdout and exit status, and appends "<start> <end> <args>" (seconds, from
# bash's $EPOCHREALTIME: no extra process inside the timed window) to $SPEC_KITTY_TIMING_LOG.
start=$EPOCHREALTIME
"$SPEC_KITTY_REAL_BIN" "$@"
rc=$?
end=$EPOCHREALTIME
printf '%s %s %s\n' "$start" "$end" "$*" >>"$SPEC_KITTY_TIMING_LOG"
exit $rc
