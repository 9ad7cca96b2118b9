#!/usr/bin/env bash
# Check a `cuda` build of the gateway without a GPU:
#   - it links CUDA's runtime and cuBLAS dynamically, and not the driver (libcuda.so.1);
#   - its embedded GPU code is sm_90 machine code plus compute_90 PTX, and nothing else;
#   - on a machine with no NVIDIA driver it starts, says why it cannot use a GPU, and
#     transcribes on the CPU (only where the models are fetched).
#
#   deploy/gpu/check-cuda-binary.sh BINARY CUDA_ROOT
set -euo pipefail
bin=$1 root=$2
fail() { echo "check-cuda-binary: $*" >&2; exit 1; }

needed=$(readelf -d "$bin" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p')
echo "linked: $(echo $needed)"
for lib in libcudart.so.13 libcublas.so.13; do
  grep -qx "$lib" <<<"$needed" || fail "$bin does not link $lib"
done
if grep -q '^libcuda\.so' <<<"$needed"; then fail "$bin links the driver (libcuda.so.1)"; fi
echo "runpath: $(readelf -d "$bin" | sed -n 's/.*R\(UN\)\?PATH.*\[\(.*\)\]/\2/p')"

cuobjdump=$root/bin/cuobjdump
[[ -x $cuobjdump ]] || fail "no cuobjdump in $root/bin"
elf=$("$cuobjdump" --list-elf "$bin" | grep -o 'sm_[0-9a-z]*' | sort | uniq -c)
ptx=$("$cuobjdump" --list-ptx "$bin" | grep -o 'sm_[0-9a-z]*' | sort | uniq -c)
echo "machine code:" $elf
echo "PTX:" $ptx
[[ -n $elf ]] || fail "no GPU machine code in $bin"
if grep -v ' sm_90$' <<<"$elf" | grep -q .; then fail "machine code for other than sm_90"; fi
[[ -n $ptx ]] || fail "no PTX in $bin"
if grep -v ' sm_90$' <<<"$ptx" | grep -q .; then fail "PTX for other than compute_90"; fi
echo "size: $(du -h "$bin" | cut -f1)"

models=${SWITCHBOARD_MODELS:-$HOME/.local/share/switchboard/models}
if [[ -f $models/whisper/ggml-tiny.en-q8_0.bin ]] && ! ls /dev/nvidia0 >/dev/null 2>&1; then
  wav=$(mktemp --suffix=.wav)
  espeak-ng -v en-us -s 150 -w "$wav" "Please send the weekly report to the whole team before lunch."
  out=$(LD_LIBRARY_PATH=$root/lib "$bin" transcribe --json --dir "$models" "$wav" 2>&1)
  rm -f "$wav"
  echo "$out" | tail -3
  grep -q 'no usable GPU' <<<"$out" || fail "no warning about the missing GPU"
  grep -q '"backend":"cpu"' <<<"$out" || fail "did not fall back to the CPU"
  grep -qi "weekly report" <<<"$out" || fail "CPU fallback did not transcribe"
  echo "no GPU here: it warned, fell back to the CPU and transcribed"
fi
echo "cuda binary ok"
