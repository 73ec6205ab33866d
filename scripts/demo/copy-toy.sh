#!/usr/bin/env bash
# Can the trainer teach copying? Documents of 20 random tokens and the same 20
# again, one per sequence: a model that copies reaches a loss of half the
# first half's, ln(pool)/2 (2.05 for a pool of 60 tokens); one that does not
# stays at ln(pool) (4.09). Runs focus-tiny's architecture (hidden 256, 4
# layers, 8/2 heads, tied) from random weights with a 32,000-token vocabulary
# on a 60-token pool; prints the loss every 40 steps. About 10 minutes on 1
# thread. (The README's "Why it does not copy".)
#
#   bash scripts/demo/copy-toy.sh [WORK=.demo/copy-toy]
set -euo pipefail
cd "$(dirname "$0")/../.."
W=${1:-.demo/copy-toy}
CLI="node dist/lib/cli/main.js"
mkdir -p "$W"
node -e "
let s = 7; const r = () => (s = (s * 16807) % 2147483647) / 2147483647;
const out = [];
for (let i = 0; i < 20000; i++) { const a = Array.from({ length: 20 }, () => 3 + Math.floor(r() * 60)); out.push(JSON.stringify({ ids: [1, ...a, ...a] })); }
require('fs').writeFileSync('$W/data.jsonl', out.join('\n') + '\n');"
rm -rf "$W/init" "$W/out"
$CLI random-model --out "$W/init" --vocab 32000 --hidden 256 --intermediate 768 --layers 4 --heads 8 --kv-heads 2 \
  --tie --max-position-embeddings 512 --seed 7 > /dev/null
$CLI train --model "$W/init" --data "$W/data.jsonl" --out "$W/out" --params all --loss lm --seq-len 41 --steps 200 \
  --batch 32 --lr 2e-3 --warmup 10 --beta2 0.95 --seed 1 --threads "${THREADS:-1}" 2>&1 | awk 'NR % 40 == 1 || /trained/'
