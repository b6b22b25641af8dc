#!/usr/bin/env bash
# Optional: the PyPI packages of the Python-side cross-checks that Debian does not package.
#   tensorflow-cpu  Keras's BatchNormalization, LayerNormalization and GroupNormalization, from the
#                   framework seed 003 ran (tests/layers/*_keras_test.cpp, tests/reference/keras_*.py)
# Installed into `python3` on PATH (not Debian's /usr/bin/python3, which keeps python3-torch from
# apt for the PyTorch checks). bnlab itself never needs them; without them those tests skip.
set -euo pipefail
if python3 -c "import tensorflow" > /dev/null 2>&1; then
  echo "setup_python_checks: tensorflow already importable by $(command -v python3)"
  exit 0
fi
python3 -m pip install --quiet tensorflow-cpu
python3 -c "import tensorflow as tf; print('setup_python_checks: tensorflow', tf.__version__)"
