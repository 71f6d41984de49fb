"""Datasets read through TensorFlow Datasets: where they live, preparing them, decoding once.

Where TFDS data lives: `<root>/tensorflow_datasets/` when the tfmeta data root `<root>`
(`data_dir`, else `$TFMETA_DATA_DIR`) has that folder, so everything can sit under one
root; otherwise TFDS's own data dir (`$TFDS_DATA_DIR`, else `~/tensorflow_datasets`). A
dataset that is not prepared there is prepared on first use (TFDS downloads it, or builds
it from manual files); when that fails, a one-line `FileNotFoundError` says where the files
belong.

Images are decoded once per (dataset, splits, image size), resized to a square, kept as
`uint8`, and cached as one `.npz` in `<cache_dir>/<dataset>/` (see `resolve_cache_dir`) and
in memory for the rest of the process.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf

from tfmeta.data import array_cache
from tfmeta.data.arguments import check_decoded_size
from tfmeta.data.data_dir import resolve_cache_dir, resolve_data_dir

TFDS_FOLDER = "tensorflow_datasets"
_CACHE_FORMAT = 2
_MEMORY_CACHE: dict[Path, LabelledImages] = {}
_MEMORY_CACHE_LOCK = threading.Lock()

PathLike = str | os.PathLike[str]


class LabelledImages(NamedTuple):
    """Every image of some splits of a TFDS dataset, decoded.

    Attributes:
        images: `[N, S, S, 3]` uint8 RGB images, sorted by label (within a label, in
            TFDS's order of the splits).
        labels: `[N]` int32 TFDS labels, ascending.
    """

    images: np.ndarray
    labels: np.ndarray


def tfds_data_dir(data_dir: PathLike | None = None) -> str | None:
    """The TFDS data dir tfmeta uses: `<root>/tensorflow_datasets` if present, else TFDS's.

    Args:
        data_dir: The tfmeta data root (default `$TFMETA_DATA_DIR`).

    Returns:
        `<root>/tensorflow_datasets` when that folder exists, else `None` (TFDS's default:
        `$TFDS_DATA_DIR`, else `~/tensorflow_datasets`).

    Example:
    >>> tfds_data_dir("/nonexistent") is None
    True
    """
    root = resolve_data_dir(data_dir)
    if root is not None and (root / TFDS_FOLDER).is_dir():
        return str(root / TFDS_FOLDER)
    return None


def prepared_builder(
    name_or_class: str | type,
    data_dir: PathLike | None,
    *,
    help_text: str,
    download_config: Any = None,
) -> Any:
    """A TFDS builder whose data is prepared, preparing it (download or manual files) if not.

    Args:
        name_or_class: A TFDS name such as "cifar100", or a builder class.
        data_dir: The tfmeta data root (see `tfds_data_dir`).
        help_text: What the user should do when preparing fails (one sentence); "{root}"
            in it becomes the TFDS data dir used.
        download_config: A `tfds.download.DownloadConfig` (e.g. with `manual_dir`).

    Returns:
        The `tfds.core.DatasetBuilder`.

    Raises:
        FileNotFoundError: When the data is not prepared and preparing it fails (offline,
            missing manual files): one line naming the TFDS folder and `help_text`.
    """
    import tensorflow_datasets as tfds

    tfds_dir = tfds_data_dir(data_dir)
    if isinstance(name_or_class, str):
        builder = tfds.builder(name_or_class, data_dir=tfds_dir)
    else:
        builder = name_or_class(data_dir=tfds_dir)
    if not builder.is_prepared():
        try:
            if download_config is None or not download_config.manual_dir:
                _check_reachable(builder)
            builder.download_and_prepare(download_config=download_config)
        except Exception as error:  # noqa: BLE001 - any failure means "the data is not here".
            reason = " ".join(str(error).split())[:300]
            raise FileNotFoundError(
                f"TensorFlow Datasets '{builder.name}' is not prepared in {builder.data_dir} and "
                f"preparing it failed ({type(error).__name__}: {reason}). "
                + help_text.replace("{root}", str(builder.data_dir_root))
            ) from error
    return builder


def _check_reachable(builder: Any, timeout: float = 10.0) -> None:
    """Fails at once when the first download host cannot be reached.

    TFDS retries a failed download ten times with back-off (over three minutes offline);
    one connection attempt tells the user sooner.
    """
    urls = sorted(getattr(builder, "url_infos", None) or {})
    host = urllib.parse.urlsplit(urls[0]).hostname if urls else None
    if host is None:
        return
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError as error:
        raise ConnectionError(f"cannot reach {host} to download it: {error}") from error


def load_images(
    builder: Any,
    splits: Sequence[str],
    image_size: int,
    cache_dir: PathLike | None = None,
) -> LabelledImages:
    """Every image and label of `splits` of a prepared builder, resized to `image_size`.

    Images are decoded as RGB (greyscale is repeated over three channels), resized to
    `image_size x image_size` with bilinear interpolation (antialiased when shrinking;
    the aspect ratio is not kept), rounded and stored as `uint8`.

    Args:
        builder: A prepared `tfds.core.DatasetBuilder` with "image" and "label" features.
        splits: The TFDS splits to read, concatenated in this order.
        image_size: Side of the square images.
        cache_dir: Where the decoded arrays are cached (see `resolve_cache_dir`).

    Returns:
        The `LabelledImages`, read-only.
    """
    path = _cache_path(builder, splits, image_size, cache_dir)
    with _MEMORY_CACHE_LOCK:
        if path in _MEMORY_CACHE:
            return _MEMORY_CACHE[path]
        # The one keyed, checked cache format (see `tfmeta.data.array_cache`): the key is
        # the file name (data folder, version, split sizes, preparation time, size) plus
        # the colour mode and dtype; a stale or damaged entry is rebuilt with one warning.
        rows = _expected_rows(builder, splits)
        if rows is not None:
            check_decoded_size(rows, image_size, 3, f"TensorFlow Datasets '{builder.name}'")
        entry = array_cache.cached_arrays(
            path,
            key=f"tfds-{path.stem}:rgb:uint8",
            build=lambda: _decode(builder, splits, image_size)._asdict(),
            shapes={"images": (rows, image_size, image_size, 3), "labels": (rows,)},
            dtypes={"images": np.uint8, "labels": np.int32},
            validate=_entry_problem,
        )
        loaded = LabelledImages(entry["images"], entry["labels"])
        loaded.images.setflags(write=False)
        loaded.labels.setflags(write=False)
        _MEMORY_CACHE[path] = loaded
        return loaded


def clear_memory_cache() -> None:
    """Forgets the decoded arrays kept in this process (the disk cache stays).

    Example:
    >>> clear_memory_cache()
    """
    with _MEMORY_CACHE_LOCK:
        _MEMORY_CACHE.clear()


def resize_to_square(image: tf.Tensor, image_size: int) -> tf.Tensor:
    """Resizes one `[H, W, 3]` uint8 image to `[S, S, 3]` uint8 (bilinear, antialiased).

    Example:
    >>> resize_to_square(tf.zeros([5, 7, 3], tf.uint8), 4).shape
    TensorShape([4, 4, 3])
    """
    resized = tf.image.resize(image, [image_size, image_size], antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)


def _decode(builder: Any, splits: Sequence[str], image_size: int) -> LabelledImages:
    import tensorflow_datasets as tfds

    decoders = tfds.decode.PartialDecoding({"image": True, "label": True})
    images, labels = [], []
    for split in splits:
        dataset = builder.as_dataset(split=split, shuffle_files=False, decoders=decoders)
        dataset = dataset.map(
            lambda example: (
                resize_to_square(example["image"], image_size),
                tf.cast(example["label"], tf.int32),
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        for image_batch, label_batch in dataset.batch(512).as_numpy_iterator():
            images.append(image_batch)
            labels.append(label_batch)
    if not images:
        raise ValueError(f"TensorFlow Datasets '{builder.name}' has no images in {list(splits)}.")
    # Sorted by label (stably), so a split made of whole label ranges needs no copy.
    all_labels = np.concatenate(labels).astype(np.int32)
    order = np.argsort(all_labels, kind="stable")
    return LabelledImages(np.concatenate(images)[order], all_labels[order])


def _expected_rows(builder: Any, splits: Sequence[str]) -> int | None:
    """The images of `splits` by the builder's split sizes, or None if it does not say."""
    try:
        return sum(int(builder.info.splits[split].num_examples) for split in splits)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _entry_problem(arrays: dict[str, np.ndarray]) -> str | None:
    if len(arrays["labels"]) != len(arrays["images"]):
        return f"it has {len(arrays['images'])} images but {len(arrays['labels'])} labels"
    if arrays["labels"].size and (np.diff(arrays["labels"]) < 0).any():
        return "its labels are not sorted"
    return None


def _cache_path(
    builder: Any, splits: Sequence[str], image_size: int, cache_dir: PathLike | None
) -> Path:
    """`<cache>/<name>/<name>-<splits>-<S>px-v2-<fingerprint>.npz`.

    The fingerprint covers the prepared data's folder, version, split sizes and the time
    its `dataset_info.json` was written, so re-preparing the data invalidates the cache.
    """
    info_file = Path(os.fspath(builder.data_dir)) / "dataset_info.json"
    written = info_file.stat().st_mtime_ns if info_file.is_file() else 0
    sizes = {
        split: int(info.num_examples) for split, info in builder.info.splits.items()
    }
    described = json.dumps([str(builder.data_dir), str(builder.version), sizes, written])
    fingerprint = hashlib.sha1(described.encode()).hexdigest()[:12]
    name = (
        f"{builder.name}-{'+'.join(splits)}-{image_size}px-v{_CACHE_FORMAT}-{fingerprint}.npz"
    )
    return resolve_cache_dir(cache_dir) / builder.name / name
