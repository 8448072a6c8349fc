#!/usr/bin/env bash
# Make sure a PostgreSQL answers at YISHAO_DATABASE_URL's host and port (default
# 127.0.0.1:5432): if none does, install Debian's postgresql when it is missing and start it.
set -euo pipefail
url="${YISHAO_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/yishao}"
hostport="${url#*://}"; hostport="${hostport#*@}"; hostport="${hostport%%/*}"
host="${hostport%%:*}"; port="${hostport##*:}"
[ "$host" = "$hostport" ] && port=5432
[ -z "$host" ] && host=127.0.0.1

answers() { (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; }

if answers; then
  echo "postgres: answering at $host:$port"
  exit 0
fi
case "$host" in
  127.*|localhost|::1) ;;
  *) echo "postgres: nothing answers at $host:$port and it is not local; start it yourself" >&2; exit 1 ;;
esac
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  echo "postgres: installing Debian's postgresql"
  $SUDO apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q postgresql >/dev/null
fi
if command -v pg_ctlcluster >/dev/null 2>&1 && [ "$port" = 5432 ]; then
  version="$(ls /usr/lib/postgresql | sort -V | tail -1)"
  $SUDO pg_ctlcluster "$version" main start || $SUDO service postgresql start || true
fi
for _ in $(seq 1 50); do
  if answers; then echo "postgres: started at $host:$port"; exit 0; fi
  sleep 0.2
done
echo "postgres: could not start at $host:$port (try: service postgresql start)" >&2
exit 1
