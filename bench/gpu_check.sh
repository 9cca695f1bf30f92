#!/usr/bin/env bash
# The GPU check (bench/README §11): on a machine with an NVIDIA GPU, run the searches of `bench/gpu_check.py` on the GPU
# and on its CPU cores, and print trials per hour, GPU utilisation and memory side by side.
#
#   bash bench/gpu_check.sh [wheel folder, default .whl] [-- arguments for bench/gpu_check.py]
#
# Where Keras, Keras Tuner, MLflow or Hydra are missing (a machine with JAX/PyTorch but no TensorFlow and no package
# index), it first installs the wheels that `bash bench/gpu_wheels.sh` downloaded into the folder, into /tmp/site.
# On a workstation where `pip install -e ".[jax]"` (or plain `-e .`) ran, nothing is installed.
set -uo pipefail
cd "$(dirname "$0")/.."
wheels=${1:-.whl}
shift || true
[ "${1:-}" = "--" ] && shift
if ! python3 -c "import keras, keras_tuner, mlflow, hydra, omegaconf, sqlalchemy" 2>/dev/null; then
  if [ ! -d "$wheels" ]; then
    echo "error: Keras, Keras Tuner, MLflow or Hydra is missing here and there is no wheel folder $wheels:" \
      "run bash bench/gpu_wheels.sh on a machine with a package index and bring the folder" >&2
    exit 2
  fi
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$wheels"/*.whl || exit 2
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1
exec python3 -m bench.gpu_check "$@"
