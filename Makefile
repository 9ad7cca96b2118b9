# The two commands: `make run` and `make test`. Both set up a fresh Debian machine first.
SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(HOME)/.cache/switchboard/target
export SWITCHBOARD_MODELS ?= $(HOME)/.local/share/switchboard/models
BIN := $(CARGO_TARGET_DIR)/release/switchboard
LISTEN ?= 127.0.0.1:8080

.PHONY: run test build deps test-deps services models test-models bench pipecat cuda lint

## Install what is missing, fetch models, build, start the gateway.
run: build models
	$(BIN) serve --listen $(LISTEN)

## The same set-up, then every test (unit, integration with real models, end-to-end).
test: build models test-models services test-deps
	cargo test --release --workspace

## Build the release binary; the last line printed is its path.
build: deps
	@cargo build --release -p switchboard-gateway >&2
	@echo $(BIN)

deps:
	@deploy/setup/install-deps.sh

services:
	@deploy/setup/start-services.sh

test-deps:
	@deploy/setup/install-test-deps.sh

models: build
	@$(BIN) models fetch

## The optional Whisper models too (tiny.en in f16, base in f16 and q8_0): the tests and
## benchmarks compare them with the default, tiny.en in q8_0.
test-models: build
	@$(BIN) models fetch whisper-tiny.en whisper-base whisper-base-q8_0

## Benchmarks; figures go to BENCHMARKS.md.
bench: build models test-models services pipecat
	cargo bench -p switchboard-benches

## Pipecat beside us, for `benches/pipecat.rs`: a virtual environment and its Whisper model.
pipecat:
	@benches/pipecat/setup.sh

## Formatting and clippy over every crate and target (tests and benches too), warnings as
## errors: what a change should pass before it lands.
lint: deps
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

## The CUDA build (CUDA 13 from PyPI; no GPU needed to build): see deploy/gpu/.
cuda:
	@deploy/gpu/build-cuda.sh
