# shellcheck shell=bash
# Source this file (`. scripts/forge-env.sh`) to use the Foundry toolchain pinned in
# package.json (installed by `npm ci`) without any network access:
#   - forge, cast and anvil come from node_modules (the native binaries of the
#     @foundry-rs/*-linux-* packages when present, else the npm wrappers);
#   - solc is scripts/solc, a shim around the pinned solcjs, because forge cannot
#     download a compiler offline.

CIFER_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CIFER_ROOT

if [ ! -x "$CIFER_ROOT/node_modules/.bin/forge" ]; then
  echo "forge-env.sh: node_modules/.bin/forge is missing; run \`npm ci\` in $CIFER_ROOT" >&2
  return 1 2>/dev/null || exit 1
fi

# Prefer the native binaries (signals reach them directly: no node wrapper in between).
for _tool in forge cast anvil; do
  for _dir in "$CIFER_ROOT"/node_modules/@foundry-rs/"$_tool"-*/bin; do
    if [ -x "$_dir/$_tool" ]; then
      case ":$PATH:" in
        *":$_dir:"*) ;;
        *) PATH="$_dir:$PATH" ;;
      esac
    fi
  done
done
unset _tool _dir
case ":$PATH:" in
  *":$CIFER_ROOT/node_modules/.bin:"*) ;;
  *) PATH="$PATH:$CIFER_ROOT/node_modules/.bin" ;;
esac
export PATH

export FOUNDRY_SOLC="$CIFER_ROOT/scripts/solc"
export FOUNDRY_OFFLINE=true
# Never phone home for update notices or telemetry.
export FOUNDRY_DISABLE_NIGHTLY_WARNING=1
