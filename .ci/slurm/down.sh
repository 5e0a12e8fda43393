#!/usr/bin/env bash
# Stop the daemons .ci/slurm/up.sh started -- only those, by the PIDs it recorded, newest first.
# A PID whose process name no longer matches (it ended and the number was reused) is left alone.
set -uo pipefail

DIR=${DIP_SLURM_DIR:-/var/tmp/dip-slurm}
PIDS="$DIR/pids"
log() { printf '[slurm-down] %s\n' "$*" >&2; }

[ -s "$PIDS" ] || { log "nothing to stop ($PIDS is missing or empty)"; exit 0; }

# comm names are truncated to 15 characters by the kernel
matches() { [ "$(cat "/proc/$2/comm" 2>/dev/null)" = "${1:0:15}" ]; }

rc=0
tac "$PIDS" | while read -r name pid; do
    [ -n "$pid" ] || continue
    if ! kill -0 "$pid" 2>/dev/null; then log "$name (PID $pid) already gone"; continue; fi
    if ! matches "$name" "$pid"; then log "PID $pid is no longer $name; leaving it alone"; continue; fi
    kill -TERM "$pid"
    for _ in $(seq 1 80); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    if kill -0 "$pid" 2>/dev/null && matches "$name" "$pid"; then
        log "$name (PID $pid) ignored SIGTERM for 20 s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped $name (PID $pid)"
done
rm -f "$PIDS"
exit $rc
