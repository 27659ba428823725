#!/usr/bin/env bash
# libFuzzer on the parsers of untrusted input (Tests/Fuzz): one target, or all of them in turn.
#
#   FUZZ_TARGET=gguf scripts/fuzz.sh          # one target for $FUZZ_SECONDS (default 600)
#   scripts/fuzz.sh                           # every target, $FUZZ_SECONDS each
#   FUZZ_RUNS=1000000 FUZZ_TARGET=gguf …      # stop after that many executions instead
#
# Targets: patch gguf safetensors tokenizer config requests apply. The build goes to .build/fuzz (with
# AddressSanitizer, since release builds do not bounds-check unsafe pointers) so the instrumented
# objects never mix with normal builds. The corpus of each target lives in .build/fuzz-corpus/TARGET,
# seeded from the test fixtures; crashes land in .build/fuzz-artifacts/TARGET-…, replayed with
#   swift run wilke-fuzz TARGET .build/fuzz-artifacts/TARGET-crash-…
# Each target runs as one process on one core (the machine is shared).
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS="${FUZZ_SECONDS:-600}"
FUZZ_RUNS="${FUZZ_RUNS:--1}"
ALL_TARGETS="patch gguf safetensors tokenizer config requests apply"
TARGETS="${FUZZ_TARGET:-$ALL_TARGETS}"
BUILD=.build/fuzz
swift build -c release --build-path "$BUILD" --product wilke-fuzz \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xswiftc -DWILKE_FUZZ >&2
mkdir -p .build/fuzz-artifacts

seed() {  # seed TARGET FILE… : copy fixtures into the target's corpus
    local t=$1; shift
    cp "$@" ".build/fuzz-corpus/$t/"
}

for t in $TARGETS; do
    case " $ALL_TARGETS " in *" $t "*) ;; *) echo "fuzz: unknown target '$t' (targets: $ALL_TARGETS)" >&2; exit 2 ;; esac
    corpus=.build/fuzz-corpus/$t
    mkdir -p "$corpus"
    max_len=65536
    case $t in
        patch) seed patch Tests/PatchTests/Fixtures/sample.wpatch Tests/PatchTests/Fixtures/sample-content.bin ;;
        gguf) seed gguf Tests/FormatsTests/Fixtures/gguf/*.gguf ;;
        safetensors) seed safetensors Tests/FormatsTests/Fixtures/safetensors/*.safetensors Tests/FormatsTests/Fixtures/safetensors/sharded/*.safetensors ;;
        tokenizer) seed tokenizer Tests/WilKETests/Fixtures/tokenizer/gpt2_fixture.json Tests/WilKETests/Fixtures/tokenizer/spm_fixture.json ;;
        config) for c in Tests/WilKETests/Fixtures/models/*/config.json; do  # all named config.json: rename
                    cp "$c" "$corpus/$(basename "$(dirname "$c")").json"; done ;;
        requests)
            seed requests samples/edits.jsonl
            # The two array formats, one record each (CounterFact and KnowEdit as the reader detects them).
            printf '%s\n' '[{"case_id":0,"requested_rewrite":{"prompt":"{} plays the sport of","subject":"LeBron James","target_new":{"str":"football"},"target_true":{"str":"basketball"}},"paraphrase_prompts":["LeBron James is a player of"],"neighborhood_prompts":["Michael Jordan plays the sport of"]}]' > "$corpus/counterfact.json"
            printf '%s\n' '[{"subject":"LeBron James","prompt":"LeBron James plays the sport of","target_new":"football","ground_truth":"basketball","rephrase_prompt":"LeBron James is a player of","locality_prompt":"Michael Jordan plays","locality_ground_truth":"basketball"}]' > "$corpus/knowedit.json" ;;
        apply) max_len=16384 ;;  # the binary writes its two seed checkpoints itself (WILKE_FUZZ_SEEDS)
    esac
    echo "== fuzz $t: ${FUZZ_SECONDS}s or $FUZZ_RUNS runs, corpus $corpus" >&2
    WILKE_FUZZ_TARGET=$t WILKE_FUZZ_SEEDS="$PWD/$corpus" ASAN_OPTIONS=detect_leaks=0 \
        "$BUILD"/release/wilke-fuzz "$corpus" -max_total_time="$FUZZ_SECONDS" -runs="$FUZZ_RUNS" -max_len=$max_len -timeout=10 \
        -rss_limit_mb=2048 -artifact_prefix=".build/fuzz-artifacts/$t-" -print_final_stats=1
done
