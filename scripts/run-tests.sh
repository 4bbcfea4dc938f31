#!/usr/bin/env bash
# run-tests.sh NAME GLOB...: one node:test run of the given suites with the host libvirtd up,
# spec output for people and tap in test-results/NAME.tap, whose summary lines
# (# pass N / # fail N) are printed last for CI. Used by npm test and npm run test:boot.
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1
shift
# The suites drive the provider terraform installs from build/terraform-mirror: build it from
# the current sources first (under a second).
npm run build --silent >/dev/null
# npm test (the suite named "tests") type-checks everything first: a type error fails the run.
typecheck_rc=0
if [ "$name" = tests ]; then
  bash scripts/typecheck.sh || typecheck_rc=$?
fi
mkdir -p test-results
set +e
bash scripts/with-libvirtd.sh node --import tsx --test --test-concurrency=1 \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="test-results/$name.tap" \
  "$@"
rc=$?
set -e
echo
grep -E '^# (tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) ' "test-results/$name.tap" | tail -n 8
if [ "$typecheck_rc" -ne 0 ]; then
  echo "typecheck failed (see above): the run fails even though the tests ran" >&2
  [ "$rc" -ne 0 ] || rc=$typecheck_rc
fi
exit "$rc"
