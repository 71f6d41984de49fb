"""Shared pieces of the benchmarks: random Omniglot-shaped episodes and the workloads."""

import dataclasses
import os
import platform
import subprocess
import warnings

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@dataclasses.dataclass(frozen=True)
class Workload:
    """One meta-training configuration: algorithm and episode shape."""

    name: str
    algo: str  # maml | fomaml | reptile | protonet
    ways: int = 5
    shots: int = 1
    queries: int = 15  # per class
    meta_batch: int = 8
    inner_steps: int = 1
    inner_lr: float = 0.4
    size: int = 28
    filters: int = 64
    channels: int = 1
    backbone: str = "conv4"  # conv4 | resnet12

    @property
    def torch_algo(self) -> str | None:
        """The `--algo` of the PyTorch peer, or None when it has no such workload."""
        return self.algo if self.algo in ("maml", "fomaml", "protonet") else None

    def torch_flags(self) -> list[str]:
        return [
            f"--algo={self.torch_algo}", f"--ways={self.ways}", f"--shots={self.shots}",
            f"--queries={self.queries}", f"--meta_batch={self.meta_batch}",
            f"--inner_steps={self.inner_steps}", f"--inner_lr={self.inner_lr}",
            f"--size={self.size}", f"--filters={self.filters}", f"--channels={self.channels}",
            # Only when needed, so that ../shared/bench/torch_ref.py runs the conv4 workloads.
            *([f"--backbone={self.backbone}"] if self.backbone != "conv4" else []),
        ]


WORKLOADS = {
    w.name: w
    for w in (
        Workload("maml", "maml"),
        Workload("fomaml", "fomaml"),
        Workload("reptile", "reptile", inner_steps=5, inner_lr=0.1),
        Workload("protonet", "protonet"),
        Workload("maml20", "maml", ways=20, meta_batch=16, inner_steps=5, inner_lr=0.1),
        # The MAML paper's meta-batch for 5-way Omniglot.
        Workload("maml32", "maml", meta_batch=32),
        Workload("fomaml32", "fomaml", meta_batch=32),
        Workload("protonet32", "protonet", meta_batch=32),
        # Tiny ImageNet's shape (64x64 RGB); MAML with the MAML paper's mini-ImageNet
        # meta-batch of 4 and 5 inner steps at 0.01.
        Workload("protonet64", "protonet", size=64, channels=3),
        Workload("maml64", "maml", size=64, channels=3, meta_batch=4, inner_steps=5,
                 inner_lr=0.01),
        Workload("protonet_resnet12", "protonet", size=64, channels=3, meta_batch=1,
                 backbone="resnet12"),
    )
}


def workload_names(comma_separated: str) -> list[str]:
    """The workload names of a `--workloads` flag; exits with one line on an unknown one."""
    names = [n.strip() for n in comma_separated.split(",") if n.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        raise SystemExit(f"unknown workloads {unknown}; expected names among {sorted(WORKLOADS)}")
    return names


def random_episodes(workload: Workload, count: int = 4, seed: int = 0):
    """`count` random meta-batches of the episode contract, as NumPy arrays."""
    rng = np.random.default_rng(seed)
    b, n, k, q = workload.meta_batch, workload.ways, workload.shots, workload.queries
    shape = (workload.size, workload.size, workload.channels)
    support_y = np.tile(np.repeat(np.arange(n), k), (count, b, 1)).astype("int32")
    query_y = np.tile(np.repeat(np.arange(n), q), (count, b, 1)).astype("int32")
    inputs = {
        "support_x": rng.normal(size=(count, b, n * k, *shape)).astype("float32"),
        "support_y": support_y,
        "query_x": rng.normal(size=(count, b, n * q, *shape)).astype("float32"),
    }
    return inputs, query_y


def build_learner(workload: Workload, jit_compile: bool = False, policy: str | None = None,
                  steps_per_execution: int = 1, keras_batch_norm: bool = False,
                  **learner_kwargs):
    """A compiled tfmeta learner for `workload` (conv4 backbone, Adam 1e-3).

    `keras_batch_norm=True` builds `keras_bn_conv4` instead of tfmeta's conv4.
    """
    import keras

    import tfmeta
    from tfmeta.backbones import conv4, resnet12

    keras.utils.set_random_seed(0)
    previous = keras.mixed_precision.global_policy()
    if policy is not None:
        keras.mixed_precision.set_global_policy(policy)
    try:
        shape = (workload.size, workload.size, workload.channels)
        if workload.backbone == "resnet12":
            if keras_batch_norm:
                raise ValueError("keras_batch_norm=True applies to conv4 workloads only")

            def backbone(shape, filters, num_classes=None):
                del filters  # ResNet-12 has its own widths.
                return resnet12(shape, num_classes=num_classes)
        else:
            backbone = keras_bn_conv4 if keras_batch_norm else conv4
        with warnings.catch_warnings():
            # keras_bn_conv4's batch norm: its second-order inexactness and its fusing are
            # known; only the speed matters here.
            warnings.filterwarnings("ignore", message="Layer .* is a keras.layers.Batch")
            warnings.filterwarnings("ignore", message=".* run as tfmeta.layers.BatchNorm")
            if workload.algo == "protonet":
                learner = tfmeta.ProtoNet(backbone(shape, workload.filters), ways=workload.ways,
                                          **learner_kwargs)
            else:
                model = backbone(shape, workload.filters, num_classes=workload.ways)
                cls = tfmeta.Reptile if workload.algo == "reptile" else tfmeta.MAML
                kwargs = dict(inner_steps=workload.inner_steps,
                              inner_learning_rate=workload.inner_lr, **learner_kwargs)
                if workload.algo == "fomaml":
                    kwargs["first_order"] = True
                learner = cls(model, **kwargs)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    learner.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
    return learner


def keras_bn_conv4(input_shape=(28, 28, 1), filters=64, num_classes=None):
    """conv4 as tfmeta built it before its own batch norm layer (for comparison).

    Same layers and momentum as `tfmeta.backbones.conv4`, but Keras' batch norm
    (unfused on TensorFlow, and only first-order exact, see
    `tfmeta.layers.BatchNormalization`).
    """
    import keras

    inputs = keras.Input(shape=input_shape)
    x = inputs
    for _ in range(4):
        x = keras.layers.Conv2D(filters, 3, padding="same")(x)
        x = keras.layers.BatchNormalization(momentum=0.9)(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    if num_classes is not None:
        x = keras.layers.Dense(num_classes)(x)
    return keras.Model(inputs, x, name="keras_bn_conv4")


def cpu_model(default: str) -> str:
    """`lscpu`'s model name, else `default`."""
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return default


# CPU flags that decide which kernels oneDNN (and PyTorch) can use.
SPEED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")


def cpu_flags() -> list[str]:
    """Those of `SPEED_FLAGS` that /proc/cpuinfo lists (empty where it cannot be read)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    present = set(line.split(":", 1)[1].split())
                    return [flag for flag in SPEED_FLAGS if flag in present]
    except OSError:
        pass
    return []


def machine_description() -> str:
    """CPU model, flags, core count and library versions, for the results table."""
    import tensorflow as tf

    model = cpu_model(platform.processor() or "unknown")
    flags = ",".join(cpu_flags()) or "unknown"
    return (f"cpu={model!r} flags={flags} cores={os.cpu_count()} "
            f"tensorflow={tf.__version__}")
