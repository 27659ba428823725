#!/usr/bin/env bash
# Creates (once) the Python environment used to regenerate reference fixtures and run interop checks.
# Prints the path of its python. Override the location with WILKE_VENV.
set -euo pipefail
venv="${WILKE_VENV:-${WILKE_CACHE:-$HOME/.cache/wilke}/venv}"
req="$(cd "$(dirname "$0")/.." && pwd)/samples/reference/requirements.txt"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv" >&2
if ! cmp -s "$req" "$venv/.requirements.txt"; then
  "$venv/bin/pip" install --quiet -r "$req" >&2
  cp "$req" "$venv/.requirements.txt"
fi
echo "$venv/bin/python"
