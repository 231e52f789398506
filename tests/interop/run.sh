#!/usr/bin/env bash
# Interoperability, both directions, between the `cifer` CLI and the independent Python
# implementation of PROTOCOL.md in tests/interop/cifer_py.py, plus an independent re-check
# of the committed known-answer vectors. Usage: tests/interop/run.sh [path/to/cifer]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cifer="${1:-$root/target/debug/cifer}"
# The Python side runs in its own virtualenv (pinned cryptography, tests/interop/requirements.txt).
bash "$root/scripts/pyvenv.sh" "$root/.venv-interop" "$root/tests/interop/requirements.txt"
py="$root/.venv-interop/bin/python $root/tests/interop/cifer_py.py"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
check() { # name, command...
  local name="$1"; shift
  if "$@"; then passed=$((passed + 1)); else echo "FAIL: $name" >&2; failed=$((failed + 1)); fi
}

check "vectors re-derived by an independent implementation" \
  $py check-vectors "$root/crates/cifer-core/tests/vectors/envelope_v1.json"

$py keygen "$work/py.id" "$work/py.rcpt"
"$cifer" keygen -o "$work/rs.id" --recipient-out "$work/rs.rcpt" >/dev/null
check "python recipient derives from python identity in rust" \
  bash -c "diff <('$cifer' recipient -i '$work/py.id') '$work/py.rcpt'"

for size in 0 1 1023 1024 1025 4096 100000; do
  head -c "$size" /dev/urandom > "$work/pt"
  for log2 in 10 16; do
    # Rust encrypts, Python decrypts.
    "$cifer" encrypt -r "$work/py.rcpt" --chain-id 31337 --secret-id 7 --chunk-log2 "$log2" -o "$work/a.cifr" "$work/pt"
    $py decrypt "$work/py.id" < "$work/a.cifr" > "$work/a.out"
    check "rust->python size=$size log2=$log2" cmp -s "$work/pt" "$work/a.out"
    # Python encrypts, Rust decrypts.
    $py encrypt "$work/rs.rcpt" 31337 7 "$log2" < "$work/pt" > "$work/b.cifr"
    "$cifer" decrypt -i "$work/rs.id" -o "$work/b.out" "$work/b.cifr"
    check "python->rust size=$size log2=$log2" cmp -s "$work/pt" "$work/b.out"
  done
done

# A flipped bit in a Python-made envelope must be refused by Rust (exit 5, no output).
$py encrypt "$work/rs.rcpt" 1 1 10 < "$work/pt" > "$work/c.cifr"
python3 -c "import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[-20]^=1; open(p,'wb').write(b)" "$work/c.cifr"
set +e
"$cifer" decrypt -i "$work/rs.id" -o "$work/c.out" "$work/c.cifr" 2>/dev/null
rc=$?
set -e
check "tampered python envelope refused by rust" test "$rc" -eq 5 -a ! -e "$work/c.out"

echo "interop: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
