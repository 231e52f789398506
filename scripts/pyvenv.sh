#!/usr/bin/env bash
# Makes (or reuses) a virtualenv holding exactly a pinned requirements file, so the test
# tools never install into the machine's own python3 (which Debian marks "externally
# managed", PEP 668). Usage: scripts/pyvenv.sh VENV_DIR REQUIREMENTS_FILE
# The venv is rebuilt whenever the requirements file differs from the copy kept inside it.
set -euo pipefail
venv="$1" req="$2"
if cmp -s "$req" "$venv/requirements.txt" 2>/dev/null && [ -x "$venv/bin/python" ]; then
  exit 0
fi
echo "== installing $req into $venv"
rm -rf "$venv"
python3 -m venv "$venv" || {
  echo "pyvenv: python3 -m venv failed; it needs python3's venv module (Debian: python3-venv)" >&2
  exit 1
}
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
cp "$req" "$venv/requirements.txt"
