#!/usr/bin/env bash
# CPU smoke run: train the tiny preset on generated tasks (best/ chosen on 4 of its 16 test tasks, scored on
# the other 12), then predict 16 *new* generated tasks with test-time training and without, score both and
# compare them in one report (report.html, with the paired verdict).
# MODEL=urm-tiny, hrm-tiny, varc-tiny or loopvit-tiny runs the same recipe with another core.
set -euo pipefail
OUT=${OUT:-runs/smoke${MODEL:+-$MODEL}}
arc-trm train --preset smoke ${MODEL:+--model "$MODEL"} --out "$OUT"
mkdir -p "$OUT/new"
python - "$OUT" <<'PY'
import sys
from arc_trm.config import load_config
from arc_trm.data.synthetic import make_tasks, write_challenges
d = load_config("smoke").data   # same rule families and grid sizes as training, new tasks
write_challenges(make_tasks(16, seed=99, prefix="new", families=d.synthetic_families, max_side=min(8, d.canvas)),
                 f"{sys.argv[1]}/new/new_challenges.json")
PY
for ttt in embeddings_then_full off; do
  name=$([ "$ttt" = off ] && echo no-ttt || echo ttt)
  arc-trm predict --checkpoint "$OUT" --tasks "$OUT/new/new_challenges.json" --ttt "$ttt" \
    --out "$OUT/new/$name.json" --candidates "$OUT/new/$name.candidates.json"
  arc-trm score "$OUT/new/$name.json" --solutions "$OUT/new/new_solutions.json"
done
arc-trm report "$OUT/new/ttt.json" "$OUT/new/no-ttt.json" --tasks "$OUT/new/new_challenges.json" --run "$OUT" \
  --candidates "$OUT/new/ttt.candidates.json" --candidates "$OUT/new/no-ttt.candidates.json" --out "$OUT/report.html"
