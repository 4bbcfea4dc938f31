#!/usr/bin/env bash
# npm test: the provider's unit tests and the end-to-end suites against real daemons
# (libvirtd, ipmi_sim BMCs, terraform), in one node:test run so there is one summary.
# Daemons are started here (or by the suites) and stopped afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

# The suites drive the provider that terraform installs from build/terraform-mirror: build it
# from the current sources first (under a second).
npm run build --silent >/dev/null

mkdir -p test-results
# spec for people, tap for the summary lines CI reads (# pass N / # fail N).
set +e
bash scripts/with-libvirtd.sh node --import tsx --test --test-concurrency=1 \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination=test-results/tests.tap \
  'provider/test/**/*.test.ts' 'test/e2e/**/*.test.ts'
rc=$?
set -e
echo
grep -E '^# (tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) ' test-results/tests.tap | tail -n 8
exit "$rc"
