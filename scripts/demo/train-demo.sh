#!/usr/bin/env bash
# Reproduces the shipped model models/focus-tiny from scratch on this
# machine's CPU (npm run train:demo). Not part of CI: about 8.5 hours on 2
# cores (the README has each stage's time).
#
#   stages 1-2  scripts/demo/train-induction.sh WORK: the corpus and the
#               retrieval data, a random-weight LLaMA (4 layers, hidden 256,
#               8 heads / 2 KV heads, SwiGLU 768, tied embeddings, LLaMA-2
#               tokenizer, window N0 = 512), the base model that retrieves
#               inside its window (1a-1g, --params all --loss lm), then the
#               FocusLLM candidate projections (2a-2v, --params candidate
#               --loss focus)
#   stage 3     F16 into OUT with its FocusLLM defaults in config.json, and
#               the base in the same form (WORK/final/base: the README's
#               native and zero-shot rows, scripts/demo/evaluate.ts)
#
#   bash scripts/demo/train-demo.sh [WORK=.demo/tiny] [OUT=models/focus-tiny]
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=${1:-.demo/tiny}
OUT=${2:-models/focus-tiny}
bash scripts/demo/train-induction.sh "$WORK"
FOCUS_DEFAULTS='{"local_window":192,"chunk_size":256,"prompt_cap":64,"min_chunked_length":512}'
npx tsx scripts/demo/finalize.ts --from "$WORK/focus-v" --out "$OUT" --focus "$FOCUS_DEFAULTS"
npx tsx scripts/demo/finalize.ts --from "$WORK/base" --out "$WORK/final/base" --focus "$FOCUS_DEFAULTS"
# Each stage's time on this machine (trainer_state.json "seconds").
for d in "$WORK"/*/trainer_state.json; do
  node -e 'const s = require(process.argv[1]); console.log(process.argv[2], s.step, "steps", Math.round(s.seconds), "s")' \
    "$(realpath "$d")" "$(basename "$(dirname "$d")")"
done
