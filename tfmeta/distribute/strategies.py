"""Named `tf.distribute` strategies for meta-training: default, mirrored, multi-worker."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import tensorflow as tf

STRATEGY_NAMES = ("default", "mirrored", "multi_worker")


def strategy_from_name(name: str, devices: Sequence[str] | None = None) -> tf.distribute.Strategy:
    """Returns the `tf.distribute.Strategy` called `name`.

    - `"default"`: TensorFlow's default strategy (one device, no distribution).
    - `"mirrored"`: `tf.distribute.MirroredStrategy` over `devices`, by default
      every logical GPU of this machine, else every logical CPU device (one
      CPU unless `tf.config.set_logical_device_configuration` split it).
    - `"multi_worker"`: `tf.distribute.MultiWorkerMirroredStrategy` over the
      cluster that the `TF_CONFIG` environment variable describes (every GPU
      of every worker, else one CPU per worker); without `TF_CONFIG` it is a
      single worker. Create it at program start, before TensorFlow runs any
      operation, and run the same program on every worker.

    Build and compile the learner inside `strategy.scope()`; `fit` then splits
    each meta-batch across the replicas and all-reduces the meta-gradients,
    giving the update of one device on the whole meta-batch.

    Args:
        name: one of `"default"`, `"mirrored"`, `"multi_worker"`.
        devices: for `"mirrored"` only, the devices to mirror on (e.g.
            `["/gpu:0", "/gpu:1"]`).

    Returns:
        The strategy.

    Raises:
        ValueError: for an unknown `name`, `devices` with a strategy other
            than `"mirrored"`, or a `TF_CONFIG` that is not a cluster
            description.

    Example:
    >>> import keras, tfmeta
    >>> strategy = strategy_from_name("default")
    >>> with strategy.scope():
    ...     learner = tfmeta.MAML(tfmeta.backbones.mlp())
    ...     learner.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    """
    if name not in STRATEGY_NAMES:
        raise ValueError(
            f"Invalid value for argument `name`: expected one of {STRATEGY_NAMES}. "
            f"Received: name={name!r}"
        )
    if devices is not None and name != "mirrored":
        raise ValueError(
            "Invalid value for argument `devices`: expected None unless name='mirrored' "
            f"(other strategies choose their devices). Received: devices={devices!r} with "
            f"name={name!r}"
        )
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if devices is None:
            devices = [d.name for d in tf.config.list_logical_devices("GPU")]
            devices = devices or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=list(devices))
    check_tf_config()
    return tf.distribute.MultiWorkerMirroredStrategy()


def check_tf_config(environ: dict[str, str] | None = None) -> dict | None:
    """Parses and checks the `TF_CONFIG` environment variable of a multi-worker run.

    Every worker runs the same program with its own `TF_CONFIG`, e.g.
    `{"cluster": {"worker": ["host1:12345", "host2:12345"]},
    "task": {"type": "worker", "index": 0}}` on the first machine and
    `"index": 1` on the second.

    Args:
        environ: the environment to read (default: `os.environ`).

    Returns:
        The parsed `TF_CONFIG`, or None when it is not set.

    Raises:
        ValueError: if `TF_CONFIG` is not JSON with a `cluster` of host:port
            lists and a `task` whose `type` and `index` name one of them.

    Example:
    >>> check_tf_config({})  # No TF_CONFIG: a single worker.
    """
    environ = os.environ if environ is None else environ
    text = environ.get("TF_CONFIG")
    if not text:
        return None
    expected = (
        'JSON such as {"cluster": {"worker": ["host1:port", "host2:port"]}, '
        '"task": {"type": "worker", "index": 0}}'
    )
    try:
        config = json.loads(text)
    except json.JSONDecodeError:
        config = None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    valid = (
        isinstance(cluster, dict)
        and cluster
        and all(isinstance(hosts, list) and hosts for hosts in cluster.values())
        and isinstance(task, dict)
        and task.get("type") in cluster
        and isinstance(task.get("index"), int)
        and 0 <= task["index"] < len(cluster[task["type"]])
    )
    if not valid:
        raise ValueError(
            f"Invalid value for the environment variable `TF_CONFIG`: expected {expected}, "
            f"with the task among the cluster's. Received: TF_CONFIG={text!r}"
        )
    return config


def is_chief(strategy: tf.distribute.Strategy | None = None) -> bool:
    """Whether this process is the chief of its cluster (the one that writes files).

    The chief is the task of type `"chief"`, else worker 0. A process that is
    not part of a multi-worker cluster is its own chief.

    Args:
        strategy: a `tf.distribute.Strategy`; default: the current one.

    Returns:
        True on the chief.

    Example:
    >>> is_chief()
    True
    """
    strategy = strategy or tf.distribute.get_strategy()
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return True
    cluster = resolver.cluster_spec().as_dict()
    task_type, task_id = resolver.task_type, resolver.task_id
    if not cluster or task_type is None:
        return True
    if "chief" in cluster:
        return task_type == "chief"
    return task_type == "worker" and int(task_id or 0) == 0


def check_jit_compile(jit_compile: bool | str, strategy: tf.distribute.Strategy | None = None):
    """Rejects `jit_compile=True` where Keras cannot XLA-compile the distributed step.

    Keras compiles the whole step, all-reduce included, into one XLA program.
    That fails under `MirroredStrategy` over several devices (the program runs
    on one device and cannot reach the others' variables) and, on CPU, under
    `MultiWorkerMirroredStrategy` (XLA has no CPU collectives). Keras' default
    `jit_compile="auto"` already turns XLA off under `tf.distribute`.

    Args:
        jit_compile: the value meant for `compile(jit_compile=...)`.
        strategy: a `tf.distribute.Strategy`; default: the current one.

    Raises:
        ValueError: for `jit_compile=True` in those two cases.

    Example:
    >>> check_jit_compile(True, strategy_from_name("default"))
    """
    if jit_compile is not True:
        return
    strategy = strategy or tf.distribute.get_strategy()
    try:
        local_devices = len(strategy.extended.worker_devices)
    except RuntimeError:  # The default strategy has no device list: one device.
        local_devices = 1
    cpu_cluster = (
        isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        and strategy.extended._in_multi_worker_mode()
        and not tf.config.list_logical_devices("GPU")
    )
    if local_devices > 1 or cpu_cluster:
        where = (f"{local_devices} devices of one machine" if local_devices > 1
                 else "several CPU workers")
        raise ValueError(
            "Invalid value for argument `jit_compile`: XLA cannot compile a training step "
            f"that all-reduces across {where}. Use jit_compile='auto' (Keras then turns XLA "
            f"off under tf.distribute) or False. Received: jit_compile=True with "
            f"{type(strategy).__name__}"
        )
