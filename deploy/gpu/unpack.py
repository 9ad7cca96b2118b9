"""Unpack the files of `pack.sh`'s stream whose bytes have all arrived.

    python3 unpack.py MANIFEST PARTS_DIR WORK_DIR

PARTS_DIR holds part.0, part.1, ... as they arrive (only a gapless prefix counts). Each file
whose bytes lie inside that prefix is decompressed to WORK_DIR/<name> once (a `.tar` is
unpacked into its directory instead); a `<name>.done` marker beside it says it is whole.
Prints what it unpacked.
"""

import io
import json
import lzma
import os
import sys
import tarfile


def main(manifest_path: str, parts_dir: str, work: str) -> None:
    manifest = json.load(open(manifest_path))
    parts = []
    while os.path.exists(os.path.join(parts_dir, f"part.{len(parts)}")):
        parts.append(os.path.join(parts_dir, f"part.{len(parts)}"))
    sizes = [os.path.getsize(p) for p in parts]
    arrived = sum(sizes)
    print(f"unpack: {len(parts)} of {manifest['parts']} parts, {arrived / 1e6:.1f} MB")

    def read(offset: int, length: int) -> bytes:
        data, start = bytearray(), 0
        for path, size in zip(parts, sizes):
            lo, hi = max(offset, start), min(offset + length, start + size)
            if lo < hi:
                with open(path, "rb") as f:
                    f.seek(lo - start)
                    data += f.read(hi - lo)
            start += size
        return bytes(data)

    for entry in manifest["entries"]:
        dest = os.path.join(work, entry["name"])
        if os.path.exists(dest + ".done") or entry["offset"] + entry["length"] > arrived:
            continue
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        data = lzma.decompress(read(entry["offset"], entry["length"]))
        if dest.endswith(".tar"):
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                tar.extractall(os.path.dirname(dest), filter="data")
        else:
            with open(dest, "wb") as f:
                f.write(data)
            os.chmod(dest, entry["mode"])
        open(dest + ".done", "w").close()
        print(f"unpack: {entry['name']} ({len(data) / 1e6:.1f} MB)")


if __name__ == "__main__":
    main(*sys.argv[1:4])
