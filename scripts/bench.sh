#!/usr/bin/env bash
# make bench: runs scripts/bench.py (standard-library Python only; the PyTorch comparisons use the
# reference venv from scripts/python-env.sh) and writes docs/BENCHMARKS.md.
set -euo pipefail
bin="$1"; model="$2"
command -v /usr/bin/time >/dev/null || { [ "$(id -u)" = 0 ] && apt-get install -y -qq time >/dev/null; }
exec python3 "$(dirname "$0")/bench.py" --bin "$bin" --model "$model" "${@:3}"
