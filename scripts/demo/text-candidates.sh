#!/usr/bin/env bash
# Can the shipped candidates (2v, .demo/focus-v) stop costing perplexity
# without losing their pass keys? Stages from 2v, candidates only, on more
# natural text (documents scored at their last token, as the answer
# documents are) beside short and middle-length answer documents:
#   p1  70% text: 4,000 text documents of 2..16 blocks and 400 of 8..64,
#       1,500 answer documents of 2..8 blocks and 500 of 8..32; local
#       windows 128..320 (the perplexity protocol's local sequence grows
#       from 192 to 320 tokens), lr 3e-4, 300 steps of 16.
#   p2  text alone (the same text documents), lr 1e-3, 300 steps: how far
#       can text training take the cost down at all?
#   p3  p2 continued: text alone, lr 1e-3, 500 more steps.
#   p4  from p3, the pass keys back: 2,000 of the text documents of 2..16
#       blocks and the 400 of 8..64, beside 1,000 answer documents of 8..32
#       blocks and 800 of 32..128 (57% text), lr 7e-4, 300 steps.
#   p5  from p4, both at once: all 4,400 text documents beside 1,000 new
#       answer documents of 8..32 blocks and 400 of 32..128 (76% text),
#       lr 1e-3, 400 steps.
# Each stage is measured on its F16 finalized copy: ppl-split.ts (the same
# held-out tokens as FocusLLM, local only and native; 4x and 16x, 6 windows
# per document) and official pass keys (seed 42, 10 trials, 4x-128x).
#
#   bash scripts/demo/text-candidates.sh [WORK]     (WORK: .demo; needs
#   train-induction.sh's focus-v, 2v before finalize.ts)
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=${1:-.demo}
CLI="node dist/lib/cli/main.js"
FOCUS_DEFAULTS='{"local_window":192,"chunk_size":256,"prompt_cap":64,"min_chunked_length":512}'
F=focus-answer.jsonl
fa() { # name retrieval.ts-flags...
  local name=$1
  shift
  [ -f "$WORK/fa/$name/$F" ] || [ -f "$WORK/fa/$name/focus-text.jsonl" ] || npx tsx scripts/demo/retrieval.ts --out "$WORK/fa/$name" --focus-answer 194 "$@"
}
fa t216p --text --blocks 2,16 --docs 4000 --seed 211
fa t864 --text --blocks 8,64 --docs 400 --seed 26
fa s28k --blocks 2,8 --docs 8000 --seed 153
fa s832k --blocks 8,32 --docs 5000 --seed 155
mkdir -p "$WORK/fa/mixp"
[ -f "$WORK/fa/mixp/ans28.jsonl" ] || head -n 1500 "$WORK/fa/s28k/$F" > "$WORK/fa/mixp/ans28.jsonl"
[ -f "$WORK/fa/mixp/ans832.jsonl" ] || head -n 500 "$WORK/fa/s832k/$F" > "$WORK/fa/mixp/ans832.jsonl"
fa s32128k --blocks 32,128 --docs 1200 --seed 156
[ -f "$WORK/fa/mixp/text216.jsonl" ] || head -n 2000 "$WORK/fa/t216p/focus-text.jsonl" > "$WORK/fa/mixp/text216.jsonl"
[ -f "$WORK/fa/mixp/ans832b.jsonl" ] || sed -n 501,1500p "$WORK/fa/s832k/$F" > "$WORK/fa/mixp/ans832b.jsonl"
[ -f "$WORK/fa/mixp/ans32128.jsonl" ] || head -n 800 "$WORK/fa/s32128k/$F" > "$WORK/fa/mixp/ans32128.jsonl"
[ -f "$WORK/fa/mixp/ans832c.jsonl" ] || sed -n 1501,2500p "$WORK/fa/s832k/$F" > "$WORK/fa/mixp/ans832c.jsonl"
[ -f "$WORK/fa/mixp/ans32128b.jsonl" ] || sed -n 801,1200p "$WORK/fa/s32128k/$F" > "$WORK/fa/mixp/ans32128b.jsonl"
stage() { # name from seed steps lr local-max data...
  local name=$1 from=$2 seed=$3 steps=$4 lr=$5 lmax=$6
  shift 6
  if [ -f "$WORK/$name/trainer_state.json" ]; then
    grep -q '"done": *true' "$WORK/$name/trainer_state.json" || $CLI train --resume "$WORK/$name"
  else
    rm -rf "${WORK:?}/$name"
    $CLI train --model "$WORK/$from" --data "$@" --out "$WORK/$name" --params candidate --loss focus --losses continuation \
      --target last --window $((lmax + 2)) --local-min 128 --local-max "$lmax" --strides 256 --prompt-cap 64 --min-length 388 \
      --max-length "${MAXLEN:-16000}" --batch 16 --lr "$lr" --eps 1e-16 --schedule linear --seed "$seed" --steps "$steps" --save-every 50
  fi
  [ -f "$WORK/final/$name/config.json" ] || npx tsx scripts/demo/finalize.ts --from "$WORK/$name" --out "$WORK/final/$name" --focus "$FOCUS_DEFAULTS" > /dev/null
  [ -f "$WORK/final/$name/ppl-split.json" ] || npx tsx scripts/demo/ppl-split.ts --model "$WORK/final/$name" --multiples 4,16 --threads 2 --json > "$WORK/final/$name/ppl-split.json"
  [ -f "$WORK/final/$name/passkey.json" ] || $CLI passkey --model "$WORK/final/$name" --protocol official --lengths 2048,8192,32768,65536 --trials 10 --seed 42 --json > "$WORK/final/$name/passkey.json"
  node -e '
    const fs = require("fs"); const d = process.argv[1];
    const s = JSON.parse(fs.readFileSync(d + "/ppl-split.json")); const p = JSON.parse(fs.readFileSync(d + "/passkey.json"));
    console.log(d + ": " + s.rows.map((r) => `${r.multiple}x focus ${r.ppl.focus.toFixed(1)} local ${r.ppl.local.toFixed(1)} native ${r.ppl.native.toFixed(1)}`).join("; ") +
      "; pass keys 4x-128x " + p.lengths.map((l) => Math.round(l.accuracy * 100) + "%").join(" / "));
  ' "$WORK/final/$name"
}
stage ppl-p1 focus-v 301 300 3e-4 320 "$WORK/fa/t216p/focus-text.jsonl" "$WORK/fa/t864/focus-text.jsonl" "$WORK/fa/mixp/ans28.jsonl" "$WORK/fa/mixp/ans832.jsonl"
stage ppl-p2 focus-v 302 300 1e-3 320 "$WORK/fa/t216p/focus-text.jsonl" "$WORK/fa/t864/focus-text.jsonl"
stage ppl-p3 ppl-p2 303 500 1e-3 320 "$WORK/fa/t216p/focus-text.jsonl" "$WORK/fa/t864/focus-text.jsonl"
MAXLEN=66000 stage ppl-p4 ppl-p3 304 300 7e-4 320 "$WORK/fa/mixp/text216.jsonl" "$WORK/fa/t864/focus-text.jsonl" "$WORK/fa/mixp/ans832b.jsonl" "$WORK/fa/mixp/ans32128.jsonl"
MAXLEN=66000 stage ppl-p5 ppl-p4 305 400 1e-3 320 "$WORK/fa/t216p/focus-text.jsonl" "$WORK/fa/t864/focus-text.jsonl" "$WORK/fa/mixp/ans832c.jsonl" "$WORK/fa/mixp/ans32128b.jsonl"
# p4 and p5 further: seed 1 pass keys (20 trials at 16x-128x), the same-token
# split at 64x, and the official perplexity protocol (the README's table's rows).
for n in ppl-p4 ppl-p5; do
  D="$WORK/final/$n"
  [ -f "$D/passkey-s1.json" ] || $CLI passkey --model "$D" --protocol official --lengths 8192,32768,65536 --trials 20 --seed 1 --json > "$D/passkey-s1.json"
  [ -f "$D/ppl-split-64.json" ] || npx tsx scripts/demo/ppl-split.ts --model "$D" --multiples 64 --threads 2 --json > "$D/ppl-split-64.json"
  [ -f "$D/eval.json" ] || npx tsx scripts/demo/evaluate.ts --variant "${n#ppl-}=$D" --parts ppl --ppl-windows 3 --threads 2 --out "$D/eval.json" > /dev/null
  node -e '
    const fs = require("fs"); const d = process.argv[1];
    const p = JSON.parse(fs.readFileSync(d + "/passkey-s1.json")); const s = JSON.parse(fs.readFileSync(d + "/ppl-split-64.json")).rows[0];
    const e = JSON.parse(fs.readFileSync(d + "/eval.json"));
    console.log(d + ": seed 1 pass keys 16x-128x " + p.lengths.map((l) => l.correct + "/" + l.trials).join(" / ") +
      `; 64x focus ${s.ppl.focus.toFixed(1)} local ${s.ppl.local.toFixed(1)} native ${s.ppl.native.toFixed(1)}` +
      "; official perplexity 1x-64x " + e.ppl.map((r) => r.ppl.toFixed(1)).join(" / "));
  ' "$D"
done
