#!/usr/bin/env bash
# Short distances first: a 2-layer LLaMA (hidden 64, 4 heads, MLP 128) learns
# the pass-key toy of scripts/demo/passkey-toy.ts in 1500 steps when key and
# question are 0..20 filler tokens apart, barely when they are 0..200 apart,
# and extends from the short run to 0..200 in 400 more steps. Prints one JSON
# line per evaluation; a few minutes on 2 threads.
#
#   bash scripts/demo/passkey-toy.sh [WORK=.demo/passkey-toy]
set -euo pipefail
cd "$(dirname "$0")/../.."
W=${1:-.demo/passkey-toy}
CLI="node dist/lib/cli/main.js"
TOY="npx tsx scripts/demo/passkey-toy.ts"
mkdir -p "$W"
$TOY data "$W/short.jsonl" 0 20 7
$TOY data "$W/long.jsonl" 0 200 8
rm -rf "$W/init" "$W/short" "$W/long" "$W/short-long"
$CLI random-model --out "$W/init" --vocab 64 --hidden 64 --intermediate 128 --layers 2 --heads 4 --kv-heads 4 \
  --max-position-embeddings 512 --seed 3 > /dev/null
train() { # from data out seq steps lr
  $CLI train --model "$W/$1" --data "$W/$2.jsonl" --out "$W/$3" --params all --loss lm --seq-len "$4" --steps "$5" \
    --batch 32 --lr "$6" --warmup 20 --beta2 0.95 --seed 1 --threads 1 --save-every 100000 > "$W/$3.log" 2>&1
}
train init short short 64 1500 3e-3 & train init long long 256 1500 3e-3 & wait
$TOY eval "$W/short" 0 20
$TOY eval "$W/short" 0 200
$TOY eval "$W/long" 0 200
train short long short-long 256 400 1e-3
$TOY eval "$W/short-long" 0 200
$TOY eval "$W/short-long" 100 400
# FocusLLM on the toy: the base answers from chunk ++ P across the BOS
# (chunk-eval), yet neither zero-shot FocusLLM nor 3000 steps of candidate
# training (W 64, local windows 40..62, continuation loss) retrieve: in two
# layers the answer exists only after the last attention, so no candidate
# key or value carries it.
$TOY chunk-eval "$W/short-long"
$TOY focus-data "$W/focus.jsonl"
$TOY focus-eval "$W/short-long"
rm -rf "$W/focus"
$CLI train --model "$W/short-long" --data "$W/focus.jsonl" --out "$W/focus" --params candidate --loss focus \
  --losses continuation --window 64 --local-min 40 --local-max 62 --strides 16,32,64 --prompt-cap 16 --min-length 64 \
  --max-length 2048 --steps 3000 --batch 16 --lr 3e-3 --seed 2 --save-every 100000 --threads 2 > "$W/focus.log" 2>&1
$TOY focus-eval "$W/focus"
# The same with a 4-layer toy (the same data and steps; the layer argument
# above does not cover it, and it does not retrieve under FocusLLM either).
rm -rf "$W/init4" "$W/short4" "$W/short-long4" "$W/focus4"
$CLI random-model --out "$W/init4" --vocab 64 --hidden 64 --intermediate 128 --layers 4 --heads 4 --kv-heads 4 \
  --max-position-embeddings 1024 --seed 3 > /dev/null
$CLI train --model "$W/init4" --data "$W/short.jsonl" --out "$W/short4" --params all --loss lm --seq-len 64 --steps 1500 \
  --batch 32 --lr 3e-3 --warmup 20 --beta2 0.95 --seed 1 --threads 2 --save-every 100000 > "$W/short4.log" 2>&1
train short4 long short-long4 256 400 1e-3
$TOY eval "$W/short-long4" 0 200
$TOY chunk-eval "$W/short-long4"
$TOY focus-eval "$W/short-long4"
$CLI train --model "$W/short-long4" --data "$W/focus.jsonl" --out "$W/focus4" --params candidate --loss focus \
  --losses continuation --window 64 --local-min 40 --local-max 62 --strides 16,32,64 --prompt-cap 16 --min-length 64 \
  --max-length 2048 --steps 3000 --batch 16 --lr 3e-3 --seed 2 --save-every 100000 --threads 2 > "$W/focus4.log" 2>&1
$TOY focus-eval "$W/focus4"
# Stage 2 that learns: every scored token an answer digit (--target last on
# documents that end inside their answer). The first digit only (600 steps),
# then all five (1500 + 1500 steps), candidate projections only, then 1000
# steps on longer documents. FocusLLM then finds 87%, 90% and 81% of the
# digits at 600, 2000 and 6000 filler tokens (zero-shot: 7.5% and 11%).
$TOY focus-answer-data "$W/fa-1.jsonl" 70 250 1
$TOY focus-answer-data "$W/fa-5.jsonl" 70 600 5
$TOY focus-answer-data "$W/fa-5L.jsonl" 600 3000 5
rm -rf "$W/tA" "$W/tB" "$W/tC" "$W/tD"
stage2() { # from data out steps lr seed
  $CLI train --model "$W/$1" --data "$W/$2.jsonl" --out "$W/$3" --params candidate --loss focus --losses continuation \
    --target last --window 64 --local-min 40 --local-max 62 --strides 64 --prompt-cap 16 --min-length 64 --max-length 4096 \
    --steps "$4" --batch 16 --lr "$5" --seed "$6" --save-every 100000 --threads 2 > "$W/$3.log" 2>&1
}
stage2 short-long4 fa-1 tA 600 3e-3 2
$TOY focus-eval "$W/tA"
stage2 tA fa-5 tB 1500 3e-3 3
$TOY focus-eval "$W/tB"
stage2 tB fa-5 tC 1500 2e-3 4
for f in 600 2000 6000; do $TOY focus-eval "$W/tC" $f; done
stage2 tC fa-5L tD 1000 2e-3 5
for f in 600 2000 6000; do $TOY focus-eval "$W/tD" $f; done
$TOY focus-eval "$W/short-long4" 6000
