#!/usr/bin/env bash
# The main job end to end on the real model: inspect -> edit one fact -> ask before/after -> apply ->
# revert -> the reverted file's SHA-256 equals the original's. Usage: scripts/demo.sh WILKE_BIN MODEL.gguf
set -euo pipefail
bin="$1"; model="$2"
out="${WILKE_DEMO_DIR:-demo-out}"
mkdir -p "$out"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
prompt="The Eiffel Tower is located in the city of"

step "inspect: what is in the checkpoint (header only)"
"$bin" inspect "$model" --tensors 'blk.5.*'

step "ask: the model before the edit"
"$bin" ask "$model" "$prompt" -n 8 --top 3

step "edit (${WILKE_DEMO_METHOD:-wilke}): compute the edit and write it as a patch"
# WILKE_DEMO_METHOD=rome edits at a fixed layer (about 15x faster than WilKE's 15-layer scan).
"$bin" edit "$model" --prompt "{} is located in the city of" --subject "The Eiffel Tower" \
    --target "Rome" --target-true "Paris" --method "${WILKE_DEMO_METHOD:-wilke}" -o "$out/eiffel.wpatch" --force

step "show: what the patch holds"
"$bin" show "$out/eiffel.wpatch"

step "ask --patch: the edited model, patched in memory"
"$bin" ask "$model" "$prompt" -n 8 --top 3 --patch "$out/eiffel.wpatch"

step "apply: write the edited checkpoint (the base tensor's hash is checked first)"
"$bin" apply "$model" "$out/eiffel.wpatch" -o "$out/edited.gguf" --force
"$bin" log "$out/edited.gguf"
"$bin" ask "$out/edited.gguf" "$prompt" -n 8 --top 3

step "revert: undo the patch, byte for byte"
"$bin" revert "$out/edited.gguf" "$out/eiffel.wpatch" -o "$out/reverted.gguf" --force
a=$(sha256sum "$model" | cut -d' ' -f1); b=$(sha256sum "$out/reverted.gguf" | cut -d' ' -f1)
echo "original: $a"
echo "reverted: $b"
if [ "$a" = "$b" ]; then echo "hashes equal: revert restored the original bytes"; else echo "HASH MISMATCH"; exit 1; fi
echo "A second real model, Gemma 3 270M (Q4_K_M GGUF): make fetch-model fetches it too; wilke ask runs it, editing it is issue #14's next stage."
