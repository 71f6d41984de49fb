"""Decoding many small dark-on-light PNG drawings into ink images, in parallel with tf.data."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

_BATCH = 1024


def decode_drawings(pngs: Sequence[bytes], image_size: int, origin: str = "") -> np.ndarray:
    """Decodes same-size PNG drawings to `uint8` ink images `[n, image_size, image_size, 1]`.

    Ink is inverted from the PNG's dark strokes on a light background: a full stroke
    pixel is 255 and background 0 (divide by 255 for float ink in `[0, 1]`). Images are
    resized with area averaging when shrinking and antialiased bilinear otherwise.

    Args:
        pngs: PNG byte strings (1-bit or 8-bit grayscale, or RGB), all of one size.
        image_size: Side of the square output.
        origin: Where the PNGs come from, named in the error for a bad image.

    Returns:
        A `uint8` array of ink images.

    Raises:
        ValueError: When an image cannot be decoded.

    Example:
    >>> png = tf.io.encode_png(tf.fill([105, 105, 1], tf.constant(255, tf.uint8))).numpy()
    >>> decode_drawings([png], 28).shape
    (1, 28, 28, 1)
    """
    pngs = list(pngs)
    if not pngs:
        return np.zeros([0, image_size, image_size, 1], np.uint8)
    try:
        shape = _decode_png(tf.constant(pngs[0])).shape
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as error:
        raise ValueError(f"Could not decode a PNG image of {origin or 'the data'}: {error}") from (
            error
        )
    dataset = tf.data.Dataset.from_tensor_slices(tf.constant(pngs, dtype=tf.string))
    dataset = dataset.map(
        lambda png: tf.ensure_shape(_decode_png(png), shape), num_parallel_calls=tf.data.AUTOTUNE
    )
    dataset = dataset.batch(_BATCH).map(
        lambda images: _to_ink(images, image_size), num_parallel_calls=tf.data.AUTOTUNE
    )
    try:
        batches = [batch.numpy() for batch in dataset]
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as error:
        raise ValueError(f"Could not decode a PNG image of {origin or 'the data'}: {error}") from (
            error
        )
    return np.concatenate(batches)


def _decode_png(png: tf.Tensor) -> tf.Tensor:
    return tf.io.decode_png(png, channels=1, dtype=tf.uint8)


def _to_ink(images: tf.Tensor, image_size: int) -> tf.Tensor:
    ink = 1.0 - tf.cast(images, tf.float32) / 255.0
    height = images.shape[1]
    if height != image_size:
        shrinking = height > image_size
        ink = tf.image.resize(
            ink,
            [image_size, image_size],
            method="area" if shrinking else "bilinear",
            antialias=not shrinking,
        )
    return tf.cast(tf.round(tf.clip_by_value(ink, 0.0, 1.0) * 255.0), tf.uint8)
