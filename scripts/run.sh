#!/usr/bin/env bash
# The classification study: baseline, MixUp, CutMix and warmup recipes (configs/classify/*.yaml), each with
# two seeds, on the built-in synthetic set; then one comparison table (per run, and per recipe: mean and
# spread over the seeds).
#
#   scripts/run.sh [OUT]          OUT defaults to runs/classify-study
#
# Environment: YOLOLAB (the yololab command, default .venv/bin/yololab), SEEDS (default "0 1"),
# RECIPES (default "baseline mixup cutmix warmup"), EXTRA (more train flags, e.g. "epochs=2").
# Each run takes the cpu lock (flock /work/cpu.lock when it exists) so timed runs do not overlap.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/classify-study}
YOLOLAB=${YOLOLAB:-.venv/bin/yololab}
SEEDS=${SEEDS:-"0 1"}
RECIPES=${RECIPES:-"baseline mixup cutmix warmup"}
EXTRA=${EXTRA:-}
LOCK=()
[ -e /work/cpu.lock ] && LOCK=(flock /work/cpu.lock)

mkdir -p "$OUT"
[ -f "$OUT/data/batches.meta" ] || "$YOLOLAB" classify synth --out "$OUT/data"
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
"$YOLOLAB" classify compare "${runs[@]}" --out "$OUT/comparison.md" --exist-ok
