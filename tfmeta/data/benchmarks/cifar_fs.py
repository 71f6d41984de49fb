"""CIFAR-FS (Bertinetto et al. 2019): CIFAR-100 with a 64/16/20 class split."""

from __future__ import annotations

import os
from typing import Any

import tensorflow as tf

from tfmeta.data.benchmarks.cifar100_source import cifar100_episodes
from tfmeta.data.registry import DatasetSpec, register

PathLike = str | os.PathLike[str]


def cifar_fs(
    split: str = "train",
    ways: int = 5,
    shots: int = 1,
    queries: int = 15,
    meta_batch_size: int = 4,
    image_size: int = 32,
    seed: int = 0,
    data_dir: PathLike | None = None,
    *,
    cache_dir: PathLike | None = None,
    deterministic: bool = True,
    **variable: Any,
) -> tf.data.Dataset:
    """Endless N-way K-shot episodes of CIFAR-FS.

    CIFAR-100's 60,000 images (training and test pooled, 600 per class) split by class into
    64 / 16 / 20 classes (the lists are in `tfmeta/data/benchmarks/class_lists/cifar_fs/`).
    Each element is `(inputs, query_y)`: `inputs["support_x"]` `[B, N*K, H, H, 3]` float32 RGB in
    [0, 1] (pixel / 255), `inputs["support_y"]` `[B, N*K]` int32 in `0..N-1`, `inputs["query_x"]`
    `[B, N*Q, H, H, 3]`, `query_y` `[B, N*Q]` int32, `H = image_size`.

    CIFAR-100 comes from TensorFlow Datasets ("cifar100"): from
    `<data_dir>/tensorflow_datasets/` if that folder exists, else from TFDS's data dir,
    downloaded by TFDS on first use where a network exists.

    Args:
        split: "train", "validation" (alias "val") or "test".
        ways: Classes per episode, N.
        shots: Support images per class, K.
        queries: Query images per class, Q.
        meta_batch_size: Episodes per element, B.
        image_size: Side of the square images (32 is CIFAR's own; others are resized).
        seed: Integer seed of the episode stream.
        data_dir: The tfmeta data root; defaults to `$TFMETA_DATA_DIR`.
        cache_dir: Where decoded images are cached (see `resolve_cache_dir`).
        deterministic: Whether the parallel sampler keeps element order.
        **variable: `max_ways`, `max_support`, `max_queries` of variable episodes (`ways`,
            `shots` or `queries` None; see `tfmeta.data.episodes`).

    Returns:
        An endless `tf.data.Dataset` of meta-batches.

    Raises:
        FileNotFoundError: When CIFAR-100 is neither prepared nor downloadable.
        ValueError: For a bad argument.

    Example:
    >>> dataset = cifar_fs("train", ways=5, shots=1, queries=15)  # doctest: +SKIP
    >>> next(iter(dataset))[0]["support_x"].shape  # doctest: +SKIP
    TensorShape([4, 5, 32, 32, 3])
    """
    return cifar100_episodes("cifar_fs", split, ways, shots, queries, meta_batch_size,
                             image_size, seed, data_dir, cache_dir, deterministic, **variable)


def _build_split(split, ways, shots, queries, meta_batch_size, seed, data_dir, **options):
    return cifar_fs(split, ways=ways, shots=shots, queries=queries,
                    meta_batch_size=meta_batch_size, seed=seed, data_dir=data_dir, **options)


SPEC = register(
    DatasetSpec(
        name="cifar_fs",
        build=_build_split,
        task="classification",
        example="image",
        options=("image_size",),
        example_shape=lambda options: (options.get("image_size", 32),) * 2 + (3,),
        description="CIFAR-FS (Bertinetto et al. 2019): CIFAR-100, 64/16/20 classes, RGB, "
        "through TFDS 'cifar100'.",
    )
)
