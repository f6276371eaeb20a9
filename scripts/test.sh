#!/usr/bin/env bash
# Set up ctr and run the whole test suite (as root: the suite creates its own
# unprivileged user and runs ctr as that user).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
# The code's own checks first: a lint error or a type error fails CI before any test runs.
npm run -s lint
npm run -s typecheck
npm test
