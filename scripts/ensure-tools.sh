#!/usr/bin/env bash
# System tools the tests use that pip cannot bring: Debian's docker-compose (v1), to check
# that docker-compose.yml parses (no Docker engine runs on this machine kind).
set -euo pipefail
need=()
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
if [ "${#need[@]}" -gt 0 ]; then
  echo "tools: installing ${need[*]} from Debian's packages"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q >/dev/null || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need[@]}" >/dev/null
fi
