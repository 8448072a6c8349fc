#!/usr/bin/env bash
# The main job: the service on the demo map, ready-made tokens, and a live drill against it.
# Stops everything cleanly on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
HOST="${YISHAO_HOST:-127.0.0.1}"
PORT="${YISHAO_PORT:-8000}"
export YISHAO_ENV="${YISHAO_ENV:-dev}"
# A fresh secret per demo unless one is set: the tokens printed below are valid for this run.
if [ -z "${YISHAO_SECRET:-}" ]; then
  YISHAO_SECRET="$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
  export YISHAO_SECRET
fi
export PATH="$PWD/$VENV/bin:$PATH"
# The system of record: the demo archives into its own database (created and migrated here).
export YISHAO_DATABASE_URL="${YISHAO_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/yishao}"
yishao db upgrade

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

yishao serve --host "$HOST" --port "$PORT" --no-access-log &
pids+=($!)
for _ in $(seq 1 100); do
  if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://$HOST:$PORT/api/health', timeout=1)" 2>/dev/null; then
    break
  fi
  sleep 0.2
done

echo
echo "Yishao is serving at http://$HOST:$PORT  (API docs: http://$HOST:$PORT/docs)"
echo "Tokens for this session, one per role (12 h; the drill's own coordinators, units and"
echo "signal gateway mint theirs):"
YISHAO_BASE="http://$HOST:$PORT" python - <<'PY'
import os

from dispatch.auth import mint
from dispatch.models import Agency, Role

for role, agency, sub, scope in [
    ("dispatcher", "traffic", "console-122", []),
    ("dispatcher", "ems", "console-120", []),
    ("dispatcher", "fire", "console-119", []),
    ("coordinator", "ems", "watch-120", []),
    ("terminal", "ems", "demo-unit", []),
    ("signal", "traffic", "gateway-122", ["*"]),
    ("property", "property", "compound-1", ["compound-1"]),
    ("observer", "police", "observer", []),
    ("admin", "police", "admin", []),
]:
    token = mint(os.environ["YISHAO_SECRET"], role=Role(role), agency=Agency(agency), sub=sub,
                 ttl_s=12 * 3600, scope=scope)
    print(f"  {role:12} {agency:8} {sub:12} {token}")
    page = {"dispatcher": "/", "observer": "/", "admin": "/", "coordinator": "/coordinator",
            "terminal": "/terminal", "property": "/terminal"}.get(role)
    if page is not None:
        print(f"  {'':12} open: {os.environ['YISHAO_BASE']}{page}#token={token}")
PY
echo
# The live drill: a mixed day of calls (compressed 60x) with a taxi rollover in the first
# minutes; units, signals and coordinators in real time against the service above.
yishao drill --scenario scenarios/demo-day.toml --graph "$YISHAO_GRAPH" \
  --url "http://$HOST:$PORT" --speed "${YISHAO_DEMO_SPEED:-60}" --seed "${YISHAO_DEMO_SEED:-1}" &
pids+=($!)
echo "Live drill running (report at http://$HOST:$PORT/reports/<drill id> when it ends)."
echo "Ctrl-C stops everything."
wait "${pids[0]}"
