# wilke — the two commands a newcomer runs: `make demo` and `make test`.
SHELL := /bin/bash
WILKE_CACHE ?= $(HOME)/.cache/wilke
MODEL ?= $(WILKE_CACHE)/models/SmolLM2-135M-Instruct.Q4_1.gguf
SWIFT ?= swift
CONFIG ?= release
BIN = .build/$(CONFIG)/wilke
export WILKE_CACHE WILKE_MODEL := $(MODEL)

.PHONY: all deps fetch-model build demo test bench accept fuzz fuzz-smoke faults fixtures clean

all: build

# System packages: installed with apt-get when we are root, else the command is printed.
deps:
	@missing=""; for p in libopenblas-dev libzstd-dev pkg-config; do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "deps: installing$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "deps: missing$$missing; run: sudo apt-get install -y$$missing"; exit 1; fi; \
	fi

fetch-model:
	@./scripts/fetch-model.sh

build: deps
	$(SWIFT) build -c $(CONFIG) --product wilke

demo: deps fetch-model build
	@./scripts/demo.sh "$(BIN)" "$(MODEL)"

# The whole test suite, with the real model present (tests that need it fail rather than skip).
test: deps fetch-model
	WILKE_REQUIRE_MODEL=1 $(SWIFT) build -c release --build-tests -Xswiftc -enable-testing
	WILKE_REQUIRE_MODEL=1 $(SWIFT) test -c release --skip-build -Xswiftc -enable-testing

bench: deps fetch-model build
	@./scripts/bench.sh "$(BIN)" "$(MODEL)"

accept: deps fetch-model build
	@./scripts/accept.sh "$(BIN)" "$(MODEL)"

# libFuzzer: every target in turn (FUZZ_SECONDS each, default 600), or one with FUZZ_TARGET=gguf.
# Targets: patch gguf safetensors tokenizer config requests apply (docs/RELIABILITY.md).
fuzz: deps
	@FUZZ_TARGET="$(FUZZ_TARGET)" ./scripts/fuzz.sh

# A short run of every target (60 s each), to catch a regression quickly.
fuzz-smoke: deps
	@FUZZ_TARGET= FUZZ_SECONDS=$${FUZZ_SECONDS:-60} ./scripts/fuzz.sh

# kill -9, concurrent writers, ENOSPC (root), FIFOs and symlinks against the patch verbs; prints counts.
faults: deps build
	@./scripts/faults.sh "$(BIN)"

# Regenerate the committed Python reference fixtures (needs the venv from scripts/python-env.sh).
fixtures:
	@./scripts/make-fixtures.sh

clean:
	rm -rf .build
