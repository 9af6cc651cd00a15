#!/usr/bin/env bash
# The full conformance check of the gpu.js kernel (createGpu, headlessgl) under every profile.
#
#   scripts/check-gpu-all-profiles.sh [extra `check` options, e.g. --runs 25 --seed 7]
#
# Runs `bn-conformance check --builtin gpu --profile P` for keras, tensorflow-fused, pytorch, onnx
# and paper under `xvfb-run -a` (headless-gl on Mesa llvmpipe here), one after the other, prints
# each verdict and a summary, and exits 1 if any profile failed. Defaults: --seed 1 --runs 5
# (the fast-check properties; hand-written examples and golden fixtures always run in full).
# Reports are kept in ${OUT_DIR:-/tmp/bn-gpu-check}/<profile>.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${OUT_DIR:-/tmp/bn-gpu-check}"
mkdir -p "$OUT_DIR"
PROFILES=(${PROFILES:-keras tensorflow-fused pytorch onnx paper})
ARGS=("$@")
[[ " ${ARGS[*]-} " == *" --seed "* ]] || ARGS+=(--seed 1)
[[ " ${ARGS[*]-} " == *" --runs "* ]] || ARGS+=(--runs 5)
failed=0
summary=()
for p in "${PROFILES[@]}"; do
  start=$(date +%s)
  BN_GPU_MODE=headlessgl xvfb-run -a --server-args="-screen 0 1024x768x24" \
    npx tsx src/cli/main.ts check --builtin gpu --profile "$p" "${ARGS[@]}" >"$OUT_DIR/$p.txt" 2>&1
  rc=$?
  verdict="$(grep -E '^(PASS|FAIL)' "$OUT_DIR/$p.txt" | tail -1)"
  [[ -n "$verdict" ]] || verdict="no verdict (exit $rc): $(tail -3 "$OUT_DIR/$p.txt" | tr '\n' ' ')"
  line="$p: $verdict [$(( $(date +%s) - start )) s, exit $rc]"
  echo "$line"
  summary+=("$line")
  if ((rc != 0)); then
    failed=1
    grep -E '^✗' "$OUT_DIR/$p.txt" | sed 's/^/    /'
  fi
done
echo
echo "check-gpu-all-profiles (${ARGS[*]}):"
printf '  %s\n' "${summary[@]}"
exit "$failed"
