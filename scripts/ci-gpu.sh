#!/usr/bin/env bash
# CI for the gpu.js kernel (issue 5): the real GLSL path through headless-gl on Mesa llvmpipe.
#
# What it does:
#   1. installs the Debian packages headless-gl needs to build (pkg-config, X/GL headers) and to run
#      (xvfb, xauth, Mesa's software DRI drivers);
#   2. makes sure the optional `gl` dependency of gpu.js is built: `npm ci` builds it when the -dev
#      packages were present at install time; otherwise `npm rebuild gl` (measured: 180 s clean,
#      JOBS=max on 2 cores; docs/gpu.md);
#   3. runs spec/kernels/gpu.spec.ts under `xvfb-run -a`, and FAILS if the headless-gl path was
#      skipped (a skipped GPU spec must never look like a pass in this job).
#
# Usage (from the repository root, after `npm ci`):   scripts/ci-gpu.sh
# Env: SKIP_APT=1 to skip apt-get (packages already present); BENCH=1 to also run the benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(pkg-config libxi-dev libglu1-mesa-dev libglew-dev xvfb xauth libgl1-mesa-dri)
if [[ "${SKIP_APT:-0}" != 1 ]]; then
  missing=()
  for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if ((${#missing[@]})); then
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
fi

GL_NODE="$(node -p "require('path').join(require('path').dirname(require.resolve('gl/package.json')), 'build/Release/webgl.node')" 2>/dev/null || true)"
if [[ -z "$GL_NODE" ]]; then
  echo "ci-gpu: the optional 'gl' package is not installed (gpu.js devDependency missing?): run npm ci" >&2
  exit 1
fi
if [[ ! -f "$GL_NODE" ]]; then
  echo "ci-gpu: gl is not built; running npm rebuild gl (JOBS=max)"
  start=$(date +%s)
  JOBS=max npm rebuild gl --foreground-scripts
  echo "ci-gpu: npm rebuild gl took $(( $(date +%s) - start ))s"
fi

# The spec prints the probe's verdict; require that the headless-gl path really ran.
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
xvfb-run -a --server-args="-screen 0 1024x768x24" npx vitest run spec/kernels/gpu.spec.ts 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
if ((status != 0)); then exit "$status"; fi
if ! grep -q "\[gpu.spec\] headlessgl: available" "$log"; then
  echo "ci-gpu: the headless-gl path did not run (see the probe's reason above): failing" >&2
  exit 1
fi
if grep -q "\[gpu.spec\] skipping headlessgl" "$log"; then
  echo "ci-gpu: some headless-gl tests were skipped: failing" >&2
  exit 1
fi

if [[ "${BENCH:-0}" == 1 ]]; then
  xvfb-run -a npx tsx scripts/bench-gpu.ts
fi
echo "ci-gpu: gpu.js headlessgl spec passed"
