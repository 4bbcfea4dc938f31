#!/usr/bin/env bash
# typecheck.sh: strict TypeScript over everything the project runs — the provider (sources,
# tests, build scripts), the end-to-end suites and the bench, and the catalog site (after
# `astro sync` writes the types of its content collections). npm test runs it first, so a
# type error fails the tests.
set -uo pipefail
cd "$(dirname "$0")/.."
failed=0
check() {
  local label=$1
  shift
  if "$@"; then echo "typecheck: $label ok"; else echo "typecheck: $label FAILED" >&2; failed=1; fi
}
check provider tsc -p provider/tsconfig.json
check "tests and bench" tsc -p test/tsconfig.json
check "catalog site types (astro sync)" bash -c 'cd catalog-site && ASTRO_TELEMETRY_DISABLED=1 astro sync >/dev/null'
check "catalog site" tsc -p catalog-site/tsconfig.json
exit "$failed"
