#!/usr/bin/env bash
# Issue 11, item 7: the video targets on the synthetic actions (10 classes), one CLI line per run.
# Each training run is capped at 10 minutes of training (--time 0.1667 h); results in runs/video-targets/.
# Timed runs take the machine's CPU lock when LOCK names one (LOCK=/work/cpu.lock on the shared machine),
# and `uptime` is printed before and after each, to state the load with the figure.
set -euo pipefail
Y=${YOLOLAB:-.venv/bin/yololab}
OUT=${OUT:-runs/video-targets}
RUN() { uptime; if [ -n "${LOCK:-}" ]; then flock "$LOCK" "$@"; else "$@"; fi; uptime; }

[ -d "$OUT/data" ] || $Y video synth --out "$OUT/data" --size 32 --frames 16 --videos-per-class 60 --seed 0
COMMON=(--data "$OUT/data" --clip-len 8 --short-side 32 --size 32 --batch 16 --workers 1 --epochs 12
        --lr0 0.002 --warmup-epochs 0.5 --time 0.1667 --project "$OUT" --exist-ok)
for model in ${MODELS:-cnn_lstm frame_avg r2plus1d_18 timesformer}; do
  extra=()
  [ "$model" = timesformer ] && extra=(--patch 4 --dim 128 --depth 4 --heads 4)
  RUN $Y video train --model "$model" "${COMMON[@]}" "${extra[@]}" --name "$model"
done
