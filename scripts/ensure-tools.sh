#!/usr/bin/env bash
# System tools the tests use that pip and npm cannot bring, from Debian's packages:
# docker-compose (v1), to check that docker-compose.yml parses (no Docker engine runs on this
# machine kind); chromium, the browser the browser tests drive (Playwright's own browser
# download does not work on a closed network) and a Chinese font for it (the pages' labels are
# Chinese by default; without one, screenshots show empty boxes); node and npm, which build
# the web pages.
set -euo pipefail
need=()
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
[ -x /usr/bin/chromium ] || need+=(chromium)
fc-list :lang=zh 2>/dev/null | grep -q . || need+=(fonts-wqy-microhei)
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
if [ "${#need[@]}" -gt 0 ]; then
  echo "tools: installing ${need[*]} from Debian's packages"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q >/dev/null || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need[@]}" >/dev/null
fi
