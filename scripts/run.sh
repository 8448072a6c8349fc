#!/usr/bin/env bash
# `make run`: the service on the demo map, a console link per role, and a five-minute live drill
# against it; then the report link, and the service keeps serving until Ctrl-C, which stops
# everything this script started (the drill, the service, and a Redis or PostgreSQL it had to
# start) and nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
HOST="${YISHAO_HOST:-127.0.0.1}"
PORT="${YISHAO_PORT:-8000}"
BASE="http://$HOST:$PORT"
# The service refuses the published development secret unless YISHAO_ENV=dev says so: this is
# a local trial, so say it (a real deployment sets YISHAO_ENV=prod and its own secret).
export YISHAO_ENV="${YISHAO_ENV:-dev}"
# A fresh secret per demo unless one is set: the tokens printed below are valid for this run.
if [ -z "${YISHAO_SECRET:-}" ]; then
  YISHAO_SECRET="$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
  export YISHAO_SECRET
fi
export PATH="$PWD/$VENV/bin:$PATH"
# The system of record: the demo archives into its own database (created and migrated below).
export YISHAO_DATABASE_URL="${YISHAO_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/yishao}"

started="$(mktemp "${TMPDIR:-/tmp}/yishao-started.XXXXXX")"
export YISHAO_STARTED="$started"
server_pid=""
drill_pid=""
cleanup() {
  trap - INT TERM EXIT
  # The drill first (it talks to the service), then the service, then what we started.
  for pid in $drill_pid $server_pid; do
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  while read -r what pidfile; do
    if [ -f "$pidfile" ]; then
      kill -TERM "$(cat "$pidfile")" 2>/dev/null || true
      echo "yishao: stopped the $what this run started"
    fi
  done < "$started"
  rm -f "$started"
  echo "yishao: stopped"
}
trap 'cleanup; exit 130' INT TERM
trap cleanup EXIT

scripts/ensure-redis.sh
scripts/ensure-postgres.sh
yishao db upgrade
if [ -f scripts/demo-graph.sh ]; then
  # shellcheck source=/dev/null
  source scripts/demo-graph.sh
fi

yishao serve --host "$HOST" --port "$PORT" --no-access-log &
server_pid=$!
for _ in $(seq 1 150); do
  if python3 -c "import urllib.request; urllib.request.urlopen('$BASE/api/health/ready', timeout=1)" \
    2>/dev/null; then
    break
  fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "yishao: the service did not start (see above)" >&2
    exit 1
  fi
  sleep 0.2
done

echo
echo "Yishao is serving at $BASE  (API docs: $BASE/docs)"
echo "Open the console as a role (each link signs in; tokens last 12 h):"
YISHAO_BASE="$BASE" python - <<'PY'
import os

from dispatch.auth import mint
from dispatch.models import Agency, Role

base = os.environ["YISHAO_BASE"]
# ems-coord-1 is today's EMS whistle primary in the demo's roster, and the drill leaves that
# coordinator's acks to you: ack from the coordinator page, or watch the backup be summoned.
for role, agency, sub, scope, page, what in [
    ("dispatcher", "traffic", "console-122", [], "/", "122 traffic-police dispatcher"),
    ("dispatcher", "ems", "console-120", [], "/", "120 ambulance dispatcher"),
    ("dispatcher", "fire", "console-119", [], "/", "119 fire dispatcher"),
    ("coordinator", "ems", "ems-coord-1", [], "/coordinator", "120 on-duty whistle coordinator"),
    ("observer", "police", "observer", [], "/", "observer (read only, masked)"),
    ("admin", "police", "admin", [], "/", "administrator"),
]:
    token = mint(os.environ["YISHAO_SECRET"], role=Role(role), agency=Agency(agency), sub=sub,
                 ttl_s=12 * 3600, scope=scope)
    print(f"  {what:34} {base}{page}#token={token}")
PY
echo
echo "This demo's secret is YISHAO_SECRET=$YISHAO_SECRET; mint more tokens with"
echo "  YISHAO_ENV=dev YISHAO_SECRET=$YISHAO_SECRET $VENV/bin/yishao token mint --role terminal --agency ems --sub AMB-1"
echo
# The live drill: three hours of calls compressed 60x (three minutes) with a taxi rollover in the
# first minute; units, signals and coordinators in real time, crews' scene times shortened so
# units come back within the demo.
yishao drill --scenario scenarios/demo-day.toml --graph "$YISHAO_GRAPH" --url "$BASE" \
  --speed "${YISHAO_DEMO_SPEED:-60}" --seed "${YISHAO_DEMO_SEED:-1}" \
  --crew-time-scale 0.05 --drain-s 120 --silent-coordinator ems-coord-1 &
drill_pid=$!
echo "Live drill running (about five minutes; its report link is printed when it ends)."
echo "Ctrl-C stops everything."
if wait "$drill_pid"; then
  echo "Drill done: the link above opens its report. Still serving at $BASE; Ctrl-C stops."
else
  echo "The drill stopped early (see above). Still serving at $BASE; Ctrl-C stops."
fi
drill_pid=""
wait "$server_pid"
