#!/usr/bin/env bash
# Start PostgreSQL and Redis when installed but not running (the tests use both back-ends; the embedded
# defaults do not need them). Installs them first when absent.
set -euo pipefail
sudo_cmd=""; [[ $(id -u) -ne 0 ]] && sudo_cmd="sudo"
need=()
command -v pg_ctlcluster >/dev/null || need+=(postgresql)
command -v redis-server >/dev/null || need+=(redis-server)
if ((${#need[@]})); then
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! (echo > /dev/tcp/127.0.0.1/5432) 2>/dev/null; then
  version=$(ls /etc/postgresql | sort -V | tail -n1)
  $sudo_cmd pg_ctlcluster --skip-systemctl-redirect "$version" main start
fi
if ! (echo > /dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  $sudo_cmd redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
fi
# The tests connect as postgres over TCP without a password (as on the dev machines). A fresh
# Debian cluster asks for one on 127.0.0.1: trust local TCP connections there too.
if ! psql -h 127.0.0.1 -U postgres -w -c 'SELECT 1' >/dev/null 2>&1; then
  version=$(ls /etc/postgresql | sort -V | tail -n1)
  hba=/etc/postgresql/$version/main/pg_hba.conf
  $sudo_cmd sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  $sudo_cmd pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  for _ in $(seq 1 50); do
    psql -h 127.0.0.1 -U postgres -w -c 'SELECT 1' >/dev/null 2>&1 && break
    sleep 0.1
  done
fi
