#!/usr/bin/env bash
# CPU smoke run: train the tiny preset on generated tasks, then predict *new* generated tasks
# with test-time training and score them. MODEL=urm-tiny or MODEL=hrm-tiny runs the same recipe with a URM or an HRM.
set -euo pipefail
OUT=${OUT:-runs/smoke${MODEL:+-$MODEL}}
arc-trm train --preset smoke ${MODEL:+--model "$MODEL"} --out "$OUT"
python - "$OUT" <<'PY'
import sys
from arc_trm.config import load_config
from arc_trm.data.synthetic import make_tasks, write_challenges
d = load_config("smoke").data   # same rule families and grid sizes as training, new tasks
write_challenges(make_tasks(8, seed=99, prefix="new", families=d.synthetic_families, max_side=min(8, d.canvas)),
                 f"{sys.argv[1]}/new/new_challenges.json")
PY
arc-trm predict --checkpoint "$OUT" --tasks "$OUT/new/new_challenges.json" --out "$OUT/new/submission.json"
arc-trm score "$OUT/new/submission.json" --solutions "$OUT/new/new_solutions.json"
