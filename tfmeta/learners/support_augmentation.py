"""Seeded augmentation of a support set of images for test-time fine-tuning."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

AUGMENTATIONS = ("flip_and_shift",)
# The largest shift, as a share of the image side (the CIFAR crops' 4 of 32 pixels).
SHIFT_SHARE = 0.125


def augment_support(images: tf.Tensor, augmentation: str, seed: Any,
                    labels: tf.Tensor | None = None) -> tf.Tensor:
    """Augmented copies of `[S, H, W, C]` images, a function of `seed` alone.

    `"flip_and_shift"`: each image is flipped left-right with probability 1/2 and shifted
    by a whole number of pixels, up to `SHIFT_SHARE` of its side in each direction, with
    zeros filling in (a random crop of the zero-padded image). Stateless random ops:
    the same seed gives the same images, in eager, graph and exported calls alike. With
    `labels`, the k-th real example (label >= 0) gets the k-th draw wherever it sits, so
    padding (label -1) never changes the augmentation of the real examples.

    Args:
        images: `[S, H, W, C]` float images (H and W static).
        augmentation: One of `AUGMENTATIONS`.
        seed: A shape-[2] integer seed (e.g. `(seed, step)`).
        labels: `[S]` labels (-1: padding), or None.

    Returns:
        The augmented images, of the same shape and dtype.

    Example:
    >>> out = augment_support(tf.ones([2, 8, 8, 1]), "flip_and_shift", (0, 1))
    >>> tuple(out.shape)
    (2, 8, 8, 1)
    """
    if augmentation not in AUGMENTATIONS:
        raise ValueError(f"Invalid augmentation {augmentation!r}: expected one of "
                         f"{AUGMENTATIONS}")
    count = tf.shape(images)[0]
    # Draw k is the k-th row of one [S, 3] draw (Philox draws of a longer shape begin with
    # those of a shorter one, so the draw of a real example does not depend on padding).
    draws = tf.random.stateless_uniform([count, 3], tf.cast(seed, tf.int64), minval=0,
                                        maxval=tf.int32.max, dtype=tf.int32)
    if labels is not None:
        rank = tf.cumsum(tf.cast(labels >= 0, tf.int32)) - 1
        draws = tf.gather(draws, tf.maximum(rank, 0))
    height, width = int(images.shape[1]), int(images.shape[2])
    flip = tf.reshape(draws[:, 0] % 2 == 1, [-1, 1, 1, 1])
    flipped = tf.where(flip, tf.reverse(images, axis=[2]), images)
    pad_h, pad_w = int(height * SHIFT_SHARE), int(width * SHIFT_SHARE)
    padded = tf.pad(flipped, [[0, 0], [pad_h, pad_h], [pad_w, pad_w], [0, 0]])
    rows = draws[:, 1:2] % (2 * pad_h + 1) + tf.range(height)[tf.newaxis]
    columns = draws[:, 2:3] % (2 * pad_w + 1) + tf.range(width)[tf.newaxis]
    cropped = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(cropped, columns, axis=2, batch_dims=1)
