#!/usr/bin/env bash
# The classification study: baseline, MixUp, CutMix and warmup recipes (configs/classify/*.yaml), each with
# two seeds, on the built-in synthetic set; then one comparison table (per run, and per recipe: mean and
# spread over the seeds).
#
#   scripts/run.sh [OUT]          OUT defaults to runs/classify-study
#
# Environment: YOLOLAB (the yololab command, default .venv/bin/yololab), SEEDS (default "0 1"),
# RECIPES (default "baseline mixup cutmix warmup"), EXTRA (more train flags, e.g. "epochs=2"), SYNTH (flags of
# `yololab classify synth`, e.g. "--train 2000 --val 500" for a quick study).
# Each run takes the cpu lock (flock $LOCK_FILE, default /work/cpu.lock, when it exists) so timed runs do not
# overlap; LOCK_FILE= (empty) runs without it.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/classify-study}
YOLOLAB=${YOLOLAB:-.venv/bin/yololab}
SEEDS=${SEEDS:-"0 1"}
RECIPES=${RECIPES:-"baseline mixup cutmix warmup"}
EXTRA=${EXTRA:-}
SYNTH=${SYNTH:-}
LOCK_FILE=${LOCK_FILE-/work/cpu.lock}
LOCK=()
[ -n "$LOCK_FILE" ] && [ -e "$LOCK_FILE" ] && LOCK=(flock "$LOCK_FILE")

mkdir -p "$OUT"
# shellcheck disable=SC2086
[ -f "$OUT/data/batches.meta" ] || "$YOLOLAB" classify synth --out "$OUT/data" $SYNTH
runs=()
for recipe in $RECIPES; do
  for seed in $SEEDS; do
    name="$recipe-s$seed"
    runs+=("$OUT/$name")
    [ -f "$OUT/$name/eval.json" ] && { echo "$name: done already"; continue; }
    echo "== $name  ($(uptime))"
    if [ -f "$OUT/$name/weights/last.pt" ]; then  # interrupted earlier: continue it
      "${LOCK[@]}" "$YOLOLAB" classify train --resume "$OUT/$name"
    else
      # shellcheck disable=SC2086
      "${LOCK[@]}" "$YOLOLAB" classify train --data "$OUT/data" --cfg "configs/classify/$recipe.yaml" \
        --seed "$seed" --project "$OUT" --name "$name" --exist-ok $EXTRA
    fi
  done
done
echo "== all done ($(uptime))"
"$YOLOLAB" classify compare "${runs[@]}" --out "$OUT/comparison.md" --overwrite
