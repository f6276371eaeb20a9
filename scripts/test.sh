#!/usr/bin/env bash
# Set up ctr and run the whole test suite (as root: the suite creates its own
# unprivileged user and runs ctr as that user).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
npm test
