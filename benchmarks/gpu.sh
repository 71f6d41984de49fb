#!/usr/bin/env bash
# Meta-training throughput on a GPU: tfmeta with and without XLA against the PyTorch peer.
#
# Run from the repository root on a machine with an NVIDIA GPU and pip access:
#     bash benchmarks/gpu.sh            # about 5 minutes after the installs
# It makes two virtual environments under ${GPU_BENCH_DIR:-/tmp/tfmeta-gpu} (TensorFlow with
# CUDA plus tfmeta; PyTorch, unless TORCH_PYTHON names a Python that has a CUDA torch), then
# prints `benchmarks/throughput.py` lines for each learner (MAML, first-order MAML, Reptile,
# ProtoNet at meta-batch 8; MAML and ProtoNet at 32; the 64x64x3 workloads), plain and
# jit_compile=True, with the peer on the same GPU. Each step is bounded by `timeout`, so the
# whole script ends within about 6 minutes of measuring.
set -euo pipefail

ROOT=${GPU_BENCH_DIR:-/tmp/tfmeta-gpu}
SECONDS_PER_WINDOW=${SECONDS_PER_WINDOW:-8}
mkdir -p "$ROOT"

if [ ! -x "$ROOT/tf/bin/python" ]; then
  python3 -m venv "$ROOT/tf"
  "$ROOT/tf/bin/pip" install -q "tensorflow[and-cuda]==2.21.*" -e .
fi
if [ -z "${TORCH_PYTHON:-}" ]; then
  if python3 -c "import torch, sys; sys.exit(not torch.cuda.is_available())" 2>/dev/null; then
    TORCH_PYTHON=$(command -v python3)
  else
    [ -x "$ROOT/torch/bin/python" ] || {
      python3 -m venv "$ROOT/torch"
      "$ROOT/torch/bin/pip" install -q torch numpy
    }
    TORCH_PYTHON="$ROOT/torch/bin/python"
  fi
fi

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$ROOT/tf/bin/python" -c "import tensorflow as tf; print('tensorflow', tf.__version__, \
tf.config.list_physical_devices('GPU'))"

run() {
  timeout 150 "$ROOT/tf/bin/python" benchmarks/throughput.py --xla --torch \
    --torch_python "$TORCH_PYTHON" --torch_device cuda --seconds "$SECONDS_PER_WINDOW" \
    --repeats 1 --workloads "$1" || echo "# $1: timed out or failed (exit $?)"
}
run maml,fomaml,reptile,protonet
run maml32,protonet32
run protonet64,maml64,protonet_resnet12
