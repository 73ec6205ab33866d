#!/usr/bin/env bash
# How slowly a small LLaMA learns to copy at random distances, with focusllm's
# trainer (scripts/demo/induction-torch.py runs the same task and recipe in
# plain PyTorch, a second opinion). BOS, 5..30 tokens drawn from 40, the same
# again; a 2-layer LLaMA (hidden 64, 4 heads, MLP 128), batch 32 of 64 tokens,
# lr 3e-3 cosine over STEPS. No copying: about ln 40 = 3.69; copying: about
# half. Prints the loss every 75 steps; under a minute on 1 thread.
#
#   bash scripts/demo/induction-toy.sh [WORK=.demo/induction-toy] [STEPS=1500]
set -euo pipefail
cd "$(dirname "$0")/../.."
W=${1:-.demo/induction-toy}
STEPS=${2:-1500}
CLI="node dist/lib/cli/main.js"
mkdir -p "$W"
node -e "
let s = 11; const r = () => (s = (s * 16807) % 2147483647) / 2147483647;
const out = [];
for (let i = 0; i < 40000; i++) { const n = 5 + Math.floor(r() * 26); const a = Array.from({ length: n }, () => 3 + Math.floor(r() * 40)); out.push(JSON.stringify({ ids: [1, ...a, ...a] })); }
require('fs').writeFileSync('$W/data.jsonl', out.join('\n') + '\n');"
rm -rf "$W/init" "$W/out"
$CLI random-model --out "$W/init" --vocab 64 --hidden 64 --intermediate 128 --layers 2 --heads 4 --kv-heads 4 \
  --max-position-embeddings 256 --seed 3 > /dev/null
$CLI train --model "$W/init" --data "$W/data.jsonl" --out "$W/out" --params all --loss lm --seq-len 64 --steps "$STEPS" \
  --batch 32 --lr 3e-3 --warmup 20 --beta2 0.95 --seed 1 --threads 1 --save-every 100000 2>&1 | awk 'NR % 75 == 1 || /trained/'
