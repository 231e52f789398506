#!/usr/bin/env bash
# The whole-system benchmark (issues 5 and 6), on this machine, in one run:
#   1. a devnet of release binaries (anvil, contracts, five shard nodes, the black box);
#   2. decrypt latency p50/p99 at low load, sustained decryptions/s with N concurrent
#      clients (errors counted, services' RSS before and after, CPU per decryption of
#      every process), encrypt latency of 1 KiB
#      (tests/e2e/benches/system.rs);
#   3. `cifer encrypt`/`decrypt` of 1 GiB against Debian's `age`, and the core ratios
#      (scripts/bench-core.sh).
# Output lines are `name value`. Env: BENCH_CLIENTS (32), BENCH_SECONDS (20),
# BENCH_SAMPLES (300), DEVNET_PORT (28545), SKIP_AGE=1 to skip step 3.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo build --release --workspace --all-features --locked --bins
dir="$(mktemp -d)"
export DEVNET_DIR="$dir" DEVNET_PORT="${DEVNET_PORT:-28545}" BIN_DIR="$PWD/target/release"
trap 'bash scripts/devnet.sh down >/dev/null; rm -rf "$dir"' EXIT
bash scripts/devnet.sh up >/dev/null
echo "== whole system ($(nproc) cores): anvil + 5 nodes + black box + load generator"
cargo bench --locked -p cifer-e2e --all-features --bench system -- --devnet "$dir" \
  --clients "${BENCH_CLIENTS:-32}" --seconds "${BENCH_SECONDS:-20}" --samples "${BENCH_SAMPLES:-300}"
if [ -z "${SKIP_AGE:-}" ]; then
  bash scripts/bench-core.sh
fi
