#!/usr/bin/env bash
# make accept: the real-model acceptance runs (too slow for `make test`). Each fact of
# samples/edits.jsonl is edited alone on SmolLM2 with ROME and with WilKE; the fact must become the
# greedy answer and the 20 prompts of samples/unrelated.txt must keep theirs. Writes docs/ACCEPTANCE.md.
# ACCEPT_METHODS (default "rome wilke") and ACCEPT_LIMIT (first N facts) shorten the run; WilKE scans
# 15 layers per fact, so it takes ~15x ROME's time.
set -euo pipefail
bin="$1"; model="$2"
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${WILKE_ACCEPT_DIR:-$root/.build/accept}"
mkdir -p "$out"
limit=()
[ -n "${ACCEPT_LIMIT:-}" ] && limit=(--limit "$ACCEPT_LIMIT")
for m in ${ACCEPT_METHODS:-rome wilke}; do
  echo "accept: $m on $(grep -c '^{' "$root/samples/edits.jsonl") facts ${ACCEPT_LIMIT:+(first $ACCEPT_LIMIT)}" >&2
  "$bin" dev accept "$model" --requests "$root/samples/edits.jsonl" --unrelated "$root/samples/unrelated.txt" \
      --method "$m" "${limit[@]}" | tee "$out/$m.jsonl"
done
python3 "$root/scripts/accept_report.py" "$out" "$root/docs/ACCEPTANCE.md"
