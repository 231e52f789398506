#!/usr/bin/env bash
# The local round trip (the README's main job until the devnet lands): make a key pair,
# encrypt a file to the recipient, decrypt it with the identity, compare, and show that a
# tampered envelope is refused.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cifer="${CIFER:-$root/target/release/cifer}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

say "keygen"
"$cifer" keygen -o "$work/me.key" --recipient-out "$work/me.pub"
cut -c1-60 "$work/me.pub" | sed 's/$/…/'

say "encrypt a 5 MiB file to the recipient (chain 31337, secret 7)"
head -c $((5 << 20)) /dev/urandom > "$work/plain.bin"
"$cifer" encrypt -r "$work/me.pub" --chain-id 31337 --secret-id 7 -o "$work/plain.bin.cifr" "$work/plain.bin"
ls -l "$work/plain.bin" "$work/plain.bin.cifr" | awk '{print $5, $9}'
"$cifer" inspect "$work/plain.bin.cifr"

say "decrypt with the identity"
"$cifer" decrypt -i "$work/me.key" -o "$work/plain.out" "$work/plain.bin.cifr"
cmp "$work/plain.bin" "$work/plain.out" && echo "round trip OK: plaintext identical"

say "a tampered envelope is refused"
python3 -c "import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[5000]^=1; open(p,'wb').write(b)" "$work/plain.bin.cifr"
if "$cifer" decrypt -i "$work/me.key" -o "$work/bad.out" "$work/plain.bin.cifr"; then
  echo "tampered envelope decrypted: FAIL" >&2; exit 1
fi
test ! -e "$work/bad.out" && echo "refused, nothing written: OK"
