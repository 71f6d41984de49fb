"""CIFAR-100 through TensorFlow Datasets, for the CIFAR-FS and FC100 benchmarks.

Both benchmarks pool CIFAR-100's training and test images (600 per class) and split the 100
classes: CIFAR-FS by class (64/16/20), FC100 by superclass (60/20/20 classes). The TFDS
dataset "cifar100" is read from `<root>/tensorflow_datasets/` if that folder exists, else
from TFDS's data dir, and downloaded there by TFDS on first use where a network exists.
"""

from __future__ import annotations

import os
from typing import Any

import tensorflow as tf

from tfmeta.data.benchmarks.benchmark_splits import check_split, cifar100_classes, split_classes
from tfmeta.data.benchmarks.class_episodes import check_episode_arguments, class_episodes
from tfmeta.data.benchmarks.tfds_source import load_images, prepared_builder

TFDS_NAME = "cifar100"
HELP = (
    "Prepare it where a network is available with `python -c \"import tensorflow_datasets as "
    "tfds; tfds.builder('cifar100', data_dir='{root}').download_and_prepare()\"` and copy "
    "{root}/cifar100/ here if that was another machine (or keep it in "
    "<root>/tensorflow_datasets/ of the tfmeta data root)."
)

PathLike = str | os.PathLike[str]


def fine_label_names(builder: Any) -> tuple[str, ...]:
    """The 100 fine class names in label order, from the prepared data or CIFAR-100's list.

    Data prepared from the CIFAR-100 archive records its `fine_label_names.txt`; where the
    names are only numbers (no names recorded), CIFAR-100's list in
    `tfmeta/data/benchmarks/class_lists/cifar100/classes.txt` is used.

    Raises:
        ValueError: When the recorded names are not CIFAR-100's 100 classes.
    """
    names = tuple(builder.info.features["label"].names)
    canonical = tuple(name for _, name in cifar100_classes())
    if names == tuple(str(index) for index in range(len(canonical))):
        return canonical
    if sorted(names) != sorted(canonical):
        raise ValueError(
            f"TensorFlow Datasets '{builder.name}' in {builder.data_dir} does not have CIFAR-100's "
            f"100 fine classes (its labels are {list(names[:3])}...)."
        )
    return names


def cifar100_episodes(
    benchmark: str,
    split: str,
    ways: int,
    shots: int,
    queries: int,
    meta_batch_size: int,
    image_size: int,
    seed: int,
    data_dir: PathLike | None,
    cache_dir: PathLike | None,
    deterministic: bool,
    **variable: Any,
) -> tf.data.Dataset:
    """Episodes of `benchmark` ("cifar_fs" or "fc100"); see `tfmeta.data.cifar_fs`."""
    split = check_split(split)
    ways, shots, queries, meta_batch_size, image_size, seed = check_episode_arguments(
        ways, shots, queries, meta_batch_size, image_size, seed
    )
    builder = prepared_builder(TFDS_NAME, data_dir, help_text=HELP)
    data = load_images(builder, ["train", "test"], image_size, cache_dir)
    position = {name: index for index, name in enumerate(fine_label_names(builder))}
    names = split_classes(benchmark, split)
    return class_episodes(
        data.images, data.labels, [position[name] for name in names], ways=ways, shots=shots,
        queries=queries, meta_batch_size=meta_batch_size, seed=seed, split=split,
        class_names=names, deterministic=deterministic, **variable,
    )
