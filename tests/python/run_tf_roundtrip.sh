#!/usr/bin/env bash
# Opt-in (CTest label "slow"): the DCT-Net converter against TensorFlow itself. Keeps
# tensorflow-cpu in its own virtual environment (reusing the system torch/numpy), created once.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv=${LIMN_TF_VENV:-$HOME/.cache/limn/tf-venv}
[ -x "$venv/bin/python" ] || python3 -m venv --system-site-packages "$venv"
"$venv/bin/python" -c 'import tensorflow' 2>/dev/null || "$venv/bin/python" -m pip install --quiet tensorflow-cpu
LIMN_TF_TESTS=1 PYTHONPATH="$root/models" "$venv/bin/python" -m pytest -q -p no:cacheprovider \
  "$root/tests/python/test_convert_dctnet.py"
