#!/usr/bin/env bash
# Builds the CPU-only addon with node-gyp (binding.gyp, `npm run build:gyp`) in
# a temporary copy of the sources, then loads it with node: backends().cpu must
# be true, and a fixture model must reproduce its reference logits. The
# repository's own build/ (the CMake addon) is never touched. Used by CI.
#
#   bash scripts/gyp-check.sh            build in a temporary folder, removed after
#   bash scripts/gyp-check.sh --keep DIR build in DIR (created) and keep it, e.g. to
#                                        use DIR/build/Release/focusllm.node
#
# Needs node, npm and node_modules (npm ci) with node-gyp and node-addon-api.
# node-gyp needs Node's headers: from npm's nodedir setting when there is one,
# else from the headers installed next to node (<prefix>/include/node), so it
# builds offline; otherwise node-gyp downloads them.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KEEP=""
if [ "${1:-}" = "--keep" ]; then
  KEEP="${2:?--keep needs a folder}"
fi

for dep in node-gyp node-addon-api; do
  if [ ! -d "$ROOT/node_modules/$dep" ]; then
    echo "gyp-check: node_modules/$dep is missing; run 'npm ci' first" >&2
    exit 1
  fi
done

if [ -n "$KEEP" ]; then
  WORK="$KEEP"
  mkdir -p "$WORK"
else
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/focusllm-gyp.XXXXXX")"
  trap 'rm -rf "$WORK"' EXIT
fi

# The sources as git sees them (tracked, plus new files not ignored), from the
# working tree.
cd "$ROOT"
git ls-files --cached --others --exclude-standard -z -- binding.gyp package.json cpp |
  while IFS= read -r -d '' f; do
    [ -e "$f" ] || continue  # deleted in the working tree
    mkdir -p "$WORK/$(dirname "$f")"
    cp -p "$f" "$WORK/$f"
  done
ln -sfn "$ROOT/node_modules" "$WORK/node_modules"

# Node's headers for node-gyp, without a download when they are installed.
if [ -z "${npm_config_nodedir:-}" ]; then
  nd="$(npm config get nodedir 2>/dev/null || true)"
  if [ -z "$nd" ] || [ "$nd" = "undefined" ] || [ "$nd" = "null" ]; then
    prefix="$(dirname "$(dirname "$(command -v node)")")"
    [ -f "$prefix/include/node/node_api.h" ] && nd="$prefix" || nd=""
  fi
  [ -n "$nd" ] && export npm_config_nodedir="$nd"
fi

echo "gyp-check: node-gyp rebuild in $WORK (nodedir ${npm_config_nodedir:-<download>}, ${JOBS:-2} jobs)"
(cd "$WORK" && JOBS="${JOBS:-2}" npm run --silent build:gyp)

ADDON="$WORK/build/Release/focusllm.node"
[ -f "$ADDON" ] || { echo "gyp-check: $ADDON was not built" >&2; exit 1; }

FIXTURES="$ROOT/test/fixtures"
ADDON="$ADDON" FIXTURES="$FIXTURES" node - <<'JS'
const addon = require(process.env.ADDON);
const fs = require('fs');
const b = addon.backends();
if (b.cpu !== true) {
  console.error('gyp-check: backends().cpu is not true:', JSON.stringify(b));
  process.exit(1);
}
console.log('gyp-check: addon loads; backends():', JSON.stringify(b));
// A fixture model must reproduce its reference logits (the engine, not just the symbols).
const name = 'tiny-gqa';
const casePath = `${process.env.FIXTURES}/${name}.native.json`;
if (!fs.existsSync(casePath)) {
  console.log(`gyp-check: skipped the logits check (no fixture at ${casePath})`);
  process.exit(0);
}
(async () => {
  const c = JSON.parse(fs.readFileSync(casePath, 'utf8'));
  const m = await addon.loadModel(`${process.env.FIXTURES}/${name}`, { threads: 2 });
  const pool = m.createKvPool(1, 256, 'f32');
  const got = await m.run([{ tokens: Int32Array.from(c.ids), pool, slot: 0, logits: 1 }]);
  const ref = c.logits[0];
  let md = 0, mr = 0;
  for (let j = 0; j < ref.length; j++) {
    md = Math.max(md, Math.abs(got[j] - ref[j]));
    mr = Math.max(mr, Math.abs(ref[j]));
  }
  const err = md / mr;
  const desc = m.backendDescription;
  console.log(`gyp-check: ${name} logits rel err ${err.toExponential(2)} (${desc || 'cpu'})`);
  if (!(err <= 1e-4)) process.exit(1);
})().catch((e) => {
  console.error('gyp-check:', e);
  process.exit(1);
});
JS
echo "gyp-check: OK"
