"""The public episode sampler: class-indexed examples -> an endless dataset of episodes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from tfmeta.data.arguments import check_int_in_range, check_seed, invalid_value
from tfmeta.data.episode_shape import (
    MAX_QUERIES,
    MAX_SUPPORT,
    EpisodeShape,
    check_episode_sizes,
    episode_shape,
)
from tfmeta.data.sampling import EpisodeSampler

ArrayLike = np.ndarray | tf.Tensor

_QUARTER_TURNS = {0: 0, 90: 1, 180: 2, 270: 3}


def episodes(
    class_examples: ArrayLike | Sequence[ArrayLike],
    ways: int | None,
    shots: int | None,
    queries: int | None,
    meta_batch_size: int,
    seed: int = 0,
    *,
    rotations: Sequence[int] | None = None,
    deterministic: bool = True,
    max_ways: int | None = None,
    max_support: int = MAX_SUPPORT,
    max_queries: int = MAX_QUERIES,
) -> tf.data.Dataset:
    """Samples N-way K-shot episodes from class-indexed examples, endlessly.

    Every element is `(inputs, query_y)` with `inputs["support_x"]` `[B, N*K, *shape]`
    float32, `inputs["support_y"]` `[B, N*K]` int32, `inputs["query_x"]` `[B, N*Q, *shape]`
    float32 and `query_y` `[B, N*Q]` int32, all with static shapes. String examples (raw
    sentences, `shape = ()`) stay `tf.string`: `support_x` `[B, N*K]`, `query_x` `[B, N*Q]`.
    Each episode draws N distinct classes and K + Q distinct examples of each (no example
    is in both support and query), gives class `i` of the episode a random label in
    `0..N-1`, and shuffles the support set and the query set. Batch `i` depends only on
    `(seed, i)`: the same seed gives the same episodes, in the same order.

    All examples are held in one tensor and read with one `tf.gather` per set, with index
    sampling vectorised over the meta-batch in a parallel `map`, followed by `prefetch`.

    Variable episodes: `ways`, `shots` or `queries` `None` samples that size per episode by
    Meta-Dataset's rules (see `tfmeta.data.episode_shape`; `max_queries` is per class).
    Shapes stay static: the support set is padded to `max_support` (or `max_ways * shots`)
    and the query set to `max_ways * max_queries` (each bound lowered to what the class
    sizes allow), real entries first, padded entries with label -1 and zero examples ("" for
    text). Every learner, metric and export ignores padding.

    Args:
        class_examples: Either a dense array `[num_classes, examples_per_class, *shape]`
            (NumPy or `tf.Tensor`), or a sequence of per-class arrays `[examples_c, *shape]`
            whose sizes may differ. Floating-point data is stored as float32; other numeric
            dtypes (e.g. uint8 images) are stored as given and cast to float32 after the
            gather, without rescaling; strings (e.g. sentences) are kept as `tf.string`.
        ways: Classes per episode, N (at most the number of classes, after rotations), or
            None: uniform in `[5, max_ways]` per episode.
        shots: Support examples per class, K, or None (sampled per episode and class).
        queries: Query examples per class, Q, or None (sampled per episode); `shots +
            queries` must not exceed the size of the smallest class.
        meta_batch_size: Episodes per element, B.
        seed: Integer seed of the episode stream.
        rotations: Optional angles, from 0, 90, 180 and 270 degrees (counter-clockwise),
            that make new classes: each class shown at each angle is a class of its own, so
            `rotations=(0, 90, 180, 270)` quadruples the classes. Examples must be images
            `[H, H, ...]`. `None` (the default) keeps the classes as given. Rotations are
            applied after the gather, so memory does not grow, at some cost in throughput
            (`tfmeta.data.omniglot` instead stores its split's rotated classes).
        deterministic: Whether the parallel `map` keeps element order (the default). With
            `False` the same episodes come, possibly reordered.
        max_ways: With `ways=None`, the most ways: None (default) for `min(50, classes)`,
            else an integer in `[5, classes]`.
        max_support: With `shots=None`, the most support examples of an episode.
        max_queries: With `queries=None`, the most query examples per class.

    Returns:
        An endless `tf.data.Dataset` of `(inputs, query_y)` meta-batches.

    Raises:
        ValueError: For a bad argument, e.g. more `ways` than classes, or classes with
            fewer than `shots + queries` examples.

    Example:
    >>> images = np.random.rand(30, 20, 28, 28, 1).astype("float32")
    >>> dataset = episodes(images, ways=5, shots=1, queries=15, meta_batch_size=4)
    >>> inputs, query_y = next(iter(dataset))
    >>> inputs["support_x"].shape, inputs["support_y"].shape, query_y.shape
    (TensorShape([4, 5, 28, 28, 1]), TensorShape([4, 5]), TensorShape([4, 75]))
    """
    shots, queries = check_episode_sizes(None, shots, queries)[1:]  # `ways` once classes are known.
    meta_batch_size = check_int_in_range("meta_batch_size", meta_batch_size)
    seed = check_seed(seed)
    examples, offsets, sizes = _flatten_classes(class_examples)
    turns = _check_rotations(rotations, examples.shape[1:])
    if turns is not None:
        num_base = len(sizes)
        offsets = np.repeat(offsets, len(turns))
        sizes = np.repeat(sizes, len(turns))
        turns = np.tile(turns, num_base)
    shape = episode_shape(
        ways, shots, queries, sizes,
        classes_reason="the number of classes in `class_examples`"
        + (" times the number of rotations" if turns is not None else ""),
        size_reason="size of the smallest class",
        max_ways=max_ways, max_support=max_support, max_queries=max_queries,
    )
    return sampled_episodes(examples, offsets, sizes, shape, meta_batch_size, seed,
                            turns=turns, deterministic=deterministic)


def sampled_episodes(
    examples: ArrayLike,
    offsets: np.ndarray,
    sizes: np.ndarray,
    shape: EpisodeShape,
    meta_batch_size: int,
    seed: int,
    *,
    scale: float | None = None,
    turns: np.ndarray | None = None,
    deterministic: bool = True,
) -> tf.data.Dataset:
    """The endless episode dataset of checked class-indexed examples and a checked shape.

    What every classification dataset ends with, once it has its examples class by class
    and the `EpisodeShape` that `episode_shape` checked against their class sizes.

    Args:
        examples: `[num_examples, *example_shape]`, the classes one after the other.
        offsets: `[C]` first row of each class in `examples`.
        sizes: `[C]` examples of each class.
        shape: The episode sizes (fixed or variable) and their bounds.
        meta_batch_size: Episodes per element.
        seed: Integer seed of the episode stream.
        scale: Optional factor applied after the cast to float32 (1/255 for uint8 images).
        turns: Optional `[C]` quarter turns of each class.
        deterministic: Whether the parallel `map` keeps element order.

    Returns:
        An endless `tf.data.Dataset` of `(inputs, query_y)` meta-batches.

    Example:
    >>> sizes = np.full(5, 2)
    >>> shape = episode_shape(3, 1, 1, sizes, classes_reason="", size_reason="")
    >>> dataset = sampled_episodes(np.zeros([10, 4], "float32"), np.arange(5) * 2, sizes,
    ...                            shape, meta_batch_size=2, seed=0)
    """
    sampler = EpisodeSampler(
        examples, offsets=offsets, sizes=sizes, ways=shape.ways, shots=shape.shots,
        queries=shape.queries, meta_batch_size=meta_batch_size, seed=int(seed), turns=turns,
        scale=scale, **shape.sampler_options(),
    )
    return episode_dataset(sampler, deterministic=deterministic)


def episode_dataset(sampler: EpisodeSampler, deterministic: bool = True) -> tf.data.Dataset:
    """Turns an `EpisodeSampler` into an endless, parallel, prefetched dataset.

    Args:
        sampler: Maps a batch index to one meta-batch.
        deterministic: Whether the parallel `map` keeps element order.

    Returns:
        The dataset of meta-batches `sampler(0), sampler(1), ...`.

    Example:
    >>> sampler = EpisodeSampler(np.zeros([10, 4], "float32"), offsets=np.arange(5) * 2,
    ...     sizes=np.full(5, 2), ways=3, shots=1, queries=1, meta_batch_size=2, seed=0)
    >>> dataset = episode_dataset(sampler)
    """
    dataset = tf.data.Dataset.counter()
    dataset = dataset.map(
        sampler, num_parallel_calls=tf.data.AUTOTUNE, deterministic=bool(deterministic)
    )
    return with_data_sharding(dataset.prefetch(tf.data.AUTOTUNE))


def with_data_sharding(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Makes `tf.distribute` split a generated meta-batch stream by element across workers.

    Episodes come from a counter, not from files, so the only sound auto-shard
    policy is `DATA` (set here explicitly instead of `AUTO`'s fallback and its
    warning): under `MultiWorkerMirroredStrategy` every worker generates the
    stream, cuts each meta-batch into per-replica parts and keeps its own, so
    no two workers train on the same episodes and a step sees the same
    meta-batch as one device would.

    Args:
        dataset: a dataset of meta-batches.

    Returns:
        The dataset with `experimental_distribute.auto_shard_policy = DATA`.

    Example:
    >>> dataset = with_data_sharding(tf.data.Dataset.range(4).batch(2))
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def _flatten_classes(
    class_examples: ArrayLike | Sequence[ArrayLike],
) -> tuple[np.ndarray | tf.Tensor, np.ndarray, np.ndarray]:
    """Returns `(examples [total, *shape], offsets [C], sizes [C])` for either layout."""
    if isinstance(class_examples, np.ndarray | tf.Tensor):
        shape = tuple(class_examples.shape)
        if len(shape) < 2 or shape[0] == 0 or shape[1] == 0:
            raise invalid_value(
                "class_examples",
                "a non-empty array [num_classes, examples_per_class, *example_shape]",
                f"<array of shape {shape}>",
            )
        num_classes, size = shape[0], shape[1]
        examples = tf.reshape(_as_stored(class_examples), [num_classes * size, *shape[2:]])
        offsets = np.arange(num_classes, dtype=np.int64) * size
        return examples, offsets, np.full(num_classes, size, dtype=np.int64)
    arrays = [np.asarray(x) for x in class_examples]
    if not arrays or any(x.ndim < 1 or len(x) == 0 for x in arrays):
        raise invalid_value(
            "class_examples", "a non-empty sequence of non-empty per-class arrays", "<sequence>"
        )
    example_shapes = {x.shape[1:] for x in arrays}
    if len(example_shapes) > 1:
        raise invalid_value(
            "class_examples",
            "per-class arrays with one example shape",
            f"<arrays with example shapes {sorted(example_shapes)}>",
        )
    sizes = np.array([len(x) for x in arrays], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return _as_stored(np.concatenate(arrays)), offsets, sizes


def _as_stored(array: ArrayLike) -> tf.Tensor:
    """Floating-point data as float32; other dtypes unchanged (cast after the gather).

    Complex data (whose imaginary part would be dropped) and NaN or infinite values are
    refused; strings (raw text) pass.
    """
    tensor = tf.convert_to_tensor(array)
    if tensor.dtype.is_complex:
        raise invalid_value("class_examples", "real (not complex) examples",
                            f"<array of dtype {tensor.dtype.name}>")
    if tensor.dtype.is_floating:
        tensor = tf.cast(tensor, tf.float32)
        finite = tf.math.is_finite(tensor)
        if not bool(tf.reduce_all(finite)):
            bad = int(tf.size(finite)) - int(tf.math.count_nonzero(finite))
            raise invalid_value("class_examples", "finite values (no NaN or infinity)",
                                f"<array with {bad} NaN or infinite values>")
    return tensor


def _check_rotations(
    rotations: Sequence[int] | None, example_shape: Sequence[int]
) -> np.ndarray | None:
    """Returns the quarter turns of `rotations`, or `None` when there are none."""
    if rotations is None:
        return None
    expected = "a sequence of distinct angles from 0, 90, 180, 270"
    try:
        angles = [int(angle) for angle in rotations]
    except (TypeError, ValueError):
        raise invalid_value("rotations", expected, rotations) from None
    if not angles or len(set(angles)) != len(angles) or not set(angles) <= set(_QUARTER_TURNS):
        raise invalid_value("rotations", expected, rotations)
    if len(example_shape) < 2 or example_shape[0] != example_shape[1]:
        raise invalid_value(
            "rotations", f"None for non-square examples of shape {tuple(example_shape)}", rotations
        )
    return np.array([_QUARTER_TURNS[angle] for angle in angles], dtype=np.int32)
