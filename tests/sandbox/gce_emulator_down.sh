#!/usr/bin/env bash
# Stop the GCE emulator started by gce_emulator_up.sh (state stays in the state dir). Idempotent.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
STATE_DIR="${GCE_EMULATOR_STATE_DIR:-build/gce-emulator}"
PID_FILE="$STATE_DIR/emulator.pid"

if [ ! -f "$PID_FILE" ]; then
  echo "[gce-emulator] not running (no $PID_FILE)"
  exit 0
fi
pid="$(cat "$PID_FILE")"
# Only the emulator of this state dir: a pid file whose emulator died may name another process by now
# (pids are reused within the hour on a busy machine), e.g. the emulator of another fleet.
if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "--state-dir $STATE_DIR "; then
  kill -TERM "$pid"
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  echo "[gce-emulator] stopped (pid $pid)"
else
  echo "[gce-emulator] was not running (stale pid $pid)"
fi
rm -f "$PID_FILE"
