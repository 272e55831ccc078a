#!/usr/bin/env bash
# Kaggle ARC-AGI-2 entry: train the kaggle-2025 checkpoint on N GPUs, package it with the
# kaggle-l4x4 predict preset, upload with the official kaggle CLI.
#   NGPU=8 OWNER=your-kaggle-name COMPETITION=arc-prize-2025 pipelines/kaggle.sh
set -euo pipefail
NGPU=${NGPU:-$(python -c "import torch; print(max(torch.cuda.device_count(), 1))")}
OUT=${OUT:-runs/kaggle-2025}
: "${OWNER:?set OWNER to your Kaggle user name}"
COMPETITION=${COMPETITION:-arc-prize-2025}
arc-trm ingest --tasks arc2-train --tasks arc1-train --tasks arc1-eval --test-tasks arc2-eval --out "$OUT/data"
accelerate launch --multi_gpu --num_processes "$NGPU" --mixed_precision bf16 -m arc_trm.cli \
    train --preset kaggle-2025 --dataset "$OUT/data" --out "$OUT"
arc-trm package --checkpoint "$OUT" --out submission --competition "$COMPETITION" --owner "$OWNER" --preset kaggle-l4x4
if [ "${UPLOAD:-0}" = 1 ]; then
    kaggle datasets create -p submission/dataset || kaggle datasets version -p submission/dataset -m "new checkpoint"
    kaggle kernels push -p submission/notebook
fi
