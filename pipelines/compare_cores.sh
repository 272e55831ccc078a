#!/usr/bin/env bash
# The smoke recipe once per core, one after the other (same budget: 240 s of training each), then the
# run-comparison page of the five runs (runs/cores.html): core, parameters, steps, examples, device-hours,
# the split best/ was chosen on and best/'s pass@2 on the scored tasks with its interval, curves overlaid.
# About 30 minutes on a 2-core CPU. CORES="tiny-cpu urm-tiny" runs a subset.
set -euo pipefail
CORES=${CORES:-"tiny-cpu urm-tiny hrm-tiny varc-tiny loopvit-tiny"}
runs=()
for model in $CORES; do
  MODEL=$model OUT=runs/smoke-$model "$(dirname "$0")/smoke.sh"
  runs+=("runs/smoke-$model")
done
arc-trm report --runs "${runs[@]}" --out runs/cores.html
