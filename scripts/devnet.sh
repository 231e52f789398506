#!/usr/bin/env bash
# The local CIFER devnet: anvil, both contracts deployed by scripts/deploy.sh, five shard
# nodes and the black box registered in ClusterRegistry and running on loopback with
# embedded (SQLite) storage.
#
#   bash scripts/devnet.sh up       start everything and leave it running
#   bash scripts/devnet.sh status   chain head, cluster, which services answer
#   bash scripts/devnet.sh down     stop everything (the directory is kept for inspection)
#   bash scripts/devnet.sh demo     up, then a visible round trip through the `cifer` CLI,
#                                   then down (KEEP=1 leaves it running)
#
# Environment:
#   DEVNET_DIR   state directory (default .devnet): keys, configs, logs, endpoints.json
#   DEVNET_PORT  anvil's port (default 8545); nodes use PORT+1..PORT+5, the black box PORT+10
#                (and PORT+11.. for BB_REPLICAS > 1)
#   BIN_DIR      where the binaries are (default target/debug; built if missing)
#   BB_RATE_LIMIT, BB_RATE_WINDOW_MS  black box per-signer rate limit (default 1000 per 1000 ms)
#   BB_DATABASE_URL    black box database (default: SQLite in DEVNET_DIR); a postgres:// URL
#                      is shared by all replicas
#   BB_REPLICAS        black-box processes (default 1)
#   BB_EXTRA           extra TOML lines for the black box config (e.g. key_cache_ttl_secs = 60)
#   NODE_EXTRA         extra TOML lines for every node config
#   DEVNET_POLL_MS     how often the services poll the chain (default 100 ms)
#   NODE_WORKERS       each shard node's `worker_threads` (default 0: one thread runs the
#                      whole node, since the five share this machine and a single-threaded
#                      runtime wakes no other thread; a real node on its own machine uses
#                      all cores)
#
# `up` writes $DEVNET_DIR/endpoints.json (what `cifer --endpoints` and cifer-sdk read) and
# $DEVNET_DIR/accounts.json (anvil's public development keys: they hold nothing anywhere).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"
# shellcheck source=scripts/forge-env.sh
. scripts/forge-env.sh

dir="${DEVNET_DIR:-.devnet}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
port="${DEVNET_PORT:-8545}"
bin="${BIN_DIR:-$root/target/debug}"
replicas="${BB_REPLICAS:-1}"
chain_id=31337
mnemonic="test test test test test test test test test test test junk"
rpc="http://127.0.0.1:$port"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { echo "devnet: $*" >&2; exit 1; }

account() { cast wallet address --mnemonic "$mnemonic" --mnemonic-index "$1"; }
key() { cast wallet private-key --mnemonic "$mnemonic" --mnemonic-index "$1"; }

pids_file="$dir/pids"

running() { # running <pid>
  kill -0 "$1" 2>/dev/null
}

start() { # start <name> <command...>: background, log to $dir/<name>.log, record the pid
  local name="$1"; shift
  "$@" >"$dir/$name.log" 2>&1 &
  echo "$name $!" >>"$pids_file"
}

wait_http() { # wait_http <url> <name>
  for _ in $(seq 1 300); do
    if node -e 'fetch(process.argv[1]).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))' "$1" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "devnet: $2 did not become healthy; last log lines:" >&2
  tail -n 20 "$dir/$2.log" >&2 || true
  return 1
}

ensure_binaries() {
  if [ -n "${BIN_DIR:-}" ]; then
    for b in cifer-shard-node cifer-blackbox cifer; do
      [ -x "$bin/$b" ] || die "no $b in BIN_DIR=$bin"
    done
    return
  fi
  log "building the binaries (cargo build; a no-op when up to date)"
  cargo build --workspace --all-features --locked --bins
}

node_config() { # node_config <i> <node port>
  cat <<EOF
listen = "127.0.0.1:$2"
database_url = "sqlite:$dir/node$1/shard.db"
sealing_key = "$dir/node$1/sealing.key"
identity = "$dir/node$1/identity"
node_id = $1
log_format = "compact"
worker_threads = ${NODE_WORKERS:-0}
${NODE_EXTRA:-}

[rate_limit]
burst = 1000
per_second = 1000.0

[[chains]]
chain_id = $chain_id
rpc_urls = ["$rpc"]
deployment = "$dir/deployments/$chain_id.json"
freshness_window = 64
# anvil mines only when a transaction arrives, so its head can be old: the lag bound is
# relaxed for the devnet (production: seconds to minutes).
max_lag_secs = 86400
poll_interval_ms = ${DEVNET_POLL_MS:-100}
rpc_timeout_ms = 2000
EOF
}

bb_config() { # bb_config <listen port> <database url>
  cat <<EOF
listen = "127.0.0.1:$1"
database_url = "$2"
signer_key = "$dir/blackbox/signer.key"
account = "$(account 7)"
log_format = "compact"
gather_deadline_ms = 3000
node_timeout_ms = 2500
${BB_EXTRA:-}

[rate_limit]
window_ms = ${BB_RATE_WINDOW_MS:-1000}
limit = ${BB_RATE_LIMIT:-1000}

[[chains]]
chain_id = $chain_id
rpc_urls = ["$rpc"]
deployment = "$dir/deployments/$chain_id.json"
freshness_window = 64
max_lag_secs = 86400
poll_interval_ms = ${DEVNET_POLL_MS:-100}
rpc_timeout_ms = 2000
EOF
}

cmd_up() {
  if [ -f "$pids_file" ]; then
    while read -r _ pid; do
      if running "$pid"; then die "already up (see $dir/pids); run 'devnet.sh down' first"; fi
    done <"$pids_file"
  fi
  # Another devnet (another DEVNET_DIR) or any other listener on these ports would
  # answer in place of the services started here, and the health checks would pass.
  local p busy=""
  for p in "$port" $(seq $((port + 1)) $((port + 5))) $(seq $((port + 10)) $((port + 9 + replicas))); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then busy+=" $p"; fi
  done
  [ -z "$busy" ] || die "port(s)$busy already in use (another devnet? 'DEVNET_DIR=... devnet.sh down', or set DEVNET_PORT)"
  ensure_binaries
  rm -rf "$dir"/node* "$dir/blackbox" "$dir/deployments" "$dir/broadcast" "$dir"/*.log "$pids_file"
  mkdir -p "$dir/blackbox"

  log "anvil on $rpc (chain $chain_id)"
  start anvil anvil --port "$port" --chain-id "$chain_id" --mnemonic "$mnemonic" --accounts 12
  for _ in $(seq 1 100); do
    if cast chain-id --rpc-url "$rpc" >/dev/null 2>&1; then break; fi
    sleep 0.1
  done
  [ "$(cast chain-id --rpc-url "$rpc" 2>/dev/null)" = "$chain_id" ] || die "anvil did not start (see $dir/anvil.log)"

  log "keys: five shard-node identities and sealing keys, the black-box signer"
  local eks=() i
  for i in 1 2 3 4 5; do
    mkdir -p "$dir/node$i"
    eks+=("$("$bin/cifer-shard-node" keygen --identity "$dir/node$i/identity" \
      --sealing-key "$dir/node$i/sealing.key" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).encapsulationKey))')")
  done
  local signer
  signer="$("$bin/cifer-blackbox" keygen --out "$dir/blackbox/signer.key" \
    | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).signer))')"

  log "deploying with scripts/deploy.sh (cluster 1: five nodes, threshold 3; the black box)"
  local nodes_json="" sep=""
  for i in 1 2 3 4 5; do
    nodes_json+="$sep{\"operator\":\"$(account $((i + 1)))\",\"endpoint\":\"http://127.0.0.1:$((port + i))\",\"publicKey\":\"${eks[$((i - 1))]}\",\"attestationHash\":\"$(cast keccak "devnet-node-$i")\"}"
    sep=","
  done
  cat >"$dir/cluster.json" <<EOF
{ "threshold": 3, "nodes": [ $nodes_json ],
  "blackBox": { "account": "$(account 7)", "signer": "$signer", "attestationHash": "$(cast keccak devnet-black-box)" } }
EOF
  RPC_URL="$rpc" PRIVATE_KEY="$(key 0)" CLUSTER_CONFIG="$dir/cluster.json" \
    DEPLOYMENTS_DIR="$dir/deployments" FOUNDRY_BROADCAST="$dir/broadcast" \
    bash scripts/deploy.sh --silent >"$dir/deploy.log" 2>&1 || { cat "$dir/deploy.log" >&2; die "deploy failed"; }
  local controller registry
  controller="$(node -e 'console.log(require(process.argv[1]).secretsController)' "$dir/deployments/$chain_id.json")"
  registry="$(node -e 'console.log(require(process.argv[1]).clusterRegistry)' "$dir/deployments/$chain_id.json")"
  [ "$(cast call "$registry" 'clusterMembers(uint32)(uint32[])' 1 --rpc-url "$rpc")" = "[1, 2, 3, 4, 5]" ] \
    || die "cluster 1 is not nodes 1..5"

  log "starting five shard nodes and $replicas black box(es)"
  for i in 1 2 3 4 5; do
    node_config "$i" "$((port + i))" >"$dir/node$i/node.toml"
    start "node$i" "$bin/cifer-shard-node" --config "$dir/node$i/node.toml"
  done
  local db="${BB_DATABASE_URL:-sqlite:$dir/blackbox/blackbox.db}" r urls="" sep=""
  for r in $(seq 1 "$replicas"); do
    bb_config "$((port + 9 + r))" "$db" >"$dir/blackbox/blackbox$r.toml"
    start "blackbox$r" "$bin/cifer-blackbox" --config "$dir/blackbox/blackbox$r.toml"
    urls+="$sep\"http://127.0.0.1:$((port + 9 + r))\""
    sep=","
  done
  for i in 1 2 3 4 5; do wait_http "http://127.0.0.1:$((port + i))/health" "node$i"; done
  for r in $(seq 1 "$replicas"); do wait_http "http://127.0.0.1:$((port + 9 + r))/health" "blackbox$r"; done

  cat >"$dir/endpoints.json" <<EOF
{ "chainId": $chain_id, "rpcUrl": "$rpc", "blackBoxUrl": "http://127.0.0.1:$((port + 10))",
  "blackBoxUrls": [ $urls ],
  "secretsController": "$controller", "clusterRegistry": "$registry", "clusterId": 1,
  "nodeUrls": [ $(for i in 1 2 3 4 5; do printf '"http://127.0.0.1:%s"%s' "$((port + i))" "$([ $i -lt 5 ] && echo ,)"; done) ] }
EOF
  local accounts="" a
  for a in 0 1 2 3 4 5 6 7 8 9 10 11; do
    accounts+="$( [ "$a" -gt 0 ] && echo ,){\"index\":$a,\"address\":\"$(account "$a")\",\"privateKey\":\"$(key "$a")\"}"
  done
  cat >"$dir/accounts.json" <<EOF
{ "note": "anvil's public development keys (mnemonic 'test ... junk'): they hold nothing on any real chain",
  "roles": { "deployer": 0, "operators": [2, 3, 4, 5, 6], "blackBox": 7 },
  "accounts": [ $accounts ] }
EOF
  log "devnet up: endpoints in $dir/endpoints.json, dev accounts in $dir/accounts.json"
}

cmd_down() {
  [ -f "$pids_file" ] || { echo "devnet: not up"; return 0; }
  local name pid
  # Services first (graceful SIGTERM), anvil last.
  while read -r name pid; do
    [ "$name" = anvil ] && continue
    kill -TERM "$pid" 2>/dev/null || true
  done <"$pids_file"
  for _ in $(seq 1 50); do
    local alive=0
    while read -r name pid; do
      [ "$name" = anvil ] && continue
      if running "$pid"; then alive=1; fi
    done <"$pids_file"
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  while read -r name pid; do
    kill -KILL "$pid" 2>/dev/null || true
  done <"$pids_file"
  rm -f "$pids_file"
  echo "devnet: down (state kept in $dir)"
}

cmd_status() {
  [ -f "$dir/endpoints.json" ] || die "not up (no $dir/endpoints.json)"
  CIFER_ENDPOINTS="$dir/endpoints.json" "$bin/cifer" status "$@"
}

cmd_demo() {
  cmd_up
  if [ -z "${KEEP:-}" ]; then trap cmd_down EXIT; fi
  export CIFER_ENDPOINTS="$dir/endpoints.json"
  local cifer="$bin/cifer" owner_key delegate delegate_key work id
  owner_key="$(key 1)"
  delegate="$(account 9)"
  delegate_key="$(key 9)"
  work="$dir/demo"
  rm -rf "$work"; mkdir -p "$work"
  printf 'CIFER devnet round trip at %s\n' "$(date -u +%FT%TZ)" >"$work/message.txt"
  head -c 3000000 /dev/urandom >>"$work/message.txt"

  log "status"
  "$cifer" status
  log "create a secret (owner $(account 1))"
  id="$("$cifer" secret create --private-key "$owner_key")"
  echo "secret id: $id"
  "$cifer" secret show "$id"
  log "encrypt $(wc -c <"$work/message.txt") bytes locally to secret $id"
  "$cifer" encrypt --secret-id "$id" -o "$work/message.cifr" "$work/message.txt"
  "$cifer" inspect "$work/message.cifr"
  log "decrypt as the owner"
  "$cifer" decrypt --private-key "$owner_key" -o "$work/owner.txt" "$work/message.cifr"
  cmp "$work/message.txt" "$work/owner.txt" && echo "owner: plaintext matches"
  log "decrypt as $delegate before delegation (must be refused)"
  if "$cifer" decrypt --private-key "$delegate_key" -o "$work/early.txt" "$work/message.cifr"; then
    die "a stranger decrypted"
  fi
  log "delegate to $delegate, decrypt as the delegate"
  "$cifer" secret delegate "$id" "$delegate" --private-key "$owner_key"
  "$cifer" decrypt --private-key "$delegate_key" -o "$work/delegate.txt" "$work/message.cifr"
  cmp "$work/message.txt" "$work/delegate.txt" && echo "delegate: plaintext matches"
  log "revoke the delegate, then try again (must be refused)"
  "$cifer" secret revoke "$id" "$delegate" --private-key "$owner_key"
  if "$cifer" decrypt --private-key "$delegate_key" -o "$work/revoked.txt" "$work/message.cifr"; then
    die "a revoked delegate decrypted"
  fi
  echo "revoked delegate: refused, as it must be"
  log "audit trail (hash chain checked)"
  "$cifer" audit
  log "round trip OK"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) shift; cmd_status "$@" ;;
  demo) cmd_demo ;;
  *) echo "usage: $0 up|down|status|demo" >&2; exit 2 ;;
esac
