#!/usr/bin/env bash
# typecheck.sh: strict TypeScript over everything the project runs — the provider (sources,
# tests, build scripts), the constructs (L1 bindings, L2, tests, the bindings script), the cdktf stacks, the
# end-to-end suites and the bench, and the catalog site (with
# `astro check`, .astro components included). npm test runs it first, so a
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
check constructs tsc -p constructs/tsconfig.json
check stacks tsc -p stacks/tsconfig.json
check "tests, bench and scripts" tsc -p test/tsconfig.json
# astro check: the .astro components and the site's .ts files, after syncing the content types.
check "catalog site (.astro and .ts)" bash -c 'cd catalog-site && ASTRO_TELEMETRY_DISABLED=1 astro check --minimumSeverity error 2>&1 | grep -vE "^[0-9:]+ \[(vite|content|types|storm-appliance-definitions)\]"; exit "${PIPESTATUS[0]}"'
exit "$failed"
