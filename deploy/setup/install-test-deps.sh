#!/usr/bin/env bash
# Real clients for the end-to-end tests, installed only when missing or at another version:
# the official `openai` SDK with its realtime (websockets) extra, httpx for the plain-HTTP
# APIs (uploads, sessions), PyJWT for identity-provider tokens, fpdf2 to write real PDFs for
# the knowledge base, headless Chromium with playwright-core for the call page, and ffmpeg to
# write uploads in the containers phones and browsers send (M4A, MP4, WebM, CAF), and the
# reference `flac` tool to check the FLAC we write.
set -euo pipefail
OPENAI_VERSION=3.54.0
HTTPX_VERSION=0.28.1
# PyJWT (with cryptography) signs tokens as an identity provider would.
PYJWT_VERSION=2.10.1
FPDF2_VERSION=2.8.3
if ! python3 -c "import openai, websockets, httpx, jwt, cryptography, fpdf, sys; sys.exit(openai.__version__ != '$OPENAI_VERSION' or httpx.__version__ != '$HTTPX_VERSION' or jwt.__version__ != '$PYJWT_VERSION' or fpdf.__version__ != '$FPDF2_VERSION')" 2>/dev/null; then
  echo "installing: openai[realtime]==$OPENAI_VERSION httpx==$HTTPX_VERSION PyJWT[crypto]==$PYJWT_VERSION fpdf2==$FPDF2_VERSION (pip)"
  python3 -m pip install --quiet --disable-pip-version-check "openai[realtime]==$OPENAI_VERSION" "httpx==$HTTPX_VERSION" "PyJWT[crypto]==$PYJWT_VERSION" "fpdf2==$FPDF2_VERSION"
fi

# The browser tests: Debian's Chromium driven by playwright-core (no browser download).
apt_packages=()
command -v chromium >/dev/null 2>&1 || apt_packages+=(chromium)
command -v node >/dev/null 2>&1 || apt_packages+=(nodejs)
command -v npm >/dev/null 2>&1 || apt_packages+=(npm)
command -v ffmpeg >/dev/null 2>&1 || apt_packages+=(ffmpeg)
command -v flac >/dev/null 2>&1 || apt_packages+=(flac)
if ((${#apt_packages[@]})); then
  echo "installing: ${apt_packages[*]} (apt)"
  sudo_cmd=""; [[ $(id -u) -ne 0 ]] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
fi
browser_dir="$(dirname "$0")/../../tests/browser"
wanted=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['dependencies']['playwright-core'])" "$browser_dir/package.json")
installed=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['version'])" "$browser_dir/node_modules/playwright-core/package.json" 2>/dev/null || true)
if [[ "$installed" != "$wanted" ]]; then
  echo "installing: playwright-core@$wanted (npm)"
  (cd "$browser_dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent >/dev/null)
fi
