# One entry point for people and CI. `make run` is the main job, `make test` runs every
# test, `make pr` is the pre-submit check (CI runs `make test` after installing).
SHELL := /bin/bash
CARGO ?= cargo
# One package set and feature set everywhere, so the shared target dir is reused.
CARGO_FLAGS := --workspace --all-features --locked

.PHONY: setup run run-local devnet-up devnet-down test test-rust test-interop test-contracts test-api invariants pr fmt-check clippy bench bench-node bench-system bench-instructions fuzz

# The Python test tools (interop, schemathesis) set up their own pinned virtualenvs when
# they run (scripts/pyvenv.sh), so setup is the npm side only.
setup: node_modules/.installed

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# The devnet round trip (anvil, contracts, five shard nodes, the black box, the CLI).
run: setup
	bash scripts/devnet.sh demo

# The local, key-file round trip of the `cifer` CLI (no chain).
run-local: setup
	$(CARGO) build --release --locked -p cifer-cli
	bash scripts/roundtrip.sh

devnet-up: setup
	bash scripts/devnet.sh up

devnet-down:
	bash scripts/devnet.sh down

test: setup test-rust test-interop test-contracts test-api invariants

# The end-to-end tests (tests/e2e) start the binaries through scripts/devnet.sh: build them
# first (same flags, so nothing is built twice).
test-rust:
	$(CARGO) build $(CARGO_FLAGS) --bins
	$(CARGO) test $(CARGO_FLAGS)

test-interop:
	$(CARGO) build $(CARGO_FLAGS) --bin cifer
	bash tests/interop/run.sh target/debug/cifer

# schemathesis against both OpenAPI documents, on a devnet of the debug binaries.
test-api: setup
	$(CARGO) build $(CARGO_FLAGS) --bins
	bash scripts/api-fuzz.sh

test-contracts: setup
	bash scripts/contracts-check.sh
	bash scripts/check-bindings.sh

PURE_CRATES := cifer-core cifer-auth cifer-custody

invariants:
	@for c in $(PURE_CRATES); do \
	  out=$$($(CARGO) tree -p $$c -e normal --all-features | grep -E 'tokio|sqlx|axum|alloy|serde_json' || true); \
	  if [ -n "$$out" ]; then echo "$$c must do no I/O, but depends on:"; echo "$$out"; exit 1; fi; \
	  echo "invariant: $$c has no I/O, HTTP, SQL or chain dependency"; \
	done

fmt-check:
	$(CARGO) fmt --all --check

clippy:
	$(CARGO) clippy $(CARGO_FLAGS) --all-targets -- -D warnings

pr: fmt-check clippy test

bench: setup
	bash scripts/bench-core.sh

# The whole system (release binaries): decrypt latency, sustained decryptions/s, encrypt
# latency, and cifer vs age on 1 GiB, in one run.
bench-system: setup
	bash scripts/bench-system.sh

# Instructions per decryption of the black box, a shard node and the SDK (callgrind): a
# figure that does not move with the VM's load, for comparing commits.
bench-instructions: setup
	bash scripts/bench-instructions.sh

# Shard node release throughput against a real anvil and the real node process.
bench-node: setup
	$(CARGO) bench --locked -p cifer-shard-node --bench release -- --requests 4000 --concurrency 16
	$(CARGO) bench --locked -p cifer-shard-node --bench release -- --requests 4000 --concurrency 2 --batch 10

fuzz:
	cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run envelope_decode -- -max_total_time=60
