"""Replica arithmetic for meta-training under `tf.distribute`: means, sync, per-replica sizes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf


def num_replicas(strategy: tf.distribute.Strategy | None = None) -> int:
    """The number of replicas that train in sync (1 outside any strategy).

    Args:
        strategy: a `tf.distribute.Strategy`; default: the current one.

    Returns:
        `strategy.num_replicas_in_sync`.

    Example:
    >>> num_replicas()
    1
    """
    strategy = strategy or tf.distribute.get_strategy()
    return int(strategy.num_replicas_in_sync)


def replica_mean(values: Any) -> Any:
    """Averages floating-point tensors over the replicas of the current replica context.

    Call it inside a replica context (a `train_step` under a strategy): every
    replica receives the same mean, as one device computing the mean over the
    whole meta-batch would (the replicas hold equal shares of it). Outside a
    strategy, with one replica, or for non-floating tensors (e.g. random seed
    states, identical on every replica), the values come back unchanged.

    Args:
        values: a tensor or a list of tensors.

    Returns:
        The averaged tensor or list, in the same structure.

    Example:
    >>> float(replica_mean(tf.constant(2.0)))
    2.0
    """
    single = not isinstance(values, (list, tuple))
    values = [values] if single else list(values)
    context = tf.distribute.get_replica_context()
    floating = [i for i, value in enumerate(values) if tf.as_dtype(value.dtype).is_floating]
    if context is not None and context.num_replicas_in_sync > 1 and floating:
        reduced = context.all_reduce(tf.distribute.ReduceOp.MEAN, [values[i] for i in floating])
        for i, value in zip(floating, reduced):
            values[i] = value
    return values[0] if single else values


def sync_replica_variables(variables: Sequence[Any]) -> None:
    """Sets each replica's copy of unaggregated float variables to their mean over replicas.

    Under `MirroredStrategy`, a Keras variable created with `aggregation="none"`
    (e.g. batch normalisation's moving statistics) that a layer assigns inside
    the train step is updated on each replica's own copy only, so the copies
    drift apart. This averages them after the step (the aggregation that
    `tf.keras` 2 gave batch norm statistics). It does nothing outside a
    replica context or with one replica.

    Args:
        variables: Keras variables, e.g. `model.non_trainable_variables`.

    Example:
    >>> import keras
    >>> layer = keras.layers.BatchNormalization()
    >>> layer.build((None, 3))
    >>> sync_replica_variables(layer.non_trainable_variables)
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return
    unsynced = [
        variable
        for variable in variables
        if getattr(variable, "aggregation", "none") in ("none", None)
        and tf.as_dtype(variable.dtype).is_floating
    ]
    if not unsynced:
        return
    means = replica_mean([tf.convert_to_tensor(variable) for variable in unsynced])
    for variable, mean in zip(unsynced, means):
        variable.assign(mean)


def per_replica_meta_batch_size(
    meta_batch_size: int, strategy: tf.distribute.Strategy | None = None
) -> int:
    """The tasks each replica trains on per step; checks that they split evenly.

    Under a strategy, Keras splits each meta-batch of `meta_batch_size` tasks
    across the replicas. An even split keeps the per-replica meta-batch static
    (needed to unroll or XLA-compile the tasks) and makes the update equal to
    one device's on the whole meta-batch.

    Args:
        meta_batch_size: tasks per optimizer step, over all replicas.
        strategy: a `tf.distribute.Strategy`; default: the current one.

    Returns:
        `meta_batch_size // num_replicas`.

    Raises:
        ValueError: if `meta_batch_size` is not a positive multiple of the
            number of replicas.

    Example:
    >>> per_replica_meta_batch_size(32)
    32
    """
    replicas = num_replicas(strategy)
    if (
        isinstance(meta_batch_size, bool)
        or not isinstance(meta_batch_size, int)
        or meta_batch_size < 1
        or meta_batch_size % replicas
    ):
        raise ValueError(
            "Invalid value for argument `meta_batch_size`: expected a positive multiple of the "
            f"number of replicas ({replicas}), so that every replica trains on the same number "
            f"of tasks. Received: meta_batch_size={meta_batch_size!r}"
        )
    return meta_batch_size // replicas


def first_local_replica(strategy: tf.distribute.Strategy, values: Any) -> Any:
    """The first local replica's part of each distributed value in a nested structure.

    Non-distributed values (and None) come back unchanged.

    Args:
        strategy: the `tf.distribute.Strategy` that distributed `values`.
        values: a nested structure, e.g. one element of a distributed dataset.

    Returns:
        The same structure of plain tensors.

    Example:
    >>> batch = first_local_replica(tf.distribute.get_strategy(), {"x": tf.constant(1.0)})
    >>> float(batch["x"])
    1.0
    """

    def local(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    return tf.nest.map_structure(local, values)


def in_multi_worker_mode(strategy: tf.distribute.Strategy | None = None) -> bool:
    """Whether `strategy` is a `MultiWorkerMirroredStrategy` over more than one worker.

    Args:
        strategy: a `tf.distribute.Strategy`; default: the current one.

    Returns:
        True for a multi-worker cluster.

    Example:
    >>> in_multi_worker_mode()
    False
    """
    strategy = strategy or tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    return bool(strategy.extended._in_multi_worker_mode())


def multi_worker_logs(logs: dict[str, Any]) -> dict[str, Any]:
    """Makes a step's logs survive Keras' multi-worker reduction.

    Under a multi-worker strategy, Keras 3 merges each log value of a train or
    test step with `strategy.reduce("MEAN", value, axis=0)`, which fails for
    scalars (keras-team/keras#20585). Giving each scalar a length-1 axis makes
    that reduction their mean over the workers: the value itself, since metric
    results are already synchronised across replicas. Elsewhere the logs come
    back unchanged.

    Args:
        logs: the dict a `train_step` or `test_step` returns (values may be
            nested dicts).

    Returns:
        The logs to return from the step.

    Example:
    >>> multi_worker_logs({"loss": tf.constant(1.0)})["loss"].shape
    TensorShape([])
    """
    if not in_multi_worker_mode():
        return logs

    def expand(value):
        value = tf.convert_to_tensor(value)
        return tf.reshape(value, [1]) if value.shape.rank == 0 else value

    # Values may be dicts (e.g. an episodic metric's mean and confidence interval).
    return tf.nest.map_structure(expand, logs)
