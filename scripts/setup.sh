#!/usr/bin/env bash
# Installs every Debian package that bnlab's build, tests and main job need.
# Idempotent, non-interactive, runs as root (or through sudo when available).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libgtest-dev libgmock-dev libbenchmark-dev
  libdnnl-dev libopenblas-openmp-dev libcli11-dev libfmt-dev zlib1g-dev
  dataset-fashion-mnist
  python3 python3-numpy python3-torch
  gnuplot-nox fonts-liberation chromium
  clang libclang-rt-14-dev libomp-14-dev
)
if [[ "${BNLAB_SETUP_EXTRA:-}" != "" ]]; then
  read -r -a extra <<<"${BNLAB_SETUP_EXTRA}"
  packages+=("${extra[@]}")
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

as_root=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then as_root=(sudo); else
    echo "setup: missing packages (${missing[*]}) and not root; run this script as root" >&2
    exit 2
  fi
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
