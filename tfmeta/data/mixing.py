"""Several sources in one episode stream: each episode from one source (Meta-Dataset)."""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from tfmeta.data.arguments import check_int_in_range, check_seed, invalid_value
from tfmeta.data.episode_shape import PADDING_LABEL
from tfmeta.data.episodes import with_data_sharding

_ALGORITHM = "philox"


def mix(
    datasets: Sequence[tf.data.Dataset],
    weights: Sequence[float] | None = None,
    seed: int = 0,
    *,
    image_size: int | None = None,
) -> tf.data.Dataset:
    """One endless stream of episodes, each meta-batch from one source.

    As in Meta-Dataset's multi-source training, every element comes whole from one of
    `datasets`, chosen uniformly (`weights=None`) or with probabilities proportional to
    `weights`; the choices depend only on `seed` and the element's position. The sources
    must be episode datasets of the contract with the same meta-batch size and the same
    kind of examples and targets. They are brought to one element shape:

    - images: to the largest side among the sources (or `image_size`), bilinearly, and to
      RGB where some source is RGB and another greyscale (the grey channel repeated);
    - support and query sets of different sizes (other ways or shots, or variable
      episodes) are padded to the largest, with label -1, like variable episodes.

    Args:
        datasets: Two or more episode datasets (e.g. `tfmeta.data.omniglot(...)` and
            `tfmeta.data.tiny_imagenet(...)`).
        weights: Optional non-negative numbers, one per source, not all zero.
        seed: Integer seed of the choice of sources.
        image_size: Optional side of the square images of every source.

    Returns:
        The endless mixed `tf.data.Dataset` of `(inputs, query_y)` meta-batches.

    Raises:
        ValueError: In one line, for text mixed with images (or other mismatched sources),
            negative weights or weights that do not match the sources.

    Example:
    >>> import numpy as np, tfmeta
    >>> a = tfmeta.data.episodes(np.zeros([10, 4, 8, 8, 1], "float32"), 2, 1, 1, 2)
    >>> b = tfmeta.data.episodes(np.ones([10, 4, 16, 16, 3], "float32"), 2, 1, 1, 2)
    >>> mixed = mix([a, b], weights=[1, 3])
    >>> mixed.element_spec[0]["support_x"].shape
    TensorShape([2, 2, 16, 16, 3])
    """
    sources = list(datasets) if isinstance(datasets, Sequence) else None
    if not sources or len(sources) < 2 or not all(
            isinstance(d, tf.data.Dataset) for d in sources):
        raise invalid_value("datasets", "a sequence of two or more episode datasets",
                            datasets)
    probabilities = _check_weights(weights, len(sources))
    seed = check_seed(seed)
    if image_size is not None:
        image_size = check_int_in_range("image_size", image_size)
    specs = [_episode_spec(dataset, index) for index, dataset in enumerate(sources)]
    target = _common_spec(specs, image_size)
    converted = [dataset.map(lambda inputs, query_y: _convert(inputs, query_y, target),
                             num_parallel_calls=tf.data.AUTOTUNE)
                 for dataset in sources]
    bounds = tf.constant(np.cumsum(probabilities)[:-1], tf.float32)

    def choose(index):
        key = tf.stack([tf.constant(seed, tf.int64), index])
        draw = tf.random.stateless_uniform([1], key, alg=_ALGORITHM)
        return tf.cast(tf.searchsorted(bounds, draw, side="right")[0], tf.int64)

    choices = tf.data.Dataset.counter().map(choose)
    mixed = tf.data.Dataset.choose_from_datasets(converted, choices)
    return with_data_sharding(mixed.prefetch(tf.data.AUTOTUNE))


def convert_images(dataset: tf.data.Dataset, example_shape: Sequence[int]) -> tf.data.Dataset:
    """Episodes of images brought to `example_shape` `(H, W, C)`: resized, channels converted.

    Bilinear resizing; greyscale becomes RGB by repeating its channel, RGB becomes greyscale
    by luminance (`tf.image.rgb_to_grayscale`). What cross-domain evaluation uses, e.g. a
    model trained on Tiny ImageNet (64 x 64 x 3) tested on Omniglot (28 x 28 x 1).

    Raises:
        ValueError: When the episodes are not images, or the channels cannot be converted.

    Example:
    >>> import numpy as np, tfmeta
    >>> grey = tfmeta.data.episodes(np.zeros([4, 3, 8, 8, 1], "float32"), 2, 1, 1, 2)
    >>> convert_images(grey, (16, 16, 3)).element_spec[0]["query_x"].shape
    TensorShape([2, 2, 16, 16, 3])
    """
    spec = _episode_spec(dataset, 0)
    shape = tuple(int(size) for size in example_shape)
    source_shape = tuple(spec["support_x"].shape[2:])
    if _kind(spec) != "image" or len(shape) != 3:
        raise invalid_value("example_shape", "images (H, W, C) for episodes of images",
                            f"{shape} for examples of shape {source_shape}")
    if {source_shape[2], shape[2]} - {1, 3} and source_shape[2] != shape[2]:
        raise invalid_value("example_shape", "1 or 3 channels, or the episodes' own "
                            f"{source_shape[2]}", shape)

    def convert(inputs, query_y):
        return {**inputs, "support_x": _as_images(inputs["support_x"], shape),
                "query_x": _as_images(inputs["query_x"], shape)}, query_y

    return dataset.map(convert, num_parallel_calls=tf.data.AUTOTUNE)


def _check_weights(weights, count: int) -> np.ndarray:
    if weights is None:
        return np.full(count, 1.0 / count)
    expected = (f"{count} non-negative numbers, one per source, not all zero")
    try:
        values = [float(w) for w in weights]
    except (TypeError, ValueError):
        raise invalid_value("weights", expected, weights) from None
    if (len(values) != count or any(not np.isfinite(w) or w < 0 for w in values)
            or not sum(values) > 0 or any(isinstance(w, bool) for w in weights)
            or not all(isinstance(w, numbers.Real) for w in weights)):
        raise invalid_value("weights", expected, list(weights))
    total = sum(values)
    return np.array([w / total for w in values])


def _episode_spec(dataset: tf.data.Dataset, index: int) -> dict:
    spec = dataset.element_spec
    if (not isinstance(spec, tuple) or len(spec) != 2 or not isinstance(spec[0], dict)
            or not {"support_x", "support_y", "query_x"} <= set(spec[0])):
        raise invalid_value("datasets", "episode datasets of `(inputs, query_y)` elements",
                            f"<source {index} with element_spec {spec}>")
    return {**spec[0], "query_y": spec[1]}


def _kind(spec: dict) -> str:
    x = spec["support_x"]
    if x.dtype == tf.string:
        return "text"
    return "image" if x.shape.rank == 5 else f"examples of rank {x.shape.rank - 2}"


def _common_spec(specs: list[dict], image_size: int | None) -> dict:
    """The element shape every source is brought to; refuses sources that cannot mix."""
    kinds = [_kind(spec) for spec in specs]
    if len(set(kinds)) > 1:
        raise invalid_value("datasets", "sources of one kind of examples (all images, all "
                            "text or all vectors)", f"<sources of {', '.join(kinds)}>")
    labels = {spec["support_y"].dtype for spec in specs}
    if len(labels) > 1 or {spec["query_y"].dtype for spec in specs} != labels:
        raise invalid_value("datasets", "sources of one task (all classification or all "
                            "regression)", f"<targets of dtypes {sorted(map(str, labels))}>")
    batches = {spec["support_x"].shape[0] for spec in specs}
    if len(batches) > 1 or None in batches:
        raise invalid_value("datasets", "sources of one static meta-batch size",
                            f"<meta-batch sizes {sorted(batches, key=str)}>")
    example_shapes = {tuple(spec["support_x"].shape[2:]) for spec in specs}
    if kinds[0] == "image":
        side = image_size or max(max(shape[0], shape[1]) for shape in example_shapes)
        channels = {shape[2] for shape in example_shapes}
        if len(channels) > 1 and channels != {1, 3}:
            raise invalid_value("datasets", "images with 1 or 3 channels to mix",
                                f"<images with {sorted(channels)} channels>")
        example_shape = (side, side, max(channels))
    elif len(example_shapes) > 1:
        raise invalid_value("datasets", "sources of one example shape",
                            f"<example shapes {sorted(example_shapes)}>")
    else:
        example_shape = example_shapes.pop()
    if not all(dtype.is_integer for dtype in labels):  # Regression targets cannot be padded.
        shapes = {tuple(tuple(spec[key].shape) for key in sorted(spec)) for spec in specs}
        if len(shapes) > 1:
            raise invalid_value("datasets", "regression sources of one element shape (their "
                                "sets cannot be padded)", "<sources of different shapes>")
    return {
        "example_shape": example_shape,
        "image": kinds[0] == "image",
        "support": max(spec["support_x"].shape[1] for spec in specs),
        "query": max(spec["query_x"].shape[1] for spec in specs),
    }


def _convert(inputs: dict, query_y: tf.Tensor, target: dict) -> tuple[dict, tf.Tensor]:
    """One source's meta-batch in the common shape (images resized, sets padded)."""
    support_x, query_x = inputs["support_x"], inputs["query_x"]
    if target["image"]:
        support_x, query_x = (_as_images(x, target["example_shape"]) for x in (support_x, query_x))
    support_x, support_y = _pad(support_x, inputs["support_y"], target["support"])
    query_x, query_y = _pad(query_x, query_y, target["query"])
    return {**inputs, "support_x": support_x, "support_y": support_y, "query_x": query_x}, query_y


def _as_images(x: tf.Tensor, example_shape: tuple[int, int, int]) -> tf.Tensor:
    height, width, channels = example_shape
    batch, size = x.shape[0], x.shape[1]
    if x.shape[2] != height or x.shape[3] != width:
        flat = tf.reshape(x, [-1, *x.shape[2:]])
        flat = tf.image.resize(flat, [height, width], method="bilinear")
        x = tf.reshape(flat, [batch, size, height, width, x.shape[4]])
    if x.shape[4] == 1 and channels != 1:  # Greyscale to RGB: the grey channel thrice.
        x = tf.repeat(x, channels, axis=-1)
    elif x.shape[4] == 3 and channels == 1:
        x = tf.image.rgb_to_grayscale(x)
    return x


def _pad(x: tf.Tensor, y: tf.Tensor, size: int) -> tuple[tf.Tensor, tf.Tensor]:
    extra = size - x.shape[1]
    if extra == 0:
        return x, y
    x = tf.pad(x, [[0, 0], [0, extra]] + [[0, 0]] * (x.shape.rank - 2))
    if y.dtype.is_integer:
        y = tf.pad(y, [[0, 0], [0, extra]], constant_values=PADDING_LABEL)
    return x, y
