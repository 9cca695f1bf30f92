#!/usr/bin/env bash
# Download here, into a folder (default .whl/, git-ignored), the wheels of this project's dependencies that a GPU machine
# with JAX and PyTorch but no TensorFlow and no package index lacks; bench/gpu_check.sh installs them there.
#
#   bash bench/gpu_wheels.sh [folder] [python version, default 3.12]
#
# Skipped: what bench/gpu_machine_packages.txt says that machine already has (its image's list), and TensorFlow.
# mlflow-skinny (+ SQLAlchemy and Alembic for the sqlite store) instead of mlflow: the full package's UI and server
# are not needed to run a search, and the folder must stay small (checked: under 60 MiB).
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:-.whl}
python_version=${2:-3.12}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# antlr4-python3-runtime (Hydra's parser) is published as a source archive only: build its pure-Python wheel here.
python3 -m pip wheel -q --no-deps -c requirements.lock -w "$work/built" antlr4-python3-runtime
python3 -m pip download -q --only-binary=:all: --python-version "$python_version" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
  -c requirements.lock --find-links "$work/built" -d "$work/all" \
  keras keras-tuner hydra-core hydra-joblib-launcher mlflow-skinny mlflow-tracing sqlalchemy alembic
mkdir -p "$dest"
python3 - "$work/all" "$dest" bench/gpu_machine_packages.txt <<'PY'
import re, shutil, sys
from pathlib import Path

source, dest, listing = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
norm = lambda name: re.sub(r"[-_.]+", "-", name.lower())
present = {norm(line.strip()) for line in listing.read_text().splitlines() if line.strip() and not line.startswith("#")}
kept = 0
for wheel in sorted(source.glob("*.whl")):
    if norm(wheel.name.split("-")[0]) in present:
        continue
    shutil.copy2(wheel, dest / wheel.name)
    kept += wheel.stat().st_size
print(f"{dest}: {len(list(dest.glob('*.whl')))} wheels, {kept / 2**20:.1f} MiB")
if kept > 60 * 2**20:
    sys.exit(f"{dest} holds {kept / 2**20:.1f} MiB: over the 60 MiB a device call may carry")
PY
