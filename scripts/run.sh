#!/usr/bin/env bash
# The main job: installs what is missing, builds, and runs the seed experiments.
#   scripts/run.sh            -> bnlab demo, then bnlab compare (the seed 003 comparison)
#   scripts/run.sh ARGS...    -> bnlab ARGS...
# Set-up and build run in the repository; bnlab runs in the caller's directory, so relative
# paths in ARGS mean what they say (the default run writes out/compare in the repository).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
(cd "$repo" && bash scripts/setup.sh && bash scripts/build.sh)
if [[ $# -gt 0 ]]; then
  exec "$repo/build/bnlab" "$@"
fi
cd "$repo"
./build/bnlab demo
./build/bnlab compare --out out/compare
