#!/usr/bin/env bash
# Start a `cuda` build (from build-cuda.sh) on a GPU machine that has the NVIDIA driver and
# CUDA 13's libraries but no toolkit: find libcudart.so.13 and libcublas.so.13 (a CUDA install,
# or the nvidia-* wheels of a Python environment such as PyTorch's) and run the binary with
# them on the loader's path. Arguments go to the binary: `run-gpu.sh serve`, `run-gpu.sh
# transcribe --json clip.wav`; `run-gpu.sh stt-bench` and `run-gpu.sh language-bench` run
# the STT and language-detection benchmarks instead, and
# `run-gpu.sh --print-library-path` prints the loader path it would use.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
candidates=()
for py in python3 /opt/torch/.venv/bin/python3; do
  command -v "$py" >/dev/null 2>&1 || continue
  while read -r dir; do candidates+=("$dir"); done < <("$py" - <<'PY' 2>/dev/null || true
import importlib.util, os
spec = importlib.util.find_spec("nvidia")
for base in (spec.submodule_search_locations if spec else []):
    for sub in ("cu13/lib", "cuda_runtime/lib", "cublas/lib"):
        path = os.path.join(base, sub)
        if os.path.isdir(path):
            print(path)
PY
)
done
candidates+=(/usr/local/cuda/lib64 /usr/local/cuda-13.0/lib64 /usr/lib/x86_64-linux-gnu)
libs=()
for want in libcudart.so.13 libcublas.so.13 libcublasLt.so.13; do
  found=""
  for dir in "$here/lib" "${candidates[@]}"; do
    if [[ -e $dir/$want ]]; then found=$dir; break; fi
  done
  [[ -n $found ]] || { echo "run-gpu: $want not found (looked in ${candidates[*]})" >&2; exit 1; }
  [[ " ${libs[*]} " == *" $found "* ]] || libs+=("$found")
done
export LD_LIBRARY_PATH=$(IFS=:; echo "${libs[*]}")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
if [[ ${1:-} == --print-library-path ]]; then echo "$LD_LIBRARY_PATH"; exit 0; fi
echo "run-gpu: CUDA libraries from $LD_LIBRARY_PATH" >&2
if [[ ${1:-} == stt-bench || ${1:-} == language-bench ]]; then
  bench=$1
  shift
  export STT_BENCH_CLIPS=${STT_BENCH_CLIPS:-$here/clips}
  # The language bench's call part needs espeak-ng and the test helpers: not on a GPU machine.
  export LANGUAGE_BENCH=${LANGUAGE_BENCH:-engine}
  exec "$here/$bench" "$@"
fi
exec "$here/switchboard" "$@"
