#!/usr/bin/env bash
# The GPU measurements (issue 8), run on the GPU machine from pack.sh's parts:
#
#   kit/measure.sh PARTS_DIR OUT_DIR
#
# Copies the parts found in PARTS_DIR to a work directory ($SWITCHBOARD_GPU_WORK, default
# /tmp/switchboard-gpu), unpacks every file that is whole, then runs each step whose files are
# all there and that has not run before (a marker in the work directory), with its log in
# OUT_DIR. Call it once per delivered part: each call does what became possible.
#   gpu        nvidia-smi, the CUDA libraries run-gpu.sh finds, what the benchmark links
#   tiny-q8    tiny.en q8_0: latency of 1/3/10 s utterances; streams carried at p95 <= 300 ms
#              with 1 state, 4 states on one context, and 4 contexts of one state
#   base-q8    base q8_0: latency; streams with 1 state and 4 states on one context
#   language   base q8_0: what detecting the language costs (`benches/language.rs`), against
#              naming it, on 1/3/10 s English clips and a 5 s German one
#   gateway    the gateway on the GPU: `transcribe --json`, the start-up log, /readyz (not
#              ready: the other engines' models come last)
#   tiny-f16, base-f16   the f16 files: latency; streams with 1 state
#   language-f16   the same detection costs with base f16
#   ready      the gateway with every engine's model (an unreachable LLM server in place of
#              the embedded LLM): /readyz ready, naming the GPU
# `nvidia-smi dmon` samples the GPU's load beside each benchmark (<step>-dmon.log).
set -uo pipefail
parts=$(cd "$1" && pwd) out=$(mkdir -p "$2" && cd "$2" && pwd)
kit=$(cd "$(dirname "$0")" && pwd)
work=${SWITCHBOARD_GPU_WORK:-/tmp/switchboard-gpu}
started=$(date +%s)
mkdir -p "$work/parts" "$work/bundle"
cp "$parts"/part.* "$work/parts/" 2>/dev/null
cp -r "$kit/clips" "$kit/run-gpu.sh" "$work/bundle/"
python3 "$kit/unpack.py" "$kit/manifest.json" "$work/parts" "$work" || exit 1
echo "measure: staged in $(($(date +%s) - started)) s"
cd "$work/bundle"
export SWITCHBOARD_MODELS=$work/models
export STT_BENCH_SECS=${STT_BENCH_SECS:-8} STT_BENCH_UPLOADS=${STT_BENCH_UPLOADS:-0}
export STT_BENCH_FIRST_STREAMS=${STT_BENCH_FIRST_STREAMS:-16}
export STT_BENCH_MAX_STREAMS=${STT_BENCH_MAX_STREAMS:-1024}

# step NAME FILE... -- COMMAND: run COMMAND once, when every FILE (under $work) is whole.
step() {
  local name=$1 needs=() ; shift
  while [[ $1 != -- ]]; do needs+=("$1"); shift; done; shift
  [[ -e $work/$name.done ]] && return 0
  for f in "${needs[@]}"; do [[ -e $work/$f.done ]] || return 0; done
  echo "=== $name $(date +%T)"
  nvidia-smi dmon -s u -d 1 >"$out/$name-dmon.log" 2>&1 &
  local dmon=$!
  "$@" 2>&1 | tee "$out/$name.log"
  kill "$dmon" 2>/dev/null
  touch "$work/$name.done"
}

gpu() {
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  LD_LIBRARY_PATH=$(./run-gpu.sh --print-library-path) ldd ./stt-bench
}
# bench SECONDS MODELS POOLS: the STT benchmark, stopped after SECONDS.
bench() { STT_BENCH_MODELS=$2 STT_BENCH_POOLS=$3 timeout "$1" ./run-gpu.sh stt-bench; }
# language SECONDS MODELS: the language-detection benchmark, stopped after SECONDS.
language() { LANGUAGE_BENCH_MODELS=$2 timeout "$1" ./run-gpu.sh language-bench; }
# readyz NAME: start the gateway, wait for its first load to end, print /readyz and the log.
readyz() {
  export SWITCHBOARD_DATA_DIR=$work/data-$1
  mkdir -p "$SWITCHBOARD_DATA_DIR"
  timeout 90 ./run-gpu.sh serve --listen 127.0.0.1:18080 >"$out/$1-serve.log" 2>&1 &
  local body=""
  for _ in $(seq 80); do
    sleep 1
    body=$(python3 - <<'PY'
import urllib.error, urllib.request
try:
    print(urllib.request.urlopen("http://127.0.0.1:18080/readyz").read().decode())
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode())
except OSError:
    pass
PY
)
    # Until the engines' first load ends the reason is "loading models"; then ready, or why not.
    [[ -n $body && $body != *'"reason":"loading models"'* ]] && break
  done
  echo "/readyz: $body"
  pkill -f 'switchboard serve --listen 127.0.0.1:18080'
  sleep 1
  echo "start-up log:"
  grep -v 'database migrated' "$out/$1-serve.log"
}
gateway() {
  ./run-gpu.sh transcribe --json clips/3s.wav
  readyz gateway
}
ready() {
  SWITCHBOARD_LLM_EMBEDDED=off SWITCHBOARD_LLM_BASE_URL=http://127.0.0.1:9/v1 readyz ready
}

step gpu bundle/stt-bench -- gpu
step tiny-q8 bundle/stt-bench models/whisper/ggml-tiny.en-q8_0.bin -- \
  bench 330 tiny.en-q8_0 1x1,4x1,1x4
step base-q8 bundle/stt-bench models/whisper/ggml-base-q8_0.bin -- \
  bench 300 base-q8_0 1x1,4x1
step language bundle/language-bench models/whisper/ggml-base-q8_0.bin -- \
  language 120 base-q8_0
step gateway bundle/switchboard models/whisper/ggml-tiny.en-q8_0.bin -- gateway
step tiny-f16 bundle/stt-bench models/whisper/ggml-tiny.en.bin -- \
  bench 200 tiny.en 1x1
step base-f16 bundle/stt-bench models/whisper/ggml-base.bin -- \
  bench 200 base 1x1
step language-f16 bundle/language-bench models/whisper/ggml-base.bin -- \
  language 120 base
step ready bundle/switchboard models/whisper/ggml-tiny.en-q8_0.bin models/serve.tar -- ready
echo "measure: done in $(($(date +%s) - started)) s"
