#!/usr/bin/env bash
# Start PostgreSQL and Redis when installed but not running (scale-out back-ends; the embedded
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
