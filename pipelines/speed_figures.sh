#!/usr/bin/env bash
# The speed figures of the README's cores table on one GPU, in one run, most wanted first: arc-trm's training
# step against each reference's own code (URM, then TRM, then HRM), URM's convolution kernel against the fused
# form, then where each core's compiled step spends its time. Every benchmark appends its JSON line to
# $OUT/speed.jsonl as it ends (a run cut short keeps what it measured) and its stderr to $OUT/<name>.log;
# one that fails or passes its own time limit (LIMIT_S, default 240 s) is noted and the next one runs.
#
#   TRM_REF=path/to/TinyRecursiveModels URM_REF=path/to/URM OUT=runs/speed pipelines/speed_figures.sh
#   SMOKE=1 ... runs every benchmark at toy sizes on the CPU (the suite runs it against a stand-in reference)
#
# PYTHON picks the interpreter (default python3). The references are your checkouts (nothing of them ships with arc-trm); they import pydantic and einops.
set -uo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-runs/speed}
LIMIT_S=${LIMIT_S:-240}
SMOKE=${SMOKE:-}
PYTHON=${PYTHON:-python3}
: "${TRM_REF:?set TRM_REF to your checkout of SamsungSAILMontreal/TinyRecursiveModels}"
: "${URM_REF:?set URM_REF to your checkout of UbiquantAI/URM}"
mkdir -p "$OUT"
smoke=()
[ -n "$SMOKE" ] && smoke=(--cpu-smoke)

bench() {   # bench NAME SCRIPT ARGS...: one benchmark, its line appended, its failure noted
  local name=$1 script=$2
  shift 2
  local line rc
  line=$(timeout "$LIMIT_S" "$PYTHON" "$HERE/benchmarks/$script" "$@" "${smoke[@]}" 2>"$OUT/$name.log" | tail -n 1)
  rc=${PIPESTATUS[0]}
  if [ "$rc" -eq 0 ] && [ -n "$line" ]; then
    echo "$line" >> "$OUT/speed.jsonl"
  else
    printf '{"benchmark": "%s", "failed": %d, "log": "%s"}\n' "$name" "$rc" "$OUT/$name.log" >> "$OUT/speed.jsonl"
  fi
  echo "speed_figures: $name done (exit $rc) at $(date +%T)"
}

bench reference-urm reference_step.py --core urm --reference "$URM_REF"
bench reference-trm reference_step.py --core trm --reference "$TRM_REF"
bench reference-hrm reference_step.py --core hrm --reference "$TRM_REF"
bench urm-conv urm_conv.py
for preset in urm-paper trm-paper-att hrm-paper; do
  bench "profile-$preset" step_profile.py --preset "$preset"
done
