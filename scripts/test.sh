#!/usr/bin/env bash
# Sets up (scripts/setup.sh, with the test extras) and runs the default test suite: CPU only, no network.
set -euo pipefail
cd "$(dirname "$0")/.."
DUBKIT_SETUP_EXTRAS=1 bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec .venv/bin/python -m pytest -q "$@"
