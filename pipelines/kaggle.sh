#!/usr/bin/env bash
# Kaggle ARC-AGI-2 entry: train the kaggle-2025 checkpoint on N GPUs (data from the preset),
# package it with the kaggle-l4x4 predict preset, rehearse the notebook locally, upload with the
# official kaggle CLI.
#   NGPU=8 OWNER=your-kaggle-name COMPETITION=arc-prize-2025 pipelines/kaggle.sh
# Starting from published TRM weights instead: arc-trm import-reference step_N --out runs/ref, then
# INIT=runs/ref (continued training) or CHECKPOINT=runs/ref (package those weights as they are).
set -euo pipefail
NGPU=${NGPU:-$(python -c "import torch; print(max(torch.cuda.device_count(), 1))")}
OUT=${OUT:-runs/kaggle-2025}
: "${OWNER:?set OWNER to your Kaggle user name}"
COMPETITION=${COMPETITION:-arc-prize-2025}
CHECKPOINT=${CHECKPOINT:-}
if [ -z "$CHECKPOINT" ]; then
    LAUNCH=(accelerate launch --num_processes "$NGPU" --num_machines 1 --mixed_precision bf16 --dynamo_backend no)
    [ "$NGPU" -gt 1 ] && LAUNCH+=(--multi_gpu)
    "${LAUNCH[@]}" -m arc_trm.cli train --preset kaggle-2025 --out "$OUT" ${INIT:+--init-from "$INIT"}
    CHECKPOINT=$OUT
fi
arc-trm package --checkpoint "$CHECKPOINT" --out submission --competition "$COMPETITION" --owner "$OWNER" --preset kaggle-l4x4
if [ "${REHEARSE:-1}" = 1 ]; then   # the notebook on this machine, on the public 2025 evaluation tasks
    arc-trm rehearse --package submission --tasks kaggle2025-eval --budget "${REHEARSE_S:-900}"
fi
if [ "${UPLOAD:-0}" = 1 ]; then
    kaggle datasets create -p submission/dataset || kaggle datasets version -p submission/dataset -m "new checkpoint"
    kaggle kernels push -p submission/notebook
fi
