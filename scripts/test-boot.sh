#!/usr/bin/env bash
# npm run test:boot: the slow end-to-end suite that boots real guests under QEMU (TCG).
# Builds the test guest and layers (cached in build/guest), then runs test/boot.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run build --silent >/dev/null
mkdir -p test-results
set +e
bash scripts/with-libvirtd.sh node --import tsx --test --test-concurrency=1 \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination=test-results/boot.tap \
  'test/boot/**/*.test.ts'
rc=$?
set -e
echo
grep -E '^# (tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) ' test-results/boot.tap | tail -n 8
exit "$rc"
