#!/usr/bin/env bash
# The main job: the service on the demo map, ready-made tokens, and (once drills exist) a drill.
# Stops everything cleanly on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
HOST="${YISHAO_HOST:-127.0.0.1}"
PORT="${YISHAO_PORT:-8000}"
export YISHAO_ENV="${YISHAO_ENV:-dev}"
export PATH="$PWD/$VENV/bin:$PATH"

pids=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "yishao: stopped"
}
trap cleanup INT TERM EXIT

if [ -f scripts/demo-graph.sh ]; then
  # shellcheck source=/dev/null
  source scripts/demo-graph.sh
fi

yishao serve --host "$HOST" --port "$PORT" &
pids+=($!)
for _ in $(seq 1 100); do
  if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://$HOST:$PORT/api/health', timeout=1)" 2>/dev/null; then
    break
  fi
  sleep 0.2
done

echo
echo "Yishao is serving at http://$HOST:$PORT  (API docs: http://$HOST:$PORT/docs)"
echo "Tokens for this session (12 h):"
for spec in "dispatcher traffic console-122" "dispatcher ems console-120" "dispatcher fire console-119" \
            "coordinator traffic coord-122" "coordinator ems coord-120" "coordinator fire coord-119" \
            "observer police observer" "admin police admin"; do
  set -- $spec
  printf '  %-12s %-8s %s\n' "$1" "$2" "$(yishao token mint --role "$1" --agency "$2" --sub "$3")"
done
echo
if yishao --help 2>/dev/null | grep -q " drill "; then
  yishao drill --scenario mixed-day --url "http://$HOST:$PORT" &
  pids+=($!)
else
  echo "(no drill yet: serving only. Post a call with: curl -H 'Authorization: Bearer <dispatcher token>' ...)"
fi
echo "Ctrl-C stops everything."
wait "${pids[0]}"
