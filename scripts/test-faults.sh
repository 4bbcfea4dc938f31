#!/usr/bin/env bash
# npm run test:faults: the fault-injection suite (test/faults), then its table of faults and
# outcomes. Run by .ci/run after the other suites; takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -f test-results/faults.jsonl
rc=0
bash scripts/run-tests.sh faults 'test/faults/**/*.test.ts' || rc=$?
node --import tsx scripts/fault-table.ts || { [ "$rc" -ne 0 ] || rc=1; }
exit "$rc"
