#!/usr/bin/env bash
# Deploys ClusterRegistry + SecretsController with contracts/script/Deploy.s.sol to $RPC_URL
# and writes deployments/<chainId>.json ({chainId, secretsController, clusterRegistry, block}).
#
#   RPC_URL=...  PRIVATE_KEY=0x...  bash scripts/deploy.sh
#   RPC_URL=...  bash scripts/deploy.sh --account <keystore name> --sender 0x...
#
# Optional environment: GOVERNANCE, ADMIN, CLUSTER_CONFIG (see Deploy.s.sol),
# DEPLOYMENTS_DIR (default deployments/), FOUNDRY_BROADCAST (default broadcast/).
# Extra arguments go to `forge script` (for example --legacy, --with-gas-price).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/forge-env.sh
. scripts/forge-env.sh

: "${RPC_URL:?set RPC_URL to the JSON-RPC endpoint to deploy to}"
deployments_dir="${DEPLOYMENTS_DIR:-deployments}"
broadcast_dir="${FOUNDRY_BROADCAST:-broadcast}"

# forge lets scripts read only the paths in foundry.toml's fs_permissions: stage the cluster
# config inside deployments/ (gitignored) for the run.
if [ -n "${CLUSTER_CONFIG:-}" ]; then
  mkdir -p deployments
  staged="deployments/.cluster-config.$$.json"
  cp "$CLUSTER_CONFIG" "$staged"
  trap 'rm -f "$staged"' EXIT
  export CLUSTER_CONFIG="$PWD/$staged"
fi

chain_id="$(cast chain-id --rpc-url "$RPC_URL")"
echo "deploying to chain $chain_id"

# --slow: one transaction at a time, each after the previous is mined (forge otherwise sends
# them concurrently, and a node that drops one leaves the rest queued behind a nonce gap).
forge script contracts/script/Deploy.s.sol:Deploy --rpc-url "$RPC_URL" --broadcast --slow "$@"

node scripts/deployment-record.js \
  "$broadcast_dir/Deploy.s.sol/$chain_id/run-latest.json" \
  "$deployments_dir/$chain_id.json"
echo "wrote $deployments_dir/$chain_id.json"
