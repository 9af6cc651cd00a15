#!/bin/bash
# The normalization family's false-alarm sweep (docs/false-alarms.md, "Normalization family"):
# the reference's ln, rms, gn and in checks (scale included, golden replays aside: they do not
# depend on the seed) at --runs 1000, one unit per (seed, op), as JSON reports in OUT. Start it
# several times to run workers in parallel: each claims units through mkdir in OUT/claims.
#
#   scripts/family-sweep.sh OUT [SEED...]          (default seeds 1001..1010)
#   npx tsx scripts/family-sweep-summary.ts OUT     the tables of docs/false-alarms.md
#
# Each unit runs `node dist/cli/main.js` (build first: npm run build) under nice -n 10.
set -u
OUT=${1:?usage: scripts/family-sweep.sh OUT [SEED...]}
shift
SEEDS=${*:-$(seq 1001 1010)}
CLI=${BN_CLI:-$(cd "$(dirname "$0")/.." && pwd)/dist/cli/main.js}
mkdir -p "$OUT/claims"
for seed in $SEEDS; do
  for p in ln rms gn in; do
    u="$p-$seed"
    mkdir "$OUT/claims/$u" 2>/dev/null || continue
    t0=$(date +%s)
    nice -n 10 node "$CLI" check --builtin reference --only "$p" --no-golden --runs 1000 --seed "$seed" --format json --out "$OUT/$u.json" > "$OUT/$u.log" 2>&1
    echo "$u rc=$? $(( $(date +%s) - t0 ))s" >> "$OUT/done.txt"
  done
done
