#!/usr/bin/env bash
# Instructions per decryption, by process: the black box, one shard node (node1) and the
# SDK client, counted by callgrind on a devnet of release binaries (tests/e2e/benches/
# instructions.rs drives it). Unlike CPU time, which varies by 10-15 % from one run to the
# next on a shared 2-core VM and by 2x between VMs, the count is repeatable, so two commits
# can be compared on any machine in one run each.
#
# How: the black box and node1 run under callgrind; the load runs under callgrind with N1
# and then N2 decryptions, twice over; the services' counters are dumped after each run
# (`callgrind_control -d`), and (count(N2) - count(N1)) / (N2 - N1) is printed, so start-up,
# the secret's creation and the first full verification cancel out.
#
# Caveats: valgrind's virtual CPU has no SHA extensions (SHA-256 runs its portable code:
# HKDF shows ~10x heavier than on the real CPU) and no AVX-512; other code takes the paths
# it takes natively. A count is not a time: a cache miss or a syscall counts as little.
# Env: N1 (10), N2 (60), DEVNET_PORT (28645), BREAKDOWN (a number: also print that many
# functions of the black box and of the node, by their own instructions per decryption,
# from the pair whose total is the median), KEEP_CALLGRIND (a directory: the callgrind
# files are copied there; dumps are numbered from 1, start-up first, then the pairs' runs
# in order).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"
n1="${N1:-10}"
n2="${N2:-60}"
command -v valgrind >/dev/null || {
  echo "== installing Debian's valgrind"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind) >/dev/null
}

cargo build --release --workspace --all-features --locked --bins
load="$(cargo bench --locked -p cifer-e2e --all-features --bench instructions --no-run \
  --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "instructions" and m.get("executable"):
        print(m["executable"])')"
[ -x "$load" ] || { echo "bench-instructions: cannot find the load binary" >&2; exit 1; }

dir="$(mktemp -d)"
bin="$dir/bin"
mkdir -p "$bin"
ln -s "$root/target/release/cifer" "$bin/cifer"
# The black box and node1 under callgrind; the other four nodes run natively.
cat >"$bin/cifer-blackbox" <<EOF
#!/usr/bin/env bash
[ "\${1:-}" = --config ] && exec valgrind --tool=callgrind --compress-strings=no --callgrind-out-file="$dir/cg.blackbox" "$root/target/release/cifer-blackbox" "\$@"
exec "$root/target/release/cifer-blackbox" "\$@"
EOF
cat >"$bin/cifer-shard-node" <<EOF
#!/usr/bin/env bash
case "\${1:-} \${2:-}" in
  "--config "*/node1/*) exec valgrind --tool=callgrind --compress-strings=no --callgrind-out-file="$dir/cg.node1" "$root/target/release/cifer-shard-node" "\$@" ;;
esac
exec "$root/target/release/cifer-shard-node" "\$@"
EOF
chmod +x "$bin/cifer-blackbox" "$bin/cifer-shard-node"

# The services poll the chain once a second instead of ten times: their polling runs by
# the clock, not by the decryption, and would otherwise add ~1-2 % of noise to the counts
# (the two runs last different times). The load waits for their views to catch up with
# the head after its set-up, so no request is answered `future` and retried.
# The services' pruning of expired replay keys runs every 30 s by default and would land in
# whichever run is going on (a node's median moved by ~10 % between devnets): here it runs
# once a day, i.e. never during the bench. Its per-release share is a batch DELETE.
export DEVNET_DIR="$dir/devnet" DEVNET_PORT="${DEVNET_PORT:-28645}" BIN_DIR="$bin" DEVNET_POLL_MS=1000
export NODE_EXTRA="prune_interval_secs = 86400" BB_EXTRA="prune_interval_secs = 86400"
mkdir -p "$DEVNET_DIR"
keep() { [ -z "${KEEP_CALLGRIND:-}" ] || { mkdir -p "$KEEP_CALLGRIND" && cp "$dir"/cg.* "$KEEP_CALLGRIND"/ 2>/dev/null; } || true; }
trap 'bash scripts/devnet.sh down >/dev/null 2>&1 || true; keep; rm -rf "$dir"' EXIT
bash scripts/devnet.sh up >/dev/null
pid_of() { awk -v n="$1" '$1 == n { print $2 }' "$DEVNET_DIR/pids"; }
bb="$(pid_of blackbox1)"
node1="$(pid_of node1)"
node1_url="http://127.0.0.1:$((DEVNET_PORT + 1))/metrics"

releases() { curl -sf "$node1_url" | awk '$1 == "cifer_releases_total" { print $2 }'; }
# node1 answers last (it runs ~50x slower than its peers) and the black box stops waiting
# after three answers, so wait until node1 has released for every decryption.
settle() {
  local want="$1"
  for _ in $(seq 1 600); do
    [ "$(releases)" -ge "$want" ] && return 0
    sleep 0.1
  done
  echo "bench-instructions: node1 released $(releases) of $want" >&2
  return 1
}
# The instructions a process executed since the last dump: dumps are numbered from 1.
dumps=0
dump() {
  dumps=$((dumps + 1))
  callgrind_control -d "$bb" >/dev/null 2>&1
  callgrind_control -d "$node1" >/dev/null 2>&1
  for f in "$dir/cg.blackbox.$dumps" "$dir/cg.node1.$dumps"; do
    for _ in $(seq 1 100); do [ -s "$f" ] && grep -q '^totals:' "$f" && break; sleep 0.1; done
  done
}
total() { awk '/^totals:/ { print $2 }' "$1"; }

dump # start-up, discarded
done_releases=0
run() { # run <label> <decryptions>
  valgrind --tool=callgrind --callgrind-out-file="$dir/cg.load.$1" "$load" \
    --devnet "$DEVNET_DIR" --decryptions "$2" --settle-ms 2500 >/dev/null 2>&1
  done_releases=$((done_releases + $2 + 1))
  settle "$done_releases"
  dump
}
# Three pairs of runs. A service sometimes does work of its own during a run (SQLite
# checkpoints its write-ahead log every ~1,000 pages: millions of instructions at once),
# which lands in either run of a pair and moves that pair's estimate up or down; the
# median of the three pairs is printed, with all three.
for pair in 1 2 3; do
  run "a$pair" "$n1"
  run "b$pair" "$n2"
done

echo "== instructions per decryption (callgrind; ($n2 - $n1) decryptions, 1 KiB, EIP-712 form; median of three pairs)"
args=()
for proc in blackbox node1; do
  for i in 2 3 4 5 6 7; do args+=("$(total "$dir/cg.$proc.$i")"); done
done
for pair in 1 2 3; do args+=("$(total "$dir/cg.load.a$pair")" "$(total "$dir/cg.load.b$pair")"); done
python3 - "$n1" "$n2" "${args[@]}" <<'PY'
import statistics, sys
n1, n2, *t = (int(x) for x in sys.argv[1:])
def pairs(v):
    return [(v[2 * i + 1] - v[2 * i]) / (n2 - n1) for i in range(3)]
rows = (("instructions_per_decryption_blackbox", pairs(t[0:6])),
        ("instructions_per_release_node1", pairs(t[6:12])),
        ("instructions_per_decryption_sdk", pairs(t[12:18])))
med = {}
for name, p in rows:
    med[name] = statistics.median(p)
    print(f"{name} {med[name]:.0f} (pairs: {' '.join(f'{x:.0f}' for x in p)})")
services = med["instructions_per_decryption_blackbox"] + 5 * med["instructions_per_release_node1"]
print(f"instructions_per_decryption_services {services:.0f} (black box + 5 nodes)")
PY

# Per function (exclusive instructions): the difference of the two dumps of the pair
# whose total is the median printed above, so the breakdown adds up to that figure.
if [ -n "${BREAKDOWN:-}" ]; then
  for proc in blackbox node1; do
    python3 - "$((n2 - n1))" "$BREAKDOWN" "$proc" "$dir"/cg."$proc".{2,3,4,5,6,7} <<'PY'
import collections, re, statistics, sys
def own(path):
    cost, fn, call = collections.Counter(), None, False
    for line in open(path, errors="replace"):
        if line.startswith("fn="):
            fn = re.sub(r"^\(\d+\) ?", "", line[3:].strip()) or fn
        elif line.startswith("calls="):
            call = True  # the next cost line is the call's inclusive cost
        elif line[:1].isdigit() or line[:1] in "+-*":
            parts = line.split()
            if len(parts) >= 2:
                if call:
                    call = False
                else:
                    cost[fn] += int(parts[1])
    return cost
n, top, proc, dumps = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4:]
pairs = []
for i in range(3):
    a, b = own(dumps[2 * i]), own(dumps[2 * i + 1])
    diff = collections.Counter({f: b[f] - a.get(f, 0) for f in b})
    pairs.append((sum(diff.values()), i + 1, diff))
total, pair, diff = sorted(pairs, key=lambda p: p[0])[1]
print(f"== {proc}: top {top} functions, own instructions per decryption (pair {pair}, the median)")
for f, c in diff.most_common(top):
    print(f"{c / n:10.0f} {100 * c / total:5.1f} %  {f[:110]}")
PY
  done
fi
