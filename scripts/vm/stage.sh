#!/usr/bin/env bash
# Stages what the guest installs, as boot.sh --payload DIR/payload:
#   payload/node     this host's /usr/bin/node (the guest's /usr/bin/node, the units' ExecStart)
#   payload/npm      this host's npm (install.sh --deps copy runs npm prune)
#   payload/stage/   the built tree install.sh runs from: package.json, lock, dist/ (npm run build when
#                    older than the sources), systemd/, scripts/, README.md, and node_modules pruned to
#                    the production dependencies (install.sh --deps copy copies and prunes them again)
#   scripts/vm/stage.sh DIR
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=$1/payload
cd "$REPO"
[ -d node_modules ] || { echo "stage: $REPO/node_modules is missing (npm ci)" >&2; exit 1; }
if [ ! -f dist/agent/cli.js ] || [ -n "$(find agent drivers package.json package-lock.json tsconfig*.json -newer dist/agent/cli.js -print -quit)" ]; then
  echo "stage: npm run build" >&2
  npm run build >&2
fi
rm -rf "$out"
mkdir -p "$out/stage"
cp -a package.json package-lock.json README.md dist systemd scripts "$out/stage/"
cp -a node_modules "$out/stage/"
(cd "$out/stage" && npm prune --omit=dev --offline --no-audit --no-fund >/dev/null 2>&1) || { echo "stage: npm prune failed" >&2; exit 1; }
# what the guest needs of better-sqlite3 is its addon; its sources and build intermediates stay here
find "$out/stage/node_modules/better-sqlite3" -mindepth 1 -maxdepth 1 \( -name deps -o -name src \) -exec rm -rf {} +
find "$out/stage/node_modules/better-sqlite3/build" -mindepth 1 -not -path '*/Release' -not -name '*.node' -delete 2>/dev/null || true
cp /usr/bin/node "$out/node"
# npm from memory too (for a guest that runs install.sh --deps copy, which runs npm prune)
cp -a "$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")" "$out/npm"
