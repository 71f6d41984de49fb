"""Sinusoid regression tasks (Finn et al. 2017): y = A sin(x - phase)."""

from __future__ import annotations

import math

import tensorflow as tf

from tfmeta.data.arguments import (
    check_element_size,
    check_int_in_range,
    check_seed,
    invalid_value,
)
from tfmeta.data.episodes import with_data_sharding
from tfmeta.data.registry import DatasetSpec, register

_ALGORITHM = "philox"

# Sinusoid tasks have no class split: each split is its own stream of tasks.
SPLIT_SEEDS = {"train": 0, "validation": 1_000_000_007, "test": 2_000_000_011}


def sinusoid(
    shots: int = 10,
    queries: int = 10,
    meta_batch_size: int = 25,
    seed: int = 0,
    *,
    amplitude_range: tuple[float, float] = (0.1, 5.0),
    phase_range: tuple[float, float] = (0.0, math.pi),
    input_range: tuple[float, float] = (-5.0, 5.0),
    deterministic: bool = True,
) -> tf.data.Dataset:
    """Endless meta-batches of sinusoid regression tasks, as in the MAML paper.

    Each task draws an amplitude `A ~ U[0.1, 5.0]` and a phase `p ~ U[0, pi]`, then
    `shots + queries` inputs `x ~ U[-5, 5]` with targets `y = A * sin(x - p)`. Each element
    is `(inputs, query_y)`: `inputs["support_x"]` and `inputs["support_y"]` `[B, K, 1]`,
    `inputs["query_x"]` and `query_y` `[B, Q, 1]`, all float32 with static shapes. Batch
    `i` depends only on `(seed, i)` (stateless random ops in a parallel `map`).

    Args:
        shots: Support points per task, K.
        queries: Query points per task, Q.
        meta_batch_size: Tasks per element, B.
        seed: Integer seed of the task stream.
        amplitude_range: `[low, high)` of the amplitude.
        phase_range: `[low, high)` of the phase.
        input_range: `[low, high)` of the inputs x.
        deterministic: Whether the parallel `map` keeps element order.

    Returns:
        An endless `tf.data.Dataset` of meta-batches.

    Raises:
        ValueError: For a non-positive count, a non-integer seed or an empty range.

    Example:
    >>> inputs, query_y = next(iter(sinusoid(shots=5, queries=10, meta_batch_size=4)))
    >>> inputs["support_x"].shape, inputs["support_y"].shape, query_y.shape
    (TensorShape([4, 5, 1]), TensorShape([4, 5, 1]), TensorShape([4, 10, 1]))
    """
    shots = check_int_in_range("shots", shots)
    queries = check_int_in_range("queries", queries)
    meta_batch_size = check_int_in_range("meta_batch_size", meta_batch_size)
    seed = check_seed(seed)
    # x and y of every point, and the two slices of each.
    check_element_size(meta_batch_size * (shots + queries) * 4 * 4,
                       {"meta_batch_size": meta_batch_size, "shots": shots, "queries": queries})
    ranges = {
        "amplitude_range": _check_range("amplitude_range", amplitude_range),
        "phase_range": _check_range("phase_range", phase_range),
        "input_range": _check_range("input_range", input_range),
    }
    seed = int(seed)

    def sample(index: tf.Tensor) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
        key = tf.stack([tf.constant(seed, tf.int64), tf.cast(index, tf.int64)])
        amplitude_key, phase_key, input_key = tf.unstack(
            tf.random.experimental.stateless_split(key, num=3, alg=_ALGORITHM)
        )
        b, points = meta_batch_size, shots + queries
        amplitude = _uniform([b, 1, 1], amplitude_key, ranges["amplitude_range"])
        phase = _uniform([b, 1, 1], phase_key, ranges["phase_range"])
        x = _uniform([b, points, 1], input_key, ranges["input_range"])
        y = amplitude * tf.sin(x - phase)
        inputs = {"support_x": x[:, :shots], "support_y": y[:, :shots], "query_x": x[:, shots:]}
        return inputs, y[:, shots:]

    dataset = tf.data.Dataset.counter().map(
        sample, num_parallel_calls=tf.data.AUTOTUNE, deterministic=bool(deterministic)
    )
    return with_data_sharding(dataset.prefetch(tf.data.AUTOTUNE))


def _uniform(shape: list[int], key: tf.Tensor, bounds: tuple[float, float]) -> tf.Tensor:
    low, high = bounds
    return tf.random.stateless_uniform(shape, key, minval=low, maxval=high, alg=_ALGORITHM)


def _check_range(name: str, value: tuple[float, float]) -> tuple[float, float]:
    try:
        low, high = (float(bound) for bound in value)
    except (TypeError, ValueError):
        raise invalid_value(name, "a pair (low, high) of finite numbers with low < high",
                            value) from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise invalid_value(name, "a pair (low, high) of finite numbers with low < high", value)
    return low, high


def _build_split(split, ways, shots, queries, meta_batch_size, seed, data_dir):
    """The registry's entry: split names pick independent task streams; `ways` is unused."""
    del ways, data_dir  # Regression tasks have no classes and no files.
    if split not in SPLIT_SEEDS:
        raise invalid_value("split", "one of " + ", ".join(SPLIT_SEEDS), split)
    return sinusoid(shots=shots, queries=queries, meta_batch_size=meta_batch_size,
                    seed=seed + SPLIT_SEEDS[split])


SPEC = register(
    DatasetSpec(
        name="sinusoid",
        build=_build_split,
        task="regression",
        example="vector",
        example_shape=lambda options: (1,),
        description="Sine-wave regression tasks y = A sin(x - phase) (Finn et al. 2017).",
    )
)
