#!/usr/bin/env bash
# Fuzzes the .wpatch parser with libFuzzer for $FUZZ_SECONDS (default 600).
# The build goes to .build/fuzz so the instrumented objects never mix with normal release builds.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS="${FUZZ_SECONDS:-600}"
BUILD=.build/fuzz
swift build -c release --build-path "$BUILD" --product wilke-fuzz-patch \
    -Xswiftc -sanitize=fuzzer -Xswiftc -parse-as-library -Xswiftc -DWILKE_FUZZ
corpus=.build/fuzz-corpus/patch
mkdir -p "$corpus"
# Seeds: valid patches of every residue kind, so mutations start inside the format.
cp Tests/PatchTests/Fixtures/sample.wpatch Tests/PatchTests/Fixtures/sample-content.bin "$corpus"/
# Crashes land in .build/fuzz-artifacts; replay one with a normal build:
#   swift run wilke-fuzz-patch .build/fuzz-artifacts/crash-…
mkdir -p .build/fuzz-artifacts
"$BUILD"/release/wilke-fuzz-patch "$corpus" -max_total_time="$FUZZ_SECONDS" -max_len=65536 -timeout=10 \
    -rss_limit_mb=2048 -artifact_prefix=.build/fuzz-artifacts/ -print_final_stats=1
