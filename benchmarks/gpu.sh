#!/usr/bin/env bash
# One call on the GPU machine (Python 3.12, JAX, Flax, Optax, Orbax, PyTorch CUDA, timm and transformers
# preinstalled): installs the carried reference packages, prints the card, then the model and metric
# tables (float32 and bf16), JAX vs PyTorch in the same run. Prepare with benchmarks/prepare_gpu.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
python3 -m pip install -q --no-deps --no-build-isolation --no-compile --target /tmp/site .whl/basicsr-1.4.2.tar.gz
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 benchmarks/models.py --lr 64 --batch 16 --repeats 10 2>&1 | grep -v -i warn
python3 benchmarks/models.py --lr 64 --batch 16 --repeats 10 --dtype bfloat16 2>&1 | grep -v -i warn
python3 benchmarks/metrics.py --batch 8 --size 256 --repeats 20 --random-trunks 2>&1 | grep -v -i warn
