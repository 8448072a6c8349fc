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
installed=""
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  echo "postgres: installing Debian's postgresql"
  $SUDO apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q postgresql >/dev/null
  installed=1
fi
version="$(ls /usr/lib/postgresql | sort -V | tail -1)"
if [ -n "$installed" ]; then
  # A cluster we just installed for a local trial: let postgres@127.0.0.1 in without a
  # password, as on this project's machines (never do this on a shared or production host).
  hba="/etc/postgresql/$version/main/pg_hba.conf"
  if [ -f "$hba" ] && ! grep -q "yishao-local-trial" "$hba"; then
    $SUDO sed -i '1i host all postgres 127.0.0.1/32 trust # yishao-local-trial' "$hba"
  fi
fi
if command -v pg_ctlcluster >/dev/null 2>&1 && [ "$port" = 5432 ]; then
  $SUDO pg_ctlcluster "$version" main start || $SUDO service postgresql start || true
fi
for _ in $(seq 1 50); do
  if answers; then
    echo "postgres: started at $host:$port"
    # A caller that wants to stop what it started (make run) names a file to record it in.
    if [ -n "${YISHAO_STARTED:-}" ]; then
      echo "postgres /var/run/postgresql/$version-main.pid" >> "$YISHAO_STARTED"
    fi
    exit 0
  fi
  sleep 0.2
done
echo "postgres: could not start at $host:$port (try: service postgresql start)" >&2
exit 1
