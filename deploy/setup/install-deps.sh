#!/usr/bin/env bash
# System packages the build, the models fetch and the tests need, installed only when missing.
#   cmake, libclang-dev, pkg-config, g++: whisper.cpp and espeak-ng (built from source by crates)
#   libsonic-dev: espeak-ng's speed control, linked statically (without it espeak-ng's build
#                 tries to clone sonic from the internet)
#   espeak-ng, espeak-ng-data: phoneme data for Piper at run time, and test speech
#   sox: test audio; python3-pip: `switchboard models fetch` downloads wheels with pip
set -euo pipefail
packages=(cmake libclang-dev pkg-config g++ libgomp1 libssl-dev libsonic-dev espeak-ng espeak-ng-data sox python3-pip)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# python3 -m pip may come from a non-Debian Python; it is enough if it works.
if [[ " ${missing[*]} " == *" python3-pip "* ]] && python3 -m pip --version >/dev/null 2>&1; then
  missing=("${missing[@]/python3-pip}")
fi
read -r -a missing <<<"${missing[*]}"
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo_cmd=""; [[ $(id -u) -ne 0 ]] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
