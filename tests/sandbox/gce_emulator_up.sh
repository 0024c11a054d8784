#!/usr/bin/env bash
# Start the local GCE emulator in the background (if it is not already up) and wait until ready.
# Idempotent. Settings (environment):
#   GCE_EMULATOR_PORT (8089)  GCE_EMULATOR_HOST (127.0.0.1)  GCE_EMULATOR_STATE_DIR (build/gce-emulator)
#   GCE_EMULATOR_CONTAINERS (1; 0 = --no-containers)  GCE_EMULATOR_LATENCY (0)
#   GCE_EMULATOR_BRIDGE (10.77.0.1 when incusbr0 exists; "" to disable) — metadata server for containers
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
PORT="${GCE_EMULATOR_PORT:-8089}"
HOST="${GCE_EMULATOR_HOST:-127.0.0.1}"
STATE_DIR="${GCE_EMULATOR_STATE_DIR:-build/gce-emulator}"
PY="${GCE_EMULATOR_PYTHON:-$ROOT/.venv/bin/python}"
PID_FILE="$STATE_DIR/emulator.pid"
LOG_FILE="$STATE_DIR/emulator.log"
if [ -z "${GCE_EMULATOR_BRIDGE+x}" ]; then
  GCE_EMULATOR_BRIDGE=""
  ip -4 addr show incusbr0 2>/dev/null | grep -q '10.77.0.1/' && GCE_EMULATOR_BRIDGE=10.77.0.1
fi

ready() {
  "$PY" - "$HOST" "$PORT" <<'PYEOF' >/dev/null 2>&1
import json, sys, urllib.request
with urllib.request.urlopen(f"http://{sys.argv[1]}:{sys.argv[2]}/_admin/ready", timeout=2) as r:
    sys.exit(0 if json.load(r).get("ready") else 1)
PYEOF
}

mkdir -p "$STATE_DIR"
if [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null && ready; then
  echo "[gce-emulator] already up on http://$HOST:$PORT/compute/v1/ (pid $(cat "$PID_FILE"))"
  exit 0
fi
if ready; then
  echo "[gce-emulator] port $PORT answers but was not started by this script (no live $PID_FILE)" >&2
  exit 1
fi

args=(--host "$HOST" --port "$PORT" --state-dir "$STATE_DIR" --latency "${GCE_EMULATOR_LATENCY:-0}")
[ "${GCE_EMULATOR_CONTAINERS:-1}" = 0 ] && args+=(--no-containers)
[ -n "$GCE_EMULATOR_BRIDGE" ] && args+=(--bridge-address "$GCE_EMULATOR_BRIDGE")
# In a session of its own: a signal to the caller's process group (a Ctrl-C, or an Ansible worker that
# is terminated: it kills its whole group) must not stop it; only gce_emulator_down.sh does. (Not a job
# leader here, so setsid does not fork and $! is the emulator's pid.)
PYTHONPATH="$ROOT/tests/sandbox${PYTHONPATH:+:$PYTHONPATH}" setsid nohup "$PY" -m gce_emulator "${args[@]}" \
  >>"$LOG_FILE" 2>&1 </dev/null &
echo $! > "$PID_FILE"

for _ in $(seq 1 100); do
  if ready; then
    echo "[gce-emulator] up on http://$HOST:$PORT/compute/v1/ (pid $(cat "$PID_FILE"), log $LOG_FILE)"
    exit 0
  fi
  kill -0 "$(cat "$PID_FILE")" 2>/dev/null || break
  sleep 0.2
done
echo "[gce-emulator] failed to start; last log lines:" >&2
tail -n 20 "$LOG_FILE" >&2 || true
exit 1
