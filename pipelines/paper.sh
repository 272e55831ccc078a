#!/usr/bin/env bash
# Paper reproduction on the GPUs of one node; the data comes from the preset (arc1-paper:
# ARC-AGI-1 training + ConceptARC + the evaluation demos; arc2-paper: the same for ARC-AGI-2).
#   PRESET=arc1-paper|arc2-paper NGPU=8 pipelines/paper.sh
# One H100 holds about 192 samples per step: MICRO=192 NGPU=1 runs the global batch of 768 as 4
# micro-batches (the same math). Several nodes: run the same `accelerate launch` on each node with
# --num_machines, --machine_rank, --main_process_ip and --main_process_port (accelerate's flags).
set -euo pipefail
PRESET=${PRESET:-arc1-paper}
NGPU=${NGPU:-$(python -c "import torch; print(max(torch.cuda.device_count(), 1))")}
OUT=${OUT:-runs/$PRESET}
MICRO=${MICRO:-0}
LAUNCH=(accelerate launch --num_processes "$NGPU" --num_machines 1 --mixed_precision bf16 --dynamo_backend no)
[ "$NGPU" -gt 1 ] && LAUNCH+=(--multi_gpu)
EVAL=$(python -c "from arc_trm.config import load_config; print(load_config('$PRESET').data.test_tasks[0])")
"${LAUNCH[@]}" -m arc_trm.cli train --preset "$PRESET" --out "$OUT" --set "train.micro_batch_size=$MICRO"
"${LAUNCH[@]}" -m arc_trm.cli predict --checkpoint "$OUT" --tasks "$EVAL" --ttt off --out "$OUT/submission.json"
