#!/usr/bin/env bash
# Build the gateway with CUDA speech-to-text on a machine with no CUDA toolkit and no GPU.
#
#   deploy/gpu/build-cuda.sh            prepare CUDA 13.0 from PyPI, build, check, bundle
#
# CUDA's compiler, headers and libraries come from NVIDIA's PyPI wheels (pinned below to 13.0,
# the version of the driver and of PyTorch's libraries on our H100/H200 machines). whisper.cpp
# is built for sm_90 (Hopper) machine code plus compute_90 PTX, which newer GPUs compile at
# start. The result is a bundle directory (binary + the start script) to copy to the GPU
# machine, where `run-gpu.sh` points the loader at the CUDA libraries already installed there.
#
# Two choices keep the binary usable anywhere:
#   - GGML_CUDA_NO_VMM=ON: ggml's CUDA pool then uses cudaMalloc instead of the driver's
#     virtual-memory API, so the binary does not link libcuda.so.1. It starts on a machine
#     with no NVIDIA driver and transcribes on the CPU (with a warning) instead of failing
#     to load.
#   - the CUDA libraries are linked dynamically (libcudart.so.13, libcublas.so.13): the GPU
#     machine's own copies are used, nothing of CUDA's ~700 MB is shipped.
#
# Environment: SWITCHBOARD_CUDA_HOME (where CUDA is unpacked), CARGO_TARGET_DIR,
# SWITCHBOARD_CUDA_BUNDLE (output directory), CUDA_ARCHS (CMake syntax).
set -euo pipefail
cd "$(dirname "$0")/../.."

cuda_home=${SWITCHBOARD_CUDA_HOME:-$HOME/.cache/switchboard/cuda-13.0}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR_CUDA:-$HOME/.cache/switchboard/target-cuda}
bundle=${SWITCHBOARD_CUDA_BUNDLE:-$PWD/dist/switchboard-cuda}
archs=${CUDA_ARCHS:-90-real;90-virtual}
wheels=(
  nvidia-cuda-nvcc==13.0.88     # nvcc, ptxas, fatbinary, nvlink
  nvidia-nvvm==13.0.88          # cicc and libdevice, which nvcc runs
  nvidia-cuda-crt==13.0.88      # the compiler's runtime headers (crt/)
  nvidia-cuda-runtime==13.0.96  # cuda_runtime.h, libcudart.so.13
  nvidia-cuda-cccl==13.0.85     # CUB, Thrust, libcu++ (ggml-cuda includes CUB)
  nvidia-cublas==13.0.2.14      # cublas_v2.h, libcublas.so.13, libcublasLt.so.13
)
tools=(nvidia-cuda-cuobjdump==13.2.51)  # the oldest on PyPI; only reads the result

deploy/setup/install-deps.sh

root=$cuda_home/nvidia/cu13
if [[ ! -x $root/bin/nvcc || ! -f $cuda_home/.complete ]]; then
  echo "preparing CUDA 13.0 in $cuda_home"
  rm -rf "$cuda_home" && mkdir -p "$cuda_home/wheels"
  python3 -m pip download -q --no-deps --only-binary=:all: --disable-pip-version-check \
    -d "$cuda_home/wheels" "${wheels[@]}" "${tools[@]}"
  for w in "$cuda_home"/wheels/*.whl; do
    python3 -m zipfile -e "$w" "$cuda_home"
  done
  chmod +x "$root"/bin/* "$root"/nvvm/bin/* 2>/dev/null || true
  find "$root/bin" -type f -exec chmod +x {} +
  # The wheels ship versioned libraries only; the linker looks for the plain names.
  for lib in cudart cublas cublasLt; do
    ln -sf "lib$lib.so.13" "$root/lib/lib$lib.so"
  done
  ln -sfn lib "$root/lib64"
  # whisper-rs-sys asks for `-lculibos` (needed by static cuBLAS only) and `-lcuda` (the
  # driver, which a GGML_CUDA_NO_VMM build never calls). An empty archive and an empty
  # library named like the driver satisfy the linker; with --as-needed neither ends up in
  # the binary, so the real driver is what cudart loads at run time.
  ar rcs "$root/lib/libculibos.a"
  mkdir -p "$root/lib/stubs"
  echo 'void switchboard_cuda_link_stub(void) {}' >"$cuda_home/stub.c"
  cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$root/lib/stubs/libcuda.so" "$cuda_home/stub.c"
  touch "$cuda_home/.complete"
fi
"$root/bin/nvcc" --version | tail -2

export PATH=$root/bin:$PATH
export CUDA_PATH=$root CUDA_HOME=$root CUDAToolkit_ROOT=$root
# whisper-rs-sys passes every CMAKE_* and GGML_* variable to whisper.cpp's CMake.
export CMAKE_CUDA_COMPILER=$root/bin/nvcc
export CMAKE_CUDA_ARCHITECTURES=$archs
export GGML_CUDA_NO_VMM=ON
# Link against the wheels' libraries; at run time look next to the binary first
# ($ORIGIN/lib, for a bundle that ships them), then wherever LD_LIBRARY_PATH says.
export RUSTFLAGS="${RUSTFLAGS:-} -L native=$root/lib -L native=$root/lib/stubs -C link-arg=-Wl,-rpath,\$ORIGIN/lib"
echo "building with CUDA for $archs into $CARGO_TARGET_DIR"
# Without the default `openmp` feature: on the GPU whisper.cpp's CPU threads barely work,
# and the bundle then needs no libgomp.so.1 beside the CUDA libraries.
cargo build --release -p switchboard-gateway --no-default-features --features cuda
bin=$CARGO_TARGET_DIR/release/switchboard
# The STT and language-detection benchmarks, built the same way, to run where there is no
# Rust toolchain.
benches=$(cargo bench -p switchboard-benches --bench stt --bench language --no-default-features --features cuda \
  --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        print(m["target"]["name"], m["executable"])')
bench_path() { awk -v name="$1" '$1 == name { print $2 }' <<<"$benches"; }
for name in stt language; do
  [[ -x $(bench_path $name) ]] || { echo "build-cuda: the $name benchmark did not build" >&2; exit 1; }
done

deploy/gpu/check-cuda-binary.sh "$bin" "$root"

rm -rf "$bundle" && mkdir -p "$bundle"
cp "$bin" "$bundle/switchboard"
cp "$(bench_path stt)" "$bundle/stt-bench"
cp "$(bench_path language)" "$bundle/language-bench"
strip "$bundle/switchboard" "$bundle/stt-bench" "$bundle/language-bench"
cp deploy/gpu/run-gpu.sh "$bundle/"
# The benchmarks' clips (the GPU machine has no espeak-ng), the same text as
# benches/src/lib.rs's STT_UTTERANCES and benches/benches/language.rs's German sentence.
mkdir -p "$bundle/clips"
espeak-ng -v en-us -s 150 -w "$bundle/clips/1s.wav" "Yes, please."
espeak-ng -v en-us -s 150 -w "$bundle/clips/3s.wav" \
  "I would like to book a table for four people tonight at seven."
espeak-ng -v en-us -s 150 -w "$bundle/clips/10s.wav" \
  "I would like to book a table for four people tonight at seven, preferably by the window, and one of us is vegetarian so please let the kitchen know. We will come by car, so we also need to know where to park."
espeak-ng -v de -s 150 -w "$bundle/clips/de5s.wav" \
  "Guten Morgen, ich möchte einen Tisch für zwei Personen reservieren."
# One archive to copy (xz: Python's lzma module unpacks it where no xz is installed).
tar -C "$(dirname "$bundle")" -cJf "$bundle.tar.xz" "$(basename "$bundle")"
echo "bundle: $bundle ($(du -sh "$bundle" | cut -f1)), $bundle.tar.xz ($(du -h "$bundle.tar.xz" | cut -f1))"
echo "copy it and the models to the GPU machine; there: run-gpu.sh serve | stt-bench | language-bench"
