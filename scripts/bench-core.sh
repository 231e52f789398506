#!/usr/bin/env bash
# Speed figures of the foundation issue, all measured in one run on this machine:
#   1. envelope seal throughput vs the fastest raw AES-256-GCM, 1 KiB encrypt cost
#      (crates/cifer-core/benches/ratios.rs);
#   2. `cifer encrypt`/`decrypt` of a 1 GiB file against Debian's `age` (same file, same
#      run; best of N wall-clock times) and cifer's peak RSS while streaming it.
# Output lines are `name value` so runs can be diffed between commits.
# Env: BENCH_SIZE_MIB (default 1024), BENCH_RUNS (default 3), BENCH_DIR (default a tmpdir).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
size_mib="${BENCH_SIZE_MIB:-1024}"
runs="${BENCH_RUNS:-3}"

echo "== primitives (cargo bench --bench ratios)"
cargo bench --locked -p cifer-core --all-features --bench ratios 2>/dev/null | grep -E '^[A-Za-z_0-9]+ '

if ! command -v age >/dev/null; then
  echo "== installing Debian's age for the comparison"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq age) >/dev/null
fi
cargo build --release --locked -p cifer-cli 2>/dev/null
cifer="$root/target/release/cifer"

# Default to tmpfs so the figures measure cifer and age, not the disk.
if [ -z "${BENCH_DIR:-}" ] && [ -d /dev/shm ]; then BENCH_DIR="$(mktemp -d -p /dev/shm)"; fi
dir="${BENCH_DIR:-$(mktemp -d)}"
trap 'rm -rf "$dir"/bench.*' EXIT
head -c $((size_mib << 20)) /dev/urandom > "$dir/bench.plain"
age-keygen -o "$dir/bench.age.key" 2>/dev/null
age_rcpt="$(age-keygen -y "$dir/bench.age.key")"
"$cifer" keygen -o "$dir/bench.cifer.key" --recipient-out "$dir/bench.cifer.pub" >/dev/null

# best-of-N wall time and peak RSS (KiB) of a command, via Python's rusage of children.
measure() {
  python3 - "$runs" "$@" <<'PY'
import resource, subprocess, sys, time
runs, cmd = int(sys.argv[1]), sys.argv[2:]
best = None
for _ in range(runs):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    d = time.perf_counter() - t
    best = d if best is None else min(best, d)
print(f"{best:.3f} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")
PY
}

echo "== ${size_mib} MiB file, best of ${runs}"
# The floor both tools share: copying the file through the page cache with no crypto at
# all (reading it, and allocating and filling the output's pages). Where this copy alone
# takes most of age's time, no encryptor can reach the ratio goals on this machine.
read -r copy _ < <(measure dd if="$dir/bench.plain" of="$dir/bench.copy" bs=1M status=none)
rm -f "$dir/bench.copy"
read -r age_enc _ < <(measure age -r "$age_rcpt" -o "$dir/bench.age" "$dir/bench.plain")
read -r cif_enc cif_enc_rss < <(measure "$cifer" encrypt -r "$dir/bench.cifer.pub" -o "$dir/bench.cifr" "$dir/bench.plain")
read -r age_dec _ < <(measure age -d -i "$dir/bench.age.key" -o "$dir/bench.age.out" "$dir/bench.age")
read -r cif_dec cif_dec_rss < <(measure "$cifer" decrypt -i "$dir/bench.cifer.key" -o "$dir/bench.cifer.out" "$dir/bench.cifr")
cmp -s "$dir/bench.plain" "$dir/bench.cifer.out" || { echo "cifer round trip mismatch" >&2; exit 1; }

python3 - "$size_mib" "$age_enc" "$cif_enc" "$age_dec" "$cif_dec" "$cif_enc_rss" "$cif_dec_rss" "$copy" <<'PY'
import sys
mib, ae, ce, ad, cd, erss, drss, cp = (float(x) for x in sys.argv[1:])
gb = mib * 1048576 / 1e9
print(f"copy_floor_GBps {gb/cp:.2f} (dd, no crypto: the most any tool could reach here)")
print(f"ceiling_over_age_encrypt {ae/cp:.2f} ceiling_over_age_decrypt {ad/cp:.2f} (age time / copy time)")
print(f"age_encrypt_GBps {gb/ae:.2f}")
print(f"cifer_encrypt_GBps {gb/ce:.2f}")
print(f"cifer_over_age_encrypt {ae/ce:.2f} (goal >= 2.5)")
print(f"age_decrypt_GBps {gb/ad:.2f}")
print(f"cifer_decrypt_GBps {gb/cd:.2f}")
print(f"cifer_over_age_decrypt {ad/cd:.2f} (goal >= 3.0)")
print(f"cifer_peak_rss_MiB {max(erss, drss)/1024:.1f} (goal <= 2 chunks + 32 MiB)")
PY
