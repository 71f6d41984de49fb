"""Non-episodic `(x, y)` batches over a split's classes, for pre-training baselines."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import tensorflow as tf

from tfmeta.data.arguments import check_int_in_range, invalid_value
from tfmeta.data.episodes import with_data_sharding
from tfmeta.data.registry import get_dataset


def batches(
    dataset: str,
    split: str = "train",
    batch_size: int = 64,
    seed: int = 0,
    data_dir: str | os.PathLike[str] | None = None,
    **options: Any,
) -> tf.data.Dataset:
    """Endless shuffled batches `(x, y)` of every example of a split's classes.

    What a classifier is pre-trained on before it is evaluated on episodes (Baseline and
    Baseline++, Chen et al., 2019; Meta-Baseline, Chen et al., 2021): `x` `[batch_size,
    *example_shape]` float32 (the same values as the dataset's episodes), `y`
    `[batch_size]` int32, the class's index in the split (`0..C-1`, classes in the order of
    the split). Each pass over the split visits every example once, in an order reshuffled
    every pass from `seed`.

    Args:
        dataset: A registered dataset name (`tfmeta.data.list_datasets()`) whose spec
            provides `classes` (e.g. "omniglot").
        split: The split whose classes are read ("train" for pre-training).
        batch_size: Examples per batch.
        seed: Seed of the order.
        data_dir: The data root (default: `$TFMETA_DATA_DIR`).
        **options: The dataset's options (e.g. `image_size`, `scheme` for Omniglot).

    Returns:
        An endless `tf.data.Dataset` of `(x, y)`, static shapes.

    Raises:
        ValueError: For a bad argument, or a dataset without classes (e.g. "sinusoid").

    Example:
    >>> data = batches("omniglot", "train", batch_size=32)  # doctest: +SKIP
    >>> x, y = next(iter(data))  # doctest: +SKIP
    >>> x.shape, y.shape  # doctest: +SKIP
    (TensorShape([32, 28, 28, 1]), TensorShape([32]))
    """
    spec = get_dataset(dataset)
    if spec.classes is None:
        raise invalid_value("dataset", "a dataset with classes (classification)", dataset)
    batch_size = check_int_in_range("batch_size", batch_size)
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool):
        raise invalid_value("seed", "an integer", seed)
    spec.check_options(options)
    classes = spec.classes(split, data_dir, **options)
    sizes = np.asarray(classes.sizes, dtype=np.int64)
    labels = np.repeat(np.arange(len(sizes), dtype=np.int32), sizes)
    rows = np.concatenate([np.arange(o, o + n) for o, n in zip(classes.offsets, sizes)])
    total = len(rows)
    batch_size = check_int_in_range("batch_size", batch_size, high=total,
                                    reason=f"the examples of split {split!r}")
    examples = tf.convert_to_tensor(classes.examples)
    rows, labels = tf.constant(rows, tf.int64), tf.constant(labels)
    scale = classes.scale

    def read(positions: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        x = tf.cast(tf.gather(examples, tf.gather(rows, positions)), tf.float32)
        if scale is not None:
            x = x * tf.constant(scale, tf.float32)
        return x, tf.gather(labels, positions)

    order = tf.data.Dataset.range(total).shuffle(total, seed=int(seed),
                                                 reshuffle_each_iteration=True)
    data = order.repeat().batch(batch_size, drop_remainder=True)
    data = data.map(read, num_parallel_calls=tf.data.AUTOTUNE)
    return with_data_sharding(data.prefetch(tf.data.AUTOTUNE))
