#!/usr/bin/env bash
# Pack the cuda bundle (`make cuda`) and the models for a GPU machine that can only be
# reached through size-limited transfers (the GPU machines we borrow take at most 64 MiB a
# call and have no network).
#
#   deploy/gpu/pack.sh [PART_MB]        -> dist/gpu-parts/{kit/, part.0, part.1, ...}
#
# Each file is xz-compressed; the files are joined in order of what the measurements need
# first (the STT benchmark, tiny.en q8_0, base q8_0, the language benchmark, the gateway,
# the rest of what a ready gateway loads: Piper, ONNX Runtime, the VAD and the embedder, as
# one tar; then the f16 models), and the stream is cut into parts of at most PART_MB (60) MB.
# `kit/` (well under 1 MB) holds `measure.sh`, `unpack.py`, `run-gpu.sh`, the benchmarks'
# clips and the manifest. Send `kit/` with every part; on the GPU machine `kit/measure.sh`
# unpacks every file whose bytes have all arrived and runs each measurement whose files are
# complete, so a partial delivery already gives the first figures.
set -euo pipefail
cd "$(dirname "$0")/../.."
part_mb=${1:-60}
bundle=${SWITCHBOARD_CUDA_BUNDLE:-$PWD/dist/switchboard-cuda}
models=${SWITCHBOARD_MODELS:-$HOME/.local/share/switchboard/models}
out=${SWITCHBOARD_GPU_PARTS:-$PWD/dist/gpu-parts}
[[ -x $bundle/stt-bench && -x $bundle/language-bench && -x $bundle/switchboard ]] ||
  { echo "pack: no bundle in $bundle: run make cuda first" >&2; exit 1; }
# Fetch what is missing with the bundle's own binary (it runs on the CPU here), so no
# CPU-only build is needed first.
cuda_lib=${SWITCHBOARD_CUDA_HOME:-$HOME/.cache/switchboard/cuda-13.0}/nvidia/cu13/lib
LD_LIBRARY_PATH=$cuda_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} "$bundle/switchboard" models \
  fetch --dir "$models" whisper-tiny.en-q8_0 whisper-tiny.en whisper-base-q8_0 whisper-base

# name in the stream = path under the GPU machine's work directory, then the source.
files=(
  "bundle/stt-bench=$bundle/stt-bench"
  "models/whisper/ggml-tiny.en-q8_0.bin=$models/whisper/ggml-tiny.en-q8_0.bin"
  "models/whisper/ggml-base-q8_0.bin=$models/whisper/ggml-base-q8_0.bin"
  "bundle/language-bench=$bundle/language-bench"
  "bundle/switchboard=$bundle/switchboard"
  "models/serve.tar=$out/serve.tar"
  "models/whisper/ggml-tiny.en.bin=$models/whisper/ggml-tiny.en.bin"
  "models/whisper/ggml-base.bin=$models/whisper/ggml-base.bin"
)
rm -rf "$out" && mkdir -p "$out/kit/xz"
# unpack.py unpacks a .tar entry where it lies.
tar -C "$models" -cf "$out/serve.tar" onnxruntime piper vad turn embed
cp deploy/gpu/run-gpu.sh deploy/gpu/measure.sh deploy/gpu/unpack.py "$out/kit/"
cp -r "$bundle/clips" "$out/kit/"
manifest=()
for entry in "${files[@]}"; do
  name=${entry%%=*} src=${entry#*=}
  [[ -f $src ]] || { echo "pack: skipping $name ($src is missing)"; continue; }
  xz -6 -T0 -c "$src" >"$out/kit/xz/$(basename "$name").xz"
  manifest+=("$name")
done
python3 - "$out" "$part_mb" "${manifest[@]}" <<'PY'
import json, os, sys
out, part_mb, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
entries, offset = [], 0
stream = os.path.join(out, "kit", "xz")
for name in names:
    path = os.path.join(stream, os.path.basename(name) + ".xz")
    size = os.path.getsize(path)
    mode = 0o755 if name.startswith("bundle/") else 0o644
    entries.append({"name": name, "offset": offset, "length": size, "mode": mode})
    offset += size
limit = part_mb * 1_000_000
part, written, sink = 0, 0, None
for name in names:
    with open(os.path.join(stream, os.path.basename(name) + ".xz"), "rb") as f:
        while chunk := f.read(1 << 20):
            while chunk:
                if sink is None or written == limit:
                    if sink:
                        sink.close()
                        part += 1
                    sink, written = open(os.path.join(out, f"part.{part}"), "wb"), 0
                take = chunk[: limit - written]
                sink.write(take)
                written += len(take)
                chunk = chunk[len(take):]
sink.close()
json.dump({"entries": entries, "parts": part + 1}, open(os.path.join(out, "kit", "manifest.json"), "w"), indent=1)
for e in entries:
    end = e["offset"] + e["length"]
    print(f"{e['name']}: {e['length'] / 1e6:.1f} MB, whole once part.{(end - 1) // limit} has arrived")
PY
rm -rf "$out/kit/xz" "$out/serve.tar"
echo "pack: $(ls "$out" | grep -c '^part\.') parts of at most $part_mb MB in $out; send kit/ with each"
