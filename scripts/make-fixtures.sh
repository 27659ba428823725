#!/usr/bin/env bash
# Regenerates every committed Python reference fixture (`make fixtures`), in dependency order: the tiny
# models first (the GGUF forms, ROME and MEMIT references read them), the real-model references last
# and only when the model file is present (they need no other fixture).
#
# Deterministic: each script seeds its generators; one BLAS thread keeps PyTorch's reductions in one
# order, so a re-run on the same torch build writes the same bytes. Another torch build (or thread
# count) moves float32 results by ~1e-5: the Swift tests compare at 1e-4, and `git diff --stat` after a
# run shows which files moved.
set -euo pipefail
cd "$(dirname "$0")/.."
py="$(scripts/python-env.sh)"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONHASHSEED=0
cache="${WILKE_CACHE:-$HOME/.cache/wilke}"

run() { echo "== $*" >&2; "$py" "$@"; }

run samples/reference/make_model_fixtures.py
run samples/reference/make_family_gguf_fixtures.py
run samples/reference/make_rome_fixtures.py
run samples/reference/memit_reference.py
run samples/reference/make_safetensors_fixtures.py
run samples/reference/make_gguf_fixtures.py
run samples/reference/make_quant_fixtures.py

smollm2="${WILKE_MODEL:-$cache/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
gemma3="$cache/models/gemma-3-270m-q4_k_m.gguf"
if [ -f "$smollm2" ]; then
  run samples/reference/make_tokenizer_fixtures.py
  run samples/reference/make_smollm2_reference.py "$smollm2"
else
  echo "skipping the SmolLM2 tokenizer and reference fixtures: $smollm2 missing (make fetch-model)" >&2
fi
if [ -f "$gemma3" ]; then
  run samples/reference/make_tokenizer_fixtures.py gemma3
  run samples/reference/make_gemma3_reference.py "$gemma3"
else
  echo "skipping the Gemma 3 reference fixtures: $gemma3 missing (make fetch-model)" >&2
fi
