#!/usr/bin/env bash
# Pre-submit check for the Solidity side: format, build, tests, gas snapshot, and a real
# deployment to a local anvil. Installs nothing: run `npm ci` first. Works offline.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/forge-env.sh
. scripts/forge-env.sh

step() { printf '\n==> %s\n' "$*"; }

step "forge fmt --check"
forge fmt --check

step "forge build"
forge build
# EIP-170/3860 size limits apply to what ships; the deploy script embeds both contracts.
step "contract sizes (contracts/src)"
forge build --sizes --skip test --skip script

step "forge test"
forge test

# Fuzz and invariant gas varies with the inputs, so only deterministic tests are snapshotted.
step "forge snapshot --check"
forge snapshot --check --no-match-test 'testFuzz|invariant'

if [ -f scripts/test-deploy.sh ]; then
  step "deploy to a local anvil (chain id 11155111)"
  bash scripts/test-deploy.sh
fi

step "contracts OK"
