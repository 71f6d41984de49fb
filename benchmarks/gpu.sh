#!/usr/bin/env bash
# Meta-training throughput on a GPU: tfmeta with and without XLA against the PyTorch peer.
#
# Run from the repository root on a machine with an NVIDIA GPU:
#     bash benchmarks/gpu.sh            # about 5 minutes after the installs
# Where TensorFlow is missing and pip can reach a registry, it makes two virtual environments
# under ${GPU_BENCH_DIR:-/tmp/tfmeta-gpu} (TensorFlow with CUDA plus tfmeta; PyTorch, unless
# TORCH_PYTHON names a Python that has a CUDA torch), then prints `benchmarks/throughput.py`
# lines for each learner (MAML, first-order MAML, Reptile, ProtoNet at meta-batch 8; MAML and
# ProtoNet at 32; the 64x64x3 workloads), plain and jit_compile=True, with the peer on the
# same GPU. Each step is bounded by `timeout`, so the whole script ends within about 6
# minutes of measuring.
#
# On a machine without network access and without TensorFlow (the lent H200 machines: their
# image holds PyTorch but not TensorFlow, and the 573 MB TensorFlow wheel plus its CUDA 12
# libraries cannot be carried there), tfmeta cannot run: the script says so and times the
# PyTorch peer alone on the same workloads, so that the GPU figure tfmeta must reach is known.
set -euo pipefail

ROOT=${GPU_BENCH_DIR:-/tmp/tfmeta-gpu}
SECONDS_PER_WINDOW=${SECONDS_PER_WINDOW:-8}
PEER_WORKLOADS=maml,fomaml,protonet,maml32,fomaml32,protonet32,protonet64,maml64,protonet_resnet12
mkdir -p "$ROOT"

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

online() { timeout 10 python3 -m pip download --no-deps -q -d "$ROOT/probe" six >/dev/null 2>&1; }

peer_only() {
  echo "# tfmeta cannot run here: $1. Timing the PyTorch peer alone (tasks/s on the GPU)."
  python3 - "$PEER_WORKLOADS" "$SECONDS_PER_WINDOW" <<'EOF'
import subprocess, sys, time
sys.path.insert(0, "benchmarks")
from _common import WORKLOADS  # no TensorFlow needed

import torch
print(f"# torch {torch.__version__}, {torch.cuda.get_device_name(0)}", flush=True)
for name in sys.argv[1].split(","):
    flags = WORKLOADS[name].torch_flags()
    for device in ("cuda",):
        command = [sys.executable, "benchmarks/torch_peer.py", *flags, "--device", device,
                   "--seconds", sys.argv[2]]
        start = time.perf_counter()
        try:
            out = subprocess.run(command, capture_output=True, text=True, timeout=60,
                                 check=True).stdout.strip().splitlines()[-1]
        except (subprocess.SubprocessError, IndexError) as error:
            out = f"failed: {error}"
        print(f"{name:18s} {device:4s} {out}  ({time.perf_counter() - start:.0f}s)", flush=True)
EOF
}

if ! python3 -c "import tensorflow" 2>/dev/null && [ ! -x "$ROOT/tf/bin/python" ]; then
  if ! online; then
    peer_only "TensorFlow is not installed and no package registry can be reached"
    exit 0
  fi
  python3 -m venv "$ROOT/tf"
  "$ROOT/tf/bin/pip" install -q "tensorflow[and-cuda]==2.21.*" -e .
fi
TF_PYTHON=$([ -x "$ROOT/tf/bin/python" ] && echo "$ROOT/tf/bin/python" || command -v python3)
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

"$TF_PYTHON" -c "import tensorflow as tf; print('tensorflow', tf.__version__, \
tf.config.list_physical_devices('GPU'))"

run() {
  timeout 150 "$TF_PYTHON" benchmarks/throughput.py --xla --torch \
    --torch_python "$TORCH_PYTHON" --torch_device cuda --seconds "$SECONDS_PER_WINDOW" \
    --repeats 1 --workloads "$1" || echo "# $1: timed out or failed (exit $?)"
}
run maml,fomaml,reptile,protonet
run maml32,protonet32
run protonet64,maml64,protonet_resnet12
