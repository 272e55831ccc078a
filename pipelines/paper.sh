#!/usr/bin/env bash
# Paper reproduction on N GPUs of one node: PRESET=arc1-paper|arc2-paper NGPU=8 pipelines/paper.sh
# Several nodes: run the same `accelerate launch` on each node with --num_machines, --machine_rank,
# --main_process_ip and --main_process_port set (accelerate's own multi-node flags).
set -euo pipefail
PRESET=${PRESET:-arc1-paper}
NGPU=${NGPU:-$(python -c "import torch; print(max(torch.cuda.device_count(), 1))")}
OUT=${OUT:-runs/$PRESET}
case "$PRESET" in arc1-paper) EVAL=arc1-eval ;; *) EVAL=arc2-eval ;; esac
arc-trm ingest --tasks "${TASKS:-arc1-train}" --test-tasks "$EVAL" --out "$OUT/data"
accelerate launch --multi_gpu --num_processes "$NGPU" --mixed_precision bf16 -m arc_trm.cli \
    train --preset "$PRESET" --dataset "$OUT/data" --out "$OUT"
accelerate launch --multi_gpu --num_processes "$NGPU" --mixed_precision bf16 -m arc_trm.cli \
    predict --checkpoint "$OUT" --tasks "$EVAL" --ttt off --out "$OUT/submission.json"
