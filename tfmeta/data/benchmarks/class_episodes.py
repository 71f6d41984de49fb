"""Episodes over the named classes of a labelled image array (the natural-image datasets).

The natural-image datasets (mini-ImageNet, CIFAR-FS, FC100, CUB) decode their images once
as `uint8` `[N, H, W, 3]` with a label per image; a split is a list of labels. This module
lays the split's images out class by class and hands them to the shared `EpisodeSampler`,
which casts to float32 and scales by 1/255 after its gather: every natural-image episode
is RGB in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from tfmeta.data.arguments import check_image_size, check_int_in_range, invalid_value
from tfmeta.data.episode_shape import MAX_QUERIES, MAX_SUPPORT, check_episode_sizes, episode_shape
from tfmeta.data.episodes import sampled_episodes

PIXEL_SCALE = 1.0 / 255.0


def check_episode_arguments(
    ways: object, shots: object, queries: object, meta_batch_size: object, image_size: object,
    seed: object,
) -> tuple[int, int, int, int, int, int]:
    """Checks the common arguments of an image entry point and returns them as `int`s.

    Example:
    >>> check_episode_arguments(5, 1, 15, 4, 84, 0)
    (5, 1, 15, 4, 84, 0)
    """
    checked = (*check_episode_sizes(ways, shots, queries),
               check_int_in_range("meta_batch_size", meta_batch_size),
               check_image_size(image_size))
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool):
        raise invalid_value("seed", "an integer", seed)
    return (*checked, int(seed))


def class_episodes(
    images: np.ndarray,
    labels: np.ndarray,
    classes: Sequence[int],
    *,
    ways: int,
    shots: int,
    queries: int,
    meta_batch_size: int,
    seed: int,
    split: str,
    class_names: Sequence[str] | None = None,
    deterministic: bool = True,
    max_ways: int | None = None,
    max_support: int = MAX_SUPPORT,
    max_queries: int = MAX_QUERIES,
) -> tf.data.Dataset:
    """Endless episodes over the images whose label is one of `classes`.

    Args:
        images: `[N, H, W, C]` uint8 images.
        labels: `[N]` integer label of each image.
        classes: The labels that are this split's classes.
        ways: Classes per episode (at most `len(classes)`).
        shots: Support images per class.
        queries: Query images per class (`shots + queries` at most the smallest class).
        meta_batch_size: Episodes per element.
        seed: Seed of the episode stream.
        split: The split's name, for messages.
        class_names: Names of `classes`, for messages.
        deterministic: Whether the parallel sampler keeps element order.
        max_ways: With `ways=None`, the most ways (default `min(50, classes)`).
        max_support: With `shots=None`, the most support examples of an episode.
        max_queries: With `queries=None`, the most query examples per class.

    Returns:
        The endless `tf.data.Dataset` of the episode contract, images float32 in [0, 1].

    Raises:
        ValueError: When a class has no images, `ways` exceeds the classes, or a class has
            fewer than `shots + queries` images.

    Example:
    >>> images = np.zeros([12, 8, 8, 3], np.uint8)
    >>> dataset = class_episodes(images, np.arange(12) % 4, [0, 1, 2], ways=2, shots=1,
    ...     queries=2, meta_batch_size=2, seed=0, split="train")
    >>> dataset.element_spec[0]["support_x"].shape
    TensorShape([2, 2, 8, 8, 3])
    """
    classes = np.asarray(classes, dtype=np.int64)
    names = list(class_names) if class_names is not None else [str(c) for c in classes]
    position = np.full(max(int(labels.max(initial=0)), int(classes.max(initial=0))) + 1, -1)
    position[classes] = np.arange(len(classes))
    member = position[labels]
    order = np.argsort(np.where(member >= 0, member, len(classes)), kind="stable")
    order = order[member[order] >= 0]
    sizes = np.bincount(member[order], minlength=len(classes))
    if (sizes == 0).any():
        empty = names[int(np.argmax(sizes == 0))]
        raise ValueError(f"Class {empty} of split '{split}' has no images: the data is incomplete.")
    shape = episode_shape(
        ways, shots, queries, sizes,
        classes_reason=f"the number of classes in split '{split}'",
        size_reason=f"images of the smallest class of split '{split}', "
        f"{names[int(np.argmin(sizes))]}",
        max_ways=max_ways, max_support=max_support, max_queries=max_queries,
    )
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    if len(order) < len(images) or not np.array_equal(order, np.arange(len(order))):
        images = images[order]  # The split's images, class by class (a copy).
    return sampled_episodes(images, offsets, sizes, shape, meta_batch_size, seed,
                            scale=PIXEL_SCALE, deterministic=deterministic)
