#!/usr/bin/env bash
# The one install command (README): system packages and libvirt set-up, npm dependencies
# (including the pinned Node 22 and the native libvirt binding), and the provider built into
# the repo-local Terraform filesystem mirror. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-system.sh
echo "install: npm ci"
npm ci --no-fund --no-audit
echo "install: building the provider"
npm run build --silent
echo "install: done. Run the tests with: npm test"
