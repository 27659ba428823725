#!/usr/bin/env bash
# make accept: the real-model acceptance runs (too slow for `make test`). Each fact of
# samples/edits.jsonl is edited alone on SmolLM2 with ROME and with WilKE; the fact must become the
# greedy answer and the 20 prompts of samples/unrelated.txt must keep theirs. Writes docs/ACCEPTANCE.md.
# ACCEPT_METHODS (default "rome wilke"; "none" skips the edits) and ACCEPT_LIMIT (first N facts)
# shorten the run; WilKE's fast scan optimizes about two layers per fact, so it takes ~2x ROME's time. Then the interop check
# of `wilke export` / `rebase` / `apply --promote` with llama.cpp and PEFT (samples/reference/check_lora.py,
# in the Python environment of scripts/python-env.sh; ACCEPT_LORA=0 skips it), and Gemma 3 edits read by
# llama.cpp (samples/reference/check_gemma3_llamacpp.py, ROME and WilKE on the first ACCEPT_GEMMA3_FACTS
# facts, default all 10; ACCEPT_GEMMA3=0 skips it).
set -euo pipefail
bin="$1"; model="$2"
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${WILKE_ACCEPT_DIR:-$root/.build/accept}"
mkdir -p "$out"
limit=()
[ -n "${ACCEPT_LIMIT:-}" ] && limit=(--limit "$ACCEPT_LIMIT")
methods="${ACCEPT_METHODS:-rome wilke}"
[ "$methods" = none ] && methods=""
for m in $methods; do
  echo "accept: $m on $(grep -c '^{' "$root/samples/edits.jsonl") facts ${ACCEPT_LIMIT:+(first $ACCEPT_LIMIT)}" >&2
  "$bin" dev accept "$model" --requests "$root/samples/edits.jsonl" --unrelated "$root/samples/unrelated.txt" \
      --method "$m" "${limit[@]}" | tee "$out/$m.jsonl"
done
if [ "${ACCEPT_LORA:-1}" != 0 ]; then
  echo "accept: LoRA export, rebase and --promote with llama.cpp and PEFT" >&2
  py="$("$root/scripts/python-env.sh")"
  "$py" "$root/samples/reference/check_lora.py" --bin "$bin" --model "$model" --out "$out/lora.json" 2>"$out/lora.log" >/dev/null \
    || { tail -5 "$out/lora.log" >&2; exit 1; }
fi
if [ "${ACCEPT_GEMMA3:-1}" != 0 ]; then
  gemma="${WILKE_GEMMA3:-${WILKE_CACHE:-$HOME/.cache/wilke}/models/gemma-3-270m-q4_k_m.gguf}"
  if [ -f "$gemma" ]; then
    echo "accept: Gemma 3 ROME and WilKE edits applied with wilke apply, answered by llama.cpp" >&2
    py="$("$root/scripts/python-env.sh")"
    "$py" "$root/samples/reference/check_gemma3_llamacpp.py" --bin "$bin" --model "$gemma" --facts "${ACCEPT_GEMMA3_FACTS:-10}" \
        >"$out/gemma3_llamacpp.json" 2>"$out/gemma3_llamacpp.log" || { tail -5 "$out/gemma3_llamacpp.log" >&2; exit 1; }
  else
    echo "accept: no Gemma 3 GGUF at $gemma (make fetch-model); its llama.cpp check is skipped" >&2
  fi
fi
# Without edit runs there is nothing to tabulate: keep docs/ACCEPTANCE.md, point at the numbers.
if [ -z "$methods" ]; then echo "accept: LoRA interop passed; numbers in $out/lora.json" >&2; exit 0; fi
python3 "$root/scripts/accept_report.py" "$out" "$root/docs/ACCEPTANCE.md"
