"""CUB (Caltech-UCSD Birds-200-2011) with the 100/50/50 class split of Hilliard et al. (2018).

The images come from TensorFlow Datasets ("caltech_birds2011", its training and test images
pooled: 11,788 images, 41 to 60 per class), read from `<root>/tensorflow_datasets/` if that
folder exists, else from TFDS's data dir, and prepared there by TFDS on first use where a
network exists (TFDS's preparation of this dataset also needs OpenCV).
"""

from __future__ import annotations

import os
from typing import Any

import tensorflow as tf

from tfmeta.data.benchmarks.benchmark_splits import check_split, split_classes
from tfmeta.data.benchmarks.class_episodes import check_episode_arguments, class_episodes
from tfmeta.data.benchmarks.tfds_source import load_images, prepared_builder
from tfmeta.data.registry import DatasetSpec, register

TFDS_NAME = "caltech_birds2011"
HELP = (
    "Prepare it where a network is available (with opencv-python installed, which TFDS needs "
    "for it) with `python -c \"import tensorflow_datasets as tfds; "
    "tfds.builder('caltech_birds2011', data_dir='{root}').download_and_prepare()\"` and copy "
    "{root}/caltech_birds2011/ here if that was another machine (or keep it in "
    "<root>/tensorflow_datasets/ of the tfmeta data root)."
)

PathLike = str | os.PathLike[str]


def class_label(name: str) -> int:
    """The TFDS label of a CUB class folder name: its number minus one.

    Example:
    >>> class_label("001.Black_footed_Albatross")
    0
    """
    return int(name.split(".", 1)[0]) - 1


def cub(
    split: str = "train",
    ways: int = 5,
    shots: int = 1,
    queries: int = 15,
    meta_batch_size: int = 4,
    image_size: int = 84,
    seed: int = 0,
    data_dir: PathLike | None = None,
    *,
    cache_dir: PathLike | None = None,
    deterministic: bool = True,
    **variable: Any,
) -> tf.data.Dataset:
    """Endless N-way K-shot episodes of CUB-200-2011 birds (100 / 50 / 50 classes).

    Each element is `(inputs, query_y)`: `inputs["support_x"]` `[B, N*K, H, H, 3]` float32
    RGB in [0, 1] (pixel / 255), `inputs["support_y"]` `[B, N*K]` int32 in `0..N-1`,
    `inputs["query_x"]` `[B, N*Q, H, H, 3]`, `query_y` `[B, N*Q]` int32, `H = image_size`.
    Whole images are resized to `H x H` (bilinear, antialiased; the aspect ratio is not
    kept, and the bounding boxes are not used). The class lists are in
    `tfmeta/data/benchmarks/class_lists/cub/`.

    Args:
        split: "train", "validation" (alias "val") or "test".
        ways: Classes per episode, N.
        shots: Support images per class, K.
        queries: Query images per class, Q (`shots + queries` at most 41, the smallest class).
        meta_batch_size: Episodes per element, B.
        image_size: Side of the square images.
        seed: Integer seed of the episode stream.
        data_dir: The tfmeta data root; defaults to `$TFMETA_DATA_DIR`.
        cache_dir: Where decoded images are cached (see `resolve_cache_dir`).
        deterministic: Whether the parallel sampler keeps element order.
        **variable: `max_ways`, `max_support`, `max_queries` of variable episodes (`ways`,
            `shots` or `queries` None; see `tfmeta.data.episodes`).

    Returns:
        An endless `tf.data.Dataset` of meta-batches.

    Raises:
        FileNotFoundError: When CUB is neither prepared nor downloadable.
        ValueError: For a bad argument.

    Example:
    >>> dataset = cub("train", ways=5, shots=1, queries=15)  # doctest: +SKIP
    >>> next(iter(dataset))[0]["support_x"].shape  # doctest: +SKIP
    TensorShape([4, 5, 84, 84, 3])
    """
    split = check_split(split)
    ways, shots, queries, meta_batch_size, image_size, seed = check_episode_arguments(
        ways, shots, queries, meta_batch_size, image_size, seed
    )
    builder = prepared_builder(TFDS_NAME, data_dir, help_text=HELP)
    data = load_images(builder, ["train", "test"], image_size, cache_dir)
    names = split_classes("cub", split)
    return class_episodes(
        data.images, data.labels, [class_label(name) for name in names], ways=ways,
        shots=shots, queries=queries, meta_batch_size=meta_batch_size, seed=seed, split=split,
        class_names=names, deterministic=deterministic, **variable,
    )


def _build_split(split, ways, shots, queries, meta_batch_size, seed, data_dir, **options):
    return cub(split, ways=ways, shots=shots, queries=queries, meta_batch_size=meta_batch_size,
               seed=seed, data_dir=data_dir, **options)


SPEC = register(
    DatasetSpec(
        name="cub",
        build=_build_split,
        task="classification",
        example="image",
        options=("image_size",),
        example_shape=lambda options: (options.get("image_size", 84),) * 2 + (3,),
        description="CUB-200-2011 birds (Wah et al. 2011), Hilliard et al.'s 100/50/50 classes, "
        "RGB, through TFDS 'caltech_birds2011'.",
    )
)
