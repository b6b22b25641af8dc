#!/usr/bin/env bash
# The main job: installs what is missing, builds, and runs the seed experiments.
#   scripts/run.sh            -> bnlab demo, then bnlab compare (the seed 003 comparison)
#   scripts/run.sh ARGS...    -> bnlab ARGS...
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
if [[ $# -gt 0 ]]; then
  exec ./build/bnlab "$@"
fi
./build/bnlab demo
if ./build/bnlab compare --help >/dev/null 2>&1; then
  ./build/bnlab compare --out out/compare
fi
