#!/usr/bin/env bash
# Property-based tests of the two HTTP APIs against their own OpenAPI documents
# (blackbox/openapi.json, shard-node/openapi.json), with schemathesis, on a devnet of real
# processes (anvil, the contracts, five shard nodes, the black box with thin mode on so
# that its route is reached too).
#
# Checks: every answer is documented (status, content type, body schema), no 5xx, malformed
# input is refused with 4xx (`--checks all`). Not checked: `positive_data_acceptance`, which
# expects any schema-valid request to be accepted; here a schema-valid request names chains,
# secrets and signatures that do not exist, and is refused with a typed error by design.
#
# Env: BIN_DIR (target/debug), API_FUZZ_EXAMPLES (40 per operation), API_FUZZ_SEED (1: the
# same cases on every run, so CI does not flake on a new one; set another seed, or more
# examples, to search further), DEVNET_PORT (28845).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"

# schemathesis and its dependencies, pinned, in their own virtualenv.
venv="$root/.venv-api"
bash scripts/pyvenv.sh "$venv" tests/api/requirements.txt

dir="$(mktemp -d)"
# The default ports lie below the kernel's ephemeral range (32768-60999 on Linux), like
# the e2e tests' (tests/e2e free_ports): a port inside it, free when devnet.sh checks, can
# become the local port of an outgoing connection (forge's, cast's, a test's) before the
# service binds it ("Address already in use", seen in CI with 38845).
export DEVNET_DIR="$dir/devnet" DEVNET_PORT="${DEVNET_PORT:-28845}"
export BIN_DIR="${BIN_DIR:-$root/target/debug}" BB_EXTRA="thin_mode = true"
mkdir -p "$DEVNET_DIR"
trap 'bash scripts/devnet.sh down >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
bash scripts/devnet.sh up >/dev/null

endpoint() { python3 -c 'import json,sys; e=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
  "$DEVNET_DIR/endpoints.json" "$1"; }
bb="$(endpoint 'e["blackBoxUrl"]')"
node="$(endpoint 'e["nodeUrls"][0]')"

status=0
for target in "black box|$bb" "shard node|$node"; do
  name="${target%%|*}"
  url="${target#*|}"
  echo "== schemathesis: $name ($url/openapi.json)"
  # Run from the temp dir: schemathesis keeps its example database in the working directory.
  (cd "$dir" && "$venv/bin/schemathesis" run "$url/openapi.json" --url "$url" \
    --checks all --exclude-checks positive_data_acceptance \
    --max-examples "${API_FUZZ_EXAMPLES:-40}" --seed "${API_FUZZ_SEED:-1}" \
    --generation-deterministic --workers 1 --no-color) || status=1
done
exit "$status"
