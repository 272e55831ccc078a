#!/usr/bin/env bash
# CPU smoke run: train the tiny preset on generated tasks, then predict *new* generated tasks
# with test-time training and score them.
set -euo pipefail
OUT=${OUT:-runs/smoke}
arc-trm train --preset smoke --out "$OUT"
python -c "from arc_trm.data.synthetic import make_tasks, write_challenges; write_challenges(make_tasks(8, seed=99, prefix='new'), '$OUT/new/new_challenges.json')"
arc-trm predict --checkpoint "$OUT" --tasks "$OUT/new/new_challenges.json" --out "$OUT/new/submission.json"
arc-trm score "$OUT/new/submission.json" --solutions "$OUT/new/new_solutions.json"
