#!/usr/bin/env bash
# Proves scripts/deploy.sh end to end: starts a throwaway anvil with Sepolia's chain id
# (11155111) on a free port, deploys with a 5-node, threshold-3 cluster and a black box,
# checks the result with `cast`, creates and authorizes a secret, then stops anvil.
# Writes nothing outside a temporary directory (deployment file and broadcast log included).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/forge-env.sh
. scripts/forge-env.sh

chain_id=11155111
# anvil's public development mnemonic: these keys hold nothing anywhere.
mnemonic="test test test test test test test test test test test junk"

work="$(mktemp -d)"
anvil_pid=""
cleanup() {
  if [ -n "$anvil_pid" ]; then kill "$anvil_pid" 2>/dev/null || true; wait "$anvil_pid" 2>/dev/null || true; fi
  if [ -n "${KEEP_WORK:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

port="$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
rpc="http://127.0.0.1:$port"
anvil --chain-id "$chain_id" --port "$port" --mnemonic "$mnemonic" --silent >"$work/anvil.log" 2>&1 &
anvil_pid=$!
for _ in $(seq 1 100); do
  if cast chain-id --rpc-url "$rpc" >/dev/null 2>&1; then break; fi
  sleep 0.1
done
[ "$(cast chain-id --rpc-url "$rpc")" = "$chain_id" ] || { echo "anvil did not start" >&2; cat "$work/anvil.log" >&2; exit 1; }

account() { cast wallet address --mnemonic "$mnemonic" --mnemonic-index "$1"; }
key() { cast wallet private-key --mnemonic "$mnemonic" --mnemonic-index "$1"; }

deployer_key="$(key 0)"
governance="$(account 1)"
creator="$(account 1)"
creator_key="$(key 1)"
black_box="$(account 7)"
black_box_signer="$(account 8)"
operators="$(for i in 2 3 4 5 6; do account "$i"; done | paste -sd, -)"

# Cluster config: 5 nodes with random 1,184-byte keys, threshold 3, one black box.
node -e '
const crypto = require("crypto");
const [operators, blackBox, signer, out] = process.argv.slice(1);
const hex = (n) => "0x" + crypto.randomBytes(n).toString("hex");
const cfg = {
  threshold: 3,
  nodes: operators.split(",").map((operator, i) => ({
    operator, endpoint: `https://node${i + 1}.cifer.test`, publicKey: hex(1184), attestationHash: hex(32),
  })),
  blackBox: { account: blackBox, signer, attestationHash: hex(32) },
};
require("fs").writeFileSync(out, JSON.stringify(cfg, null, 2));
' "$operators" "$black_box" "$black_box_signer" "$work/cluster.json"

RPC_URL="$rpc" PRIVATE_KEY="$deployer_key" GOVERNANCE="$governance" \
  CLUSTER_CONFIG="$work/cluster.json" DEPLOYMENTS_DIR="$work/deployments" \
  FOUNDRY_BROADCAST="$work/broadcast" \
  timeout 300 bash scripts/deploy.sh --silent >"$work/deploy.log" 2>&1 || { cat "$work/deploy.log" >&2; exit 1; }

record="$work/deployments/$chain_id.json"
field() { node -e 'const r=require(process.argv[1]); const v=r[process.argv[2]]; if(v===undefined) process.exit(1); console.log(v)' "$record" "$1"; }
registry="$(field clusterRegistry)"
controller="$(field secretsController)"
[ "$(field chainId)" = "$chain_id" ] || { echo "wrong chainId in $record" >&2; exit 1; }
field block >/dev/null

lower() { printf '%s' "$1" | tr '[:upper:]' '[:lower:]'; }
fail() { echo "test-deploy: $*" >&2; cat "$record" >&2; exit 1; }
expect() { # expect <want> <got> <what>
  [ "$1" = "$2" ] || fail "$3: want $1, got $2"
}

expect "true" "$(cast call "$registry" 'isClusterActive(uint32)(bool)' 1 --rpc-url "$rpc")" "cluster 1 active"
expect "3" "$(cast call "$registry" 'clusterThreshold(uint32)(uint8)' 1 --rpc-url "$rpc")" "threshold"
expect "[1, 2, 3, 4, 5]" "$(cast call "$registry" 'clusterMembers(uint32)(uint32[])' 1 --rpc-url "$rpc")" "members"
expect "true" "$(cast call "$registry" 'isBlackBox(address)(bool)' "$black_box" --rpc-url "$rpc")" "black box"
expect "$(lower "$registry")" "$(lower "$(cast call "$controller" 'clusterRegistry()(address)' --rpc-url "$rpc")")" "controller's registry"
expect "$(lower "$governance")" "$(lower "$(cast call "$registry" 'pendingOwner()(address)' --rpc-url "$rpc")")" "pending governance"

# A secret, end to end.
ek="0x$(node -e 'process.stdout.write(require("crypto").randomBytes(1184).toString("hex"))')"
cast send "$controller" 'createSecret(uint32,uint8,bytes)' 1 1 "$ek" \
  --private-key "$creator_key" --rpc-url "$rpc" >/dev/null
expect "1" "$(cast call "$controller" 'secretCount()(uint256)' --rpc-url "$rpc")" "secret count"
expect "true" "$(cast call "$controller" 'isAuthorized(uint256,address)(bool)' 1 "$creator" --rpc-url "$rpc")" "owner authorized"
expect "false" "$(cast call "$controller" 'isAuthorized(uint256,address)(bool)' 1 "$black_box" --rpc-url "$rpc")" "stranger authorized"
expect "$(cast keccak "$ek")" \
  "$(cast call "$controller" 'secret(uint256)((address,uint32,uint8,uint8,uint48,bytes32,address))' 1 --rpc-url "$rpc" | node -e 'const s=require("fs").readFileSync(0,"utf8"); console.log(s.match(/0x[0-9a-f]{64}/)[0])')" \
  "public key hash"

echo "test-deploy: OK (chain $chain_id, registry $registry, controller $controller)"
