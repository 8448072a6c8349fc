#!/usr/bin/env bash
# Make sure a Redis answers at YISHAO_REDIS_URL (default redis://127.0.0.1:6379/0):
# if none does, install Debian's redis-server when it is missing and start one there.
# With YISHAO_STARTED=FILE, a Redis it starts is recorded in FILE ("redis PIDFILE") so the
# caller can stop it (scripts/run.sh does on exit); one already answering is left alone.
set -euo pipefail
url="${YISHAO_REDIS_URL:-redis://127.0.0.1:6379/0}"
hostport="${url#*://}"; hostport="${hostport#*@}"; hostport="${hostport%%/*}"
host="${hostport%%:*}"; port="${hostport##*:}"
[ "$host" = "$hostport" ] && port=6379
[ -z "$host" ] && host=127.0.0.1

ping_redis() {
  local reply=""
  exec 3<>"/dev/tcp/$host/$port" || return 1
  printf 'PING\r\n' >&3
  read -r -t 2 reply <&3 || true
  exec 3>&- 3<&- || true
  [[ "$reply" == +PONG* || "$reply" == -NOAUTH* ]]
}

if ping_redis 2>/dev/null; then
  echo "redis: answering at $host:$port"
  exit 0
fi
case "$host" in
  127.*|localhost|::1) ;;
  *) echo "redis: nothing answers at $host:$port and it is not local; start it yourself" >&2; exit 1 ;;
esac
if ! command -v redis-server >/dev/null 2>&1; then
  echo "redis: installing Debian's redis-server"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q redis-server >/dev/null
fi
dir="${TMPDIR:-/tmp}/yishao-redis-$port"
mkdir -p "$dir"
redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
  --dir "$dir" --logfile "$dir/redis.log" --pidfile "$dir/redis.pid"
for _ in $(seq 1 50); do
  if ping_redis 2>/dev/null; then
    echo "redis: started at $host:$port (log $dir/redis.log)"
    # A caller that wants to stop what it started (make run) names a file to record it in.
    if [ -n "${YISHAO_STARTED:-}" ]; then echo "redis $dir/redis.pid" >> "$YISHAO_STARTED"; fi
    exit 0
  fi
  sleep 0.1
done
echo "redis: could not start at $host:$port; see $dir/redis.log" >&2
exit 1
