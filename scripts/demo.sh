#!/usr/bin/env bash
# The main job end to end on the real model. Usage: scripts/demo.sh WILKE_BIN MODEL.gguf
set -euo pipefail
bin="$1"; model="$2"
out="${WILKE_DEMO_DIR:-demo-out}"
mkdir -p "$out"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "inspect: what is in the checkpoint (header only)"
"$bin" inspect "$model" --tensors 'blk.0.*'

step "convert: GGUF -> Hugging Face directory (dequantized, Q/K rows un-permuted)"
"$bin" convert "$model" -o "$out/smollm2-hf" --force
ls -l "$out/smollm2-hf"
"$bin" inspect "$out/smollm2-hf" --tensors 'model.layers.0.*'
