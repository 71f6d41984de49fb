"""mini-ImageNet: the episodic dataset entry point, over the `MiniImagenet` TFDS builder.

Where the files go: the images you obtained go in `<root>/mini_imagenet/` (`<root>` is
`data_dir`, else `$TFMETA_DATA_DIR`), as `images/<wnid><number>.jpg` (the common release)
or as class folders `<wnid>/<image>` (see `tfmeta.data.mini_imagenet_builder`). Without a
root, TFDS's own manual folder `<tfds data dir>/downloads/manual/` is read. The first use
prepares the TFDS dataset "mini_imagenet" from them (into `<root>/tensorflow_datasets/` if
that folder exists, else TFDS's data dir; see `tfmeta.data.tfds_source`), then decodes it
once per split and image size into the cache.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import tensorflow as tf

from tfmeta.data.benchmarks.benchmark_splits import check_split
from tfmeta.data.benchmarks.class_episodes import check_episode_arguments, class_episodes
from tfmeta.data.benchmarks.mini_imagenet_builder import MiniImagenet, find_images, wnids
from tfmeta.data.benchmarks.tfds_source import load_images, prepared_builder, tfds_data_dir
from tfmeta.data.data_dir import DATA_DIR_ENV, resolve_data_dir
from tfmeta.data.registry import DatasetSpec, register

FOLDER = "mini_imagenet"

PathLike = str | os.PathLike[str]


def prepared_mini_imagenet(data_dir: PathLike | None = None) -> MiniImagenet:
    """The prepared `MiniImagenet` TFDS builder, prepared from the manual files if needed.

    Args:
        data_dir: The data root holding `mini_imagenet/`; defaults to `$TFMETA_DATA_DIR`.

    Returns:
        The builder, whose `as_dataset(split=...)` gives the images of a split.

    Raises:
        FileNotFoundError: When the dataset is not prepared and the manual files are
            missing or incomplete: one line naming the folder and what belongs there.
        ValueError: For a file of no mini-ImageNet class.

    Example:
    >>> builder = prepared_mini_imagenet("/data")  # doctest: +SKIP
    >>> builder.info.features["label"].num_classes  # doctest: +SKIP
    100
    """
    root = resolve_data_dir(data_dir)
    builder = MiniImagenet(data_dir=tfds_data_dir(data_dir))
    if builder.is_prepared():
        return builder
    import tensorflow_datasets as tfds

    if root is not None:
        manual_dir = root / FOLDER
    else:
        manual_dir = Path(os.fspath(builder.data_dir_root)) / "downloads" / "manual"
    try:
        find_images(manual_dir)
    except FileNotFoundError as error:
        if root is not None:
            raise
        raise FileNotFoundError(
            f"{error} Or set `data_dir` or ${DATA_DIR_ENV} to the folder that holds {FOLDER}/."
        ) from None
    return prepared_builder(
        MiniImagenet,
        data_dir,
        help_text=f"Check the mini-ImageNet files in {manual_dir}.",
        download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(manual_dir)),
    )


def mini_imagenet(
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
    """Endless N-way K-shot episodes of mini-ImageNet (Ravi and Larochelle's class split).

    Each element is `(inputs, query_y)`: `inputs["support_x"]` `[B, N*K, H, H, 3]` float32
    RGB in [0, 1] (pixel / 255), `inputs["support_y"]` `[B, N*K]` int32 labels in `0..N-1`,
    `inputs["query_x"]` `[B, N*Q, H, H, 3]` and `query_y` `[B, N*Q]` int32, with
    `H = image_size`. The splits have 64 / 16 / 20 classes of 600 images (the class lists
    are in `tfmeta/data/benchmarks/class_lists/mini_imagenet/`). Episodes depend only on `seed`.

    Args:
        split: "train", "validation" (alias "val") or "test".
        ways: Classes per episode, N.
        shots: Support images per class, K.
        queries: Query images per class, Q.
        meta_batch_size: Episodes per element, B.
        image_size: Side of the square images (84 is the benchmark's size); images are
            resized bilinearly if they differ.
        seed: Integer seed of the episode stream.
        data_dir: The data root holding `mini_imagenet/` (see the module docstring);
            defaults to `$TFMETA_DATA_DIR`.
        cache_dir: Where decoded images are cached (see `resolve_cache_dir`).
        deterministic: Whether the parallel sampler keeps element order.
        **variable: `max_ways`, `max_support`, `max_queries` of variable episodes (`ways`,
            `shots` or `queries` None; see `tfmeta.data.episodes`).

    Returns:
        An endless `tf.data.Dataset` of meta-batches.

    Raises:
        FileNotFoundError: When the images are not where `data_dir` points.
        ValueError: For a bad argument or an image of no mini-ImageNet class.

    Example:
    >>> dataset = mini_imagenet("train", ways=5, shots=1, queries=15)  # doctest: +SKIP
    >>> inputs, query_y = next(iter(dataset))  # doctest: +SKIP
    >>> inputs["support_x"].shape, query_y.shape  # doctest: +SKIP
    (TensorShape([4, 5, 84, 84, 3]), TensorShape([4, 75]))
    """
    split = check_split(split)
    ways, shots, queries, meta_batch_size, image_size, seed = check_episode_arguments(
        ways, shots, queries, meta_batch_size, image_size, seed
    )
    builder = prepared_mini_imagenet(data_dir)
    data = load_images(builder, [split], image_size, cache_dir)
    names = wnids(split)
    label = builder.info.features["label"]
    return class_episodes(
        data.images, data.labels, [label.str2int(name) for name in names], ways=ways,
        shots=shots, queries=queries, meta_batch_size=meta_batch_size, seed=seed, split=split,
        class_names=names, deterministic=deterministic, **variable,
    )


def _build_split(split, ways, shots, queries, meta_batch_size, seed, data_dir, **options):
    return mini_imagenet(split, ways=ways, shots=shots, queries=queries,
                         meta_batch_size=meta_batch_size, seed=seed, data_dir=data_dir, **options)


SPEC = register(
    DatasetSpec(
        name="mini_imagenet",
        build=_build_split,
        task="classification",
        example="image",
        options=("image_size",),
        example_shape=lambda options: (options.get("image_size", 84),) * 2 + (3,),
        description="mini-ImageNet (Vinyals et al. 2016), Ravi & Larochelle's 64/16/20 "
        "classes, RGB; images supplied in <root>/mini_imagenet/.",
    )
)
