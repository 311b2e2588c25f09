#!/usr/bin/env bash
# The GPU check as one command (issue: taskvec on a GPU at the paper's model sizes).
#
#   bench/gpu_check.sh --fetch   # on a machine with PyPI: the wheels the GPU machine lacks, into .whl/ (~22 MB)
#   bench/gpu_check.sh [OUT]     # on the CUDA machine (Python 3.12, torch 2.11, no network): installs them
#                                # into /tmp/site, runs the gpu-marked tests and bench/gpu.py --cli, and
#                                # writes OUT/gpu.json and OUT/gpu.log (OUT defaults to ./gpu-check)
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--fetch" ]; then
  exec python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl transformers==5.23.0 pydantic==2.14.4 pydantic-core==2.50.5 annotated-types typing-inspection \
    typing_extensions==4.16.0 gguf nnsight greenlet websocket-client zstandard peft
fi
out=${1:-gpu-check}
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
timeout 150 python3 -m pytest -q -p no:cacheprovider -m gpu tests/gpu 2>&1 | tail -8
timeout 420 python3 -m bench.gpu --cli --profile --out "$out/gpu.json" 2>&1 | grep -v "Loading weights\|Writing model" | tee "$out/gpu.log"
