# shellcheck shell=bash
# Source this file (`. scripts/forge-env.sh`) to use the Foundry toolchain pinned in
# package.json (installed by `npm ci`) without any network access:
#   - forge, cast and anvil 1.7.1 are the native binaries of the @foundry-rs/*-linux-amd64
#     packages, linked in node_modules/.bin (upstream publishes only some platforms for
#     1.7.1; elsewhere install Foundry 1.7.1 yourself and put it on PATH);
#   - solc is scripts/solc, a shim around the pinned solcjs, because forge cannot
#     download a compiler offline.

CIFER_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CIFER_ROOT

case ":$PATH:" in
  *":$CIFER_ROOT/node_modules/.bin:"*) ;;
  *) PATH="$CIFER_ROOT/node_modules/.bin:$PATH" ;;
esac
export PATH

if [ ! -d "$CIFER_ROOT/node_modules/solc" ]; then
  echo "forge-env.sh: node_modules is missing; run \`npm ci\` in $CIFER_ROOT" >&2
  return 1 2>/dev/null || exit 1
fi
for _tool in forge cast anvil; do
  if ! command -v "$_tool" >/dev/null 2>&1; then
    echo "forge-env.sh: $_tool not found; on this platform install Foundry 1.7.1 and put it on PATH" >&2
    unset _tool
    return 1 2>/dev/null || exit 1
  fi
done
unset _tool

export FOUNDRY_SOLC="$CIFER_ROOT/scripts/solc"
export FOUNDRY_OFFLINE=true
export FOUNDRY_DISABLE_NIGHTLY_WARNING=1
