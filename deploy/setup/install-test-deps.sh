#!/usr/bin/env bash
# Python packages the end-to-end tests use as real clients: the official `openai` SDK with
# its realtime (websockets) extra, and httpx for the plain-HTTP APIs (uploads, sessions).
# Installed only when missing or at another version.
set -euo pipefail
OPENAI_VERSION=3.54.0
HTTPX_VERSION=0.28.1
if python3 -c "import openai, websockets, httpx, sys; sys.exit(openai.__version__ != '$OPENAI_VERSION' or httpx.__version__ != '$HTTPX_VERSION')" 2>/dev/null; then
  exit 0
fi
echo "installing: openai[realtime]==$OPENAI_VERSION httpx==$HTTPX_VERSION (pip)"
python3 -m pip install --quiet --disable-pip-version-check "openai[realtime]==$OPENAI_VERSION" "httpx==$HTTPX_VERSION"
