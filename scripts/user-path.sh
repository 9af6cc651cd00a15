#!/usr/bin/env bash
# A new user's first steps, from the package as published (npm pack) into an empty project
# outside this repository, kept true by CI (.ci/run runs it after the tests):
#   1. `npm i <tarball>` installs with no warning about install scripts (the build runs at
#      prepack, never on the user's machine);
#   2. two modules written from the README's skeleton, a float32 one and a float16-mixed one
#      using bn-conformance/half (scripts/user-path/my-bn*.mjs), PASS
#      `npx bn-conformance check ./my-bn.mjs` on the first attempt;
#   3. a module with a syntax error is named with file:line:column;
#   4. a failing vitest suite (bn-conformance/vitest) points at a source file the package ships
#      (its source maps lead into src/, which is in "files").
# About 2 minutes: the build, one install from the npm cache (vitest, with --prefer-offline),
# two checks. BN_USER_PATH_KEEP=1 keeps the project folder and says where.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/bn-user-path.XXXXXX")"
if [[ "${BN_USER_PATH_KEEP:-}" == 1 ]]; then echo "user-path: working in $work (kept)"; else trap 'rm -rf "$work"' EXIT; fi
fail() {
  echo "user-path: FAIL: $*" >&2
  exit 1
}
npmq() { npm --no-audit --no-fund --no-update-notifier "$@"; }

echo "user-path: npm pack (prepack builds dist/)"
(cd "$repo" && npmq pack --pack-destination "$work" >"$work/pack.log" 2>&1) || {
  cat "$work/pack.log"
  fail "npm pack"
}
tarball="$(ls "$work"/bn-conformance-*.tgz)"

mkdir "$work/project"
cd "$work/project"
npmq init -y >/dev/null
echo "user-path: npm i $(basename "$tarball")"
npmq i --prefer-offline "$tarball" >install.log 2>&1 || {
  cat install.log
  fail "npm i of the tarball"
}
# npm 11 warns about a dependency's install-time scripts (prepare, install, postinstall)
if grep -Ei 'install-scripts|allowScripts|prepare|postinstall' install.log; then fail "installing the tarball warned about scripts (above)"; fi

cp "$repo/scripts/user-path/my-bn.mjs" "$repo/scripts/user-path/my-bn-f16.mjs" .
for m in my-bn.mjs my-bn-f16.mjs; do
  echo "user-path: npx bn-conformance check ./$m --seed 1"
  if ! npx --no-install bn-conformance check "./$m" --seed 1 >"$m.txt" 2>&1; then
    cat "$m.txt"
    fail "$m did not pass"
  fi
  grep -E '^PASS: ' "$m.txt" || fail "$m: no PASS line"
done

# a syntax error: Node 20 itself names no file for it
printf 'export default {\n  name: "typo",\n  forwardTrain(req) { return req;; } ;\n};\n' >typo.mjs
set +e
npx --no-install bn-conformance check ./typo.mjs >typo.txt 2>&1
code=$?
set -e
grep -F "cannot load ./typo.mjs: typo.mjs:3:" typo.txt || {
  cat typo.txt
  fail "a syntax error was not named with file:line:column"
}
[[ $code == 2 ]] || fail "a module that does not load: exit $code, not 2"

# vitest (an optional peer): the version this repository tests with, from the npm cache
vitest="$(node -p "require('$repo/node_modules/vitest/package.json').version")"
echo "user-path: npm i -D vitest@$vitest; a failing suite"
npmq i --prefer-offline -D "vitest@$vitest" >vitest-install.log 2>&1 || {
  cat vitest-install.log
  fail "npm i -D vitest"
}
# the float32 module with the variance divided by m - 1: bn:consistency:batch-statistics fails
sed 's|variance\[c\] = q / L.m;|variance[c] = q / (L.m - 1);|' my-bn.mjs >broken-bn.mjs
cmp -s my-bn.mjs broken-bn.mjs && fail "could not break my-bn.mjs (its variance line changed?)"
cat >bn.test.mjs <<'EOF'
import { defineConformanceSuite } from 'bn-conformance/vitest';
import impl from './broken-bn.mjs';
defineConformanceSuite(impl, { runs: 5, seed: 1, only: ['bn:consistency:batch-statistics:dtype=float32;axis=first'], golden: false });
EOF
set +e
NO_COLOR=1 npx --no-install vitest run >vitest.txt 2>&1
code=$?
set -e
[[ $code != 0 ]] || {
  cat vitest.txt
  fail "the broken module passed its vitest suite"
}
frame="$(grep -oE 'node_modules/bn-conformance/[^ :]+\.ts:[0-9]+:[0-9]+' vitest.txt | head -1)"
[[ -n "$frame" ]] || {
  cat vitest.txt
  fail "the vitest failure names no source location in the package"
}
[[ -f "${frame%%:*}" ]] || fail "the vitest failure points at ${frame%%:*}, which the package does not ship"
echo "user-path: the vitest failure points at $frame (shipped)"
echo "user-path: ok"
