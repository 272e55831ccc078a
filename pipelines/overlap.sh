#!/usr/bin/env bash
# Is a score inflated by what the model trained on? ARC-AGI-2's training set holds the test pairs
# (input and answer) of 368 ARC-AGI-1 evaluation tasks. Train the ARC-AGI-2 recipe twice, as it is
# and without those tasks (--exclude-overlap arc1-eval), predict ARC-AGI-1's evaluation set with
# both, and compare them in one report (predict warns about the first; the report marks its tasks).
#   pipelines/overlap.sh                               the real question (GPUs; launch as pipelines/paper.sh does)
#   MODEL=tiny-cpu TRAIN_S=120 pipelines/overlap.sh    the mechanics on a CPU in ~15 minutes, not a score
set -euo pipefail
PRESET=${PRESET:-arc2-paper}
OUT=${OUT:-runs/overlap}
TRAIN=(--preset "$PRESET")
PREDICT=()
if [ -n "${MODEL:-}" ]; then   # a small model and a short run: few augmentations and views, no TTT
  TRAIN+=(--model "$MODEL" --set data.augmentations=8 --set train.global_batch_size=32
          --set "train.time_limit_s=${TRAIN_S:-120}" --set train.eval_interval_steps=0
          --set train.max_eval_views=2 --set train.eval_time_limit_s=30)
  PREDICT+=(--ttt off --set predict.views_per_input=2)
fi
arc-trm train "${TRAIN[@]}" --out "$OUT/all"
arc-trm train "${TRAIN[@]}" --exclude-overlap arc1-eval --out "$OUT/clean"   # leaves those tasks out
for run in all clean; do                         # predict warns when the checkpoint saw answers
  arc-trm predict --checkpoint "$OUT/$run" --tasks arc1-eval "${PREDICT[@]}" \
    --out "$OUT/$run.json" --candidates "$OUT/$run.candidates.json"
  arc-trm score "$OUT/$run.json" --solutions arc1-eval
done
arc-trm report "$OUT/all.json" "$OUT/clean.json" --tasks arc1-eval --checkpoint "$OUT/all" --checkpoint "$OUT/clean" \
  --candidates "$OUT/all.candidates.json" --candidates "$OUT/clean.candidates.json" --out "$OUT/report.html"
