"""Decoding many JPEG/PNG/BMP/GIF images to same-size RGB `uint8` arrays, in parallel."""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

# The most pixels one image may have, read from its header before it is decoded: 8192 x
# 8192 (a 45-megapixel photo fits). Such an image takes 192 MiB as RGB uint8 and about
# 0.8 GiB while it is resized in float32; a decompression bomb (a 10000 x 10000 PNG of
# 315 KB needs 0.92 GB) is refused instead.
MAX_IMAGE_PIXELS = 8192 * 8192
# Decoded images held per batch of the pipeline (two batches are prefetched).
_BATCH = 1024
_BATCH_BYTES = 64 * 2**20


def decode_images(
    encoded: Sequence[bytes], image_size: int, names: Sequence[str] | None = None
) -> np.ndarray:
    """Decodes images of any size and colour mode to RGB `uint8` `[n, size, size, 3]`.

    Greyscale images are repeated over the three channels, palette images take their
    palette's colours, an alpha channel is dropped (the colour values are kept as stored),
    16-bit images are scaled to 8 bits and an animated GIF gives its first frame. Each image
    is resized to `image_size x image_size` (the aspect ratio is not kept) with
    antialiased bilinear interpolation, unless it already has that size, and rounded back
    to `uint8`. Decoding runs in a parallel `tf.data` pipeline (libjpeg-turbo for JPEG).

    Before anything is decoded, every image's width and height are read from its header
    (`image_dimensions`): an image of more than `MAX_IMAGE_PIXELS` (8192 x 8192) pixels is
    an error naming it, so a decompression bomb never reaches the decoder.

    Args:
        encoded: The encoded files' bytes.
        image_size: Side of the square output images.
        names: The files' names, for the error about an undecodable image.

    Returns:
        A `uint8` array of RGB images.

    Raises:
        ValueError: Naming the first image that has too many pixels or does not decode.

    Example:
    >>> png = tf.io.encode_png(tf.zeros([5, 7, 1], tf.uint8)).numpy()
    >>> decode_images([png], 4).shape
    (1, 4, 4, 3)
    """
    encoded = list(encoded)
    if not encoded:
        return np.zeros([0, image_size, image_size, 3], np.uint8)
    for index, data in enumerate(encoded):
        dimensions = image_dimensions(data)
        if dimensions is not None and dimensions[0] * dimensions[1] > MAX_IMAGE_PIXELS:
            name = names[index] if names is not None else f"image #{index}"
            raise ValueError(
                f"The image {name} is {dimensions[0]}x{dimensions[1]} = "
                f"{dimensions[0] * dimensions[1]:,} pixels, more than the {MAX_IMAGE_PIXELS:,} "
                "(MAX_IMAGE_PIXELS) tfmeta decodes (a decompression bomb?); shrink or remove it."
            )
    batch_size = max(1, min(_BATCH, _BATCH_BYTES // (image_size * image_size * 3)))
    dataset = tf.data.Dataset.from_tensor_slices(tf.constant(encoded, dtype=tf.string))
    dataset = dataset.map(
        lambda data: _decode(data, image_size), num_parallel_calls=tf.data.AUTOTUNE
    )
    dataset = dataset.batch(batch_size).prefetch(2)
    # Filled batch by batch: no second full-size copy (1.2 GB for Tiny ImageNet at 64 px).
    images = np.empty([len(encoded), image_size, image_size, 3], np.uint8)
    try:
        start = 0
        for batch in dataset:
            images[start:start + len(batch)] = batch.numpy()
            start += len(batch)
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError):
        index = _first_undecodable(encoded, image_size)
        name = names[index] if names is not None else f"image #{index}"
        raise ValueError(
            f"Could not decode the image {name}: expected a JPEG, PNG, BMP or GIF file."
        ) from None
    return images


def _decode(data: tf.Tensor, image_size: int) -> tf.Tensor:
    image = tf.io.decode_image(data, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    size = tf.shape(image)[:2]

    def resize() -> tf.Tensor:
        resized = tf.image.resize(image, [image_size, image_size], antialias=True)
        return tf.cast(tf.round(tf.clip_by_value(resized, 0.0, 255.0)), tf.uint8)

    same = tf.reduce_all(size == image_size)
    image = tf.cond(same, lambda: image, resize)
    return tf.ensure_shape(image, [image_size, image_size, 3])


def _first_undecodable(encoded: Sequence[bytes], image_size: int) -> int:
    """Index of the first image that does not decode (the slow path after a failure)."""
    for index, data in enumerate(encoded):
        try:
            _decode(tf.constant(data), image_size)
        except (tf.errors.InvalidArgumentError, tf.errors.UnknownError):
            return index
    return 0


_JPEG_SIZE_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def image_dimensions(data: bytes) -> tuple[int, int] | None:
    """`(width, height)` from a PNG, GIF, BMP or JPEG header, or None if it has none.

    Example:
    >>> image_dimensions(tf.io.encode_png(tf.zeros([5, 7, 1], tf.uint8)).numpy())
    (7, 5)
    """
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if data[:6] in (b"GIF87a", b"GIF89a"):
            return struct.unpack("<HH", data[6:10])
        if data[:2] == b"BM":
            if struct.unpack("<I", data[14:18])[0] == 12:  # OS/2 bitmap header
                return struct.unpack("<HH", data[18:22])
            width, height = struct.unpack("<ii", data[18:26])
            return abs(width), abs(height)
        if data[:2] == b"\xff\xd8":
            return _jpeg_dimensions(data)
    except struct.error:
        return None  # Truncated: the decoder names it.
    return None


def _jpeg_dimensions(data: bytes) -> tuple[int, int] | None:
    """Walks the JPEG segments to the frame header (SOFn), which holds the size."""
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # Fill byte.
            position += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD9:  # Segments without a length.
            position += 2
            continue
        if marker in _JPEG_SIZE_MARKERS:
            height, width = struct.unpack(">HH", data[position + 5:position + 9])
            return width, height
        position += 2 + struct.unpack(">H", data[position + 2:position + 4])[0]
    return None
