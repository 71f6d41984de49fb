"""Omniglot: loading (with caches) and the episodic dataset entry point."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tfmeta.data import array_cache
from tfmeta.data.arguments import (
    check_decoded_size,
    check_image_size,
    check_int_in_range,
    check_seed,
    invalid_value,
)
from tfmeta.data.data_dir import resolve_cache_dir, resolve_data_dir
from tfmeta.data.episode_shape import (
    MAX_QUERIES,
    MAX_SUPPORT,
    MIN_WAYS,
    check_episode_sizes,
    episode_shape,
)
from tfmeta.data.episodes import sampled_episodes
from tfmeta.data.omniglot import source as omniglot_source
from tfmeta.data.omniglot.png_decoding import decode_drawings
from tfmeta.data.omniglot.splits import (
    OmniglotClasses,
    check_scheme,
    check_split,
    split_classes,
)
from tfmeta.data.registry import ClassExamples, DatasetSpec, register

DRAWINGS_PER_CHARACTER = omniglot_source.DRAWINGS_PER_CHARACTER
_CACHE_FORMAT = 2  # 2: entries carry their key and content checksums
_MEMORY_CACHE: dict[tuple[str, int], tuple[np.ndarray, tuple[str, ...], int]] = {}
_MEMORY_CACHE_LOCK = threading.Lock()

PathLike = str | os.PathLike[str]


class OmniglotImages(NamedTuple):
    """All of Omniglot, decoded.

    Attributes:
        images: `[1623, 20, H, W, 1]` ink images (strokes 1.0, background 0.0 as float32;
            255 and 0 as uint8), characters in the order of `characters`.
        characters: `Alphabet/characterNN` names: the 964 background characters, then the
            659 evaluation characters, each half sorted.
        num_background: How many of the characters (the first) are background characters.
    """

    images: np.ndarray
    characters: tuple[str, ...]
    num_background: int


def load_omniglot(
    data_dir: PathLike | None = None,
    image_size: int = 28,
    *,
    cache_dir: PathLike | None = None,
    dtype: str = "float32",
) -> OmniglotImages:
    """Loads every Omniglot drawing, decoded, for your own splits or analyses.

    The first load decodes the 32,460 PNGs and caches the result in
    `<cache_dir>/omniglot/` (see `resolve_cache_dir`: `$TFMETA_CACHE_DIR`, else
    `~/.cache/tfmeta`); later loads read that file, and loads in the same process reuse
    the arrays in memory. The data folder itself is only read.

    Args:
        data_dir: The data root holding `omniglot/`; defaults to `$TFMETA_DATA_DIR`. Without
            either, or without Omniglot in it, TensorFlow Datasets is tried.
        image_size: Side of the square images, e.g. 28 (default), 84 or 105 (original).
        cache_dir: Where decoded arrays are cached.
        dtype: "float32" (ink in [0, 1]) or "uint8" (ink in 0..255, 4x less memory).

    Returns:
        An `OmniglotImages` with images `[1623, 20, image_size, image_size, 1]`.

    Raises:
        FileNotFoundError: When no Omniglot can be found or downloaded.
        ValueError: For bad arguments, or a corrupt or incomplete archive.

    Example:
    >>> data = load_omniglot(image_size=28)  # doctest: +SKIP
    >>> data.images.shape, data.characters[0]  # doctest: +SKIP
    ((1623, 20, 28, 28, 1), 'Alphabet_of_the_Magi/character01')
    """
    image_size = check_image_size(image_size)
    if dtype not in ("float32", "uint8"):
        raise invalid_value("dtype", "'float32' or 'uint8'", dtype)
    source = omniglot_source.find_source(resolve_data_dir(data_dir))
    ink, characters, num_background = _load_ink(source, image_size, cache_dir)
    images = ink if dtype == "uint8" else ink.astype(np.float32) / np.float32(255.0)
    return OmniglotImages(images, characters, num_background)


def omniglot(
    split: str = "train",
    ways: int | None = 5,
    shots: int | None = 1,
    queries: int | None = 15,
    meta_batch_size: int = 32,
    image_size: int = 28,
    scheme: str = "vinyals",
    seed: int = 0,
    data_dir: PathLike | None = None,
    *,
    rotations: bool | None = None,
    cache_dir: PathLike | None = None,
    deterministic: bool = True,
    max_ways: int | None = None,
    max_support: int = MAX_SUPPORT,
    max_queries: int = MAX_QUERIES,
) -> tf.data.Dataset:
    """Endless N-way K-shot episodes of Omniglot characters.

    Each element is `(inputs, query_y)`: `inputs["support_x"]` `[B, N*K, H, H, 1]` float32
    (strokes 1.0 on 0.0), `inputs["support_y"]` `[B, N*K]` int32, `inputs["query_x"]`
    `[B, N*Q, H, H, 1]` and `query_y` `[B, N*Q]` int32, with `H = image_size` and static
    shapes. Classes are characters, or characters at a rotation; labels are a random
    permutation of `0..N-1` per episode and the support and query sets are shuffled (see
    `tfmeta.data.episodes`). Episodes depend only on `seed` and their position.

    Split schemes (see `tfmeta.data.omniglot_splits`): "vinyals" (default; 4,112 / 688 /
    1,692 classes, from `<omniglot>/splits/vinyals/*.txt` or the rule they follow), "maml"
    (1,100 / 100 / 423 characters, seeded shuffle) and "lake" (background 964 / evaluation
    659; no validation split).

    `ways=None, shots=None, queries=None` give Meta-Dataset's variable episodes, padded
    with label -1 (see `tfmeta.data.episodes`).

    Args:
        split: "train", "validation" (alias "val") or "test".
        ways: Classes per episode, N, or None (sampled per episode).
        shots: Support drawings per class, K, or None (sampled per episode and class).
        queries: Query drawings per class, Q (`shots + queries <= 20`), or None.
        meta_batch_size: Episodes per element, B.
        image_size: Side of the square images.
        scheme: The class split: "vinyals", "maml" or "lake".
        seed: Integer seed of the episode stream.
        data_dir: The data root holding `omniglot/`; defaults to `$TFMETA_DATA_DIR` (see
            `load_omniglot`).
        rotations: Whether characters rotated by 90, 180 and 270 degrees are classes of
            their own. `None` (default) follows the scheme: on for "vinyals" and "maml"
            (every split), off for "lake".
        cache_dir: Where decoded images are cached (see `load_omniglot`).
        deterministic: Whether the parallel sampler keeps element order.
        max_ways: With `ways=None`, the most ways (default `min(50, classes)`).
        max_support: With `shots=None`, the most support drawings of an episode.
        max_queries: With `queries=None`, the most query drawings per class.

    Returns:
        An endless `tf.data.Dataset` of meta-batches.

    Raises:
        FileNotFoundError: When no Omniglot can be found or downloaded.
        ValueError: For a bad argument (e.g. more `ways` than the split has classes), or
            a corrupt or incomplete archive.

    Example:
    >>> dataset = omniglot("train", ways=5, shots=1, queries=15)  # doctest: +SKIP
    >>> inputs, query_y = next(iter(dataset))  # doctest: +SKIP
    >>> inputs["support_x"].shape, query_y.shape  # doctest: +SKIP
    (TensorShape([32, 5, 28, 28, 1]), TensorShape([32, 75]))
    """
    scheme = check_scheme(scheme)
    split = check_split(split, scheme)
    ways, shots, queries = check_episode_sizes(ways, shots, queries)
    meta_batch_size = check_int_in_range("meta_batch_size", meta_batch_size)
    image_size = check_image_size(image_size)
    seed = check_seed(seed)
    if rotations is not None and not isinstance(rotations, bool):
        raise invalid_value("rotations", "True, False or None (the scheme's default)", rotations)
    variable = {"max_ways": max_ways, "max_support": max_support, "max_queries": max_queries}
    # The checks that need no data, before any is read (20 drawings per class).
    episode_shape(ways, shots, queries, [DRAWINGS_PER_CHARACTER] * (ways or MIN_WAYS),
                  classes_reason="", size_reason="drawings per character",
                  **{**variable, "max_ways": None})

    examples = split_examples(split, data_dir, image_size, scheme, rotations=rotations,
                              cache_dir=cache_dir)
    shape = episode_shape(ways, shots, queries, examples.sizes,
                          classes_reason=f"the number of classes in split '{split}'",
                          size_reason="drawings per character", **variable)
    return sampled_episodes(examples.examples, examples.offsets, examples.sizes, shape,
                            meta_batch_size, seed, scale=examples.scale,
                            deterministic=deterministic)


def split_examples(
    split: str = "train",
    data_dir: PathLike | None = None,
    image_size: int = 28,
    scheme: str = "vinyals",
    *,
    rotations: bool | None = None,
    cache_dir: PathLike | None = None,
) -> ClassExamples:
    """Every drawing of a split's classes (rotations applied), as `ClassExamples`.

    What `omniglot` samples episodes from and `tfmeta.data.batches` pre-trains on:
    `examples` `[C * 20, H, H, 1]` uint8 ink (scale 1/255), 20 drawings per class.

    Example:
    >>> examples = split_examples("test", image_size=28)  # doctest: +SKIP
    >>> examples.examples.shape  # doctest: +SKIP
    (33840, 28, 28, 1)
    """
    scheme = check_scheme(scheme)
    split = check_split(split, scheme)
    image_size = check_image_size(image_size)
    source = omniglot_source.find_source(resolve_data_dir(data_dir))
    ink, characters, num_background = _load_ink(source, image_size, cache_dir)
    splits_dir = source.omniglot_dir / "splits" / "vinyals" if source.omniglot_dir else None
    classes = split_classes(characters, num_background, scheme, split, rotations, splits_dir)
    count = len(classes.characters)
    return ClassExamples(
        examples=_materialize(ink, classes).reshape([-1, image_size, image_size, 1]),
        offsets=np.arange(count) * DRAWINGS_PER_CHARACTER,
        sizes=np.full(count, DRAWINGS_PER_CHARACTER),
        scale=1.0 / 255.0,
    )


def clear_memory_cache() -> None:
    """Forgets the decoded arrays kept in this process (the disk cache stays).

    Example:
    >>> clear_memory_cache()
    """
    with _MEMORY_CACHE_LOCK:
        _MEMORY_CACHE.clear()


def cache_path(
    source: omniglot_source.OmniglotSource, image_size: int, cache_dir: PathLike | None = None
) -> Path:
    """The disk-cache file of `source` decoded at `image_size`.

    Example:
    >>> cache_path(omniglot_source.find_source(None), 28, "/tmp/c").name
    'omniglot-28px-v2-5ecc22c26fd0.npz'
    """
    name = f"omniglot-{image_size}px-v{_CACHE_FORMAT}-{source.fingerprint()}.npz"
    return resolve_cache_dir(cache_dir) / "omniglot" / name


def _materialize(ink: np.ndarray, classes: OmniglotClasses) -> np.ndarray:
    """The split's classes as one `uint8` array `[C, 20, H, H, 1]`, rotations applied.

    Rotating once here, rather than per episode after the gather, keeps the sampler a
    plain gather (several times faster); at 28 px the largest split takes about 70 MB.
    """
    images = ink[classes.characters]
    for turns in (1, 2, 3):
        rotated = classes.turns == turns
        if rotated.any():
            images[rotated] = np.rot90(images[rotated], turns, axes=(2, 3))
    return images


def _load_ink(
    source: omniglot_source.OmniglotSource, image_size: int, cache_dir: PathLike | None
) -> tuple[np.ndarray, tuple[str, ...], int]:
    """`uint8` ink `[characters, 20, H, H, 1]`, names and background count, cached twice."""
    key = (source.fingerprint(), image_size)
    with _MEMORY_CACHE_LOCK:
        if key in _MEMORY_CACHE:
            return _MEMORY_CACHE[key]
        path = cache_path(source, image_size, cache_dir)
        # The entry must come from this source at this size and hold a whole Omniglot;
        # anything else (a stale, foreign or damaged file) is rebuilt.
        counts = omniglot_source.EXPECTED_CHARACTERS
        total = sum(counts.values())
        check_decoded_size(total * DRAWINGS_PER_CHARACTER, image_size, 1, "Omniglot")
        cache_key = f"omniglot-v{_CACHE_FORMAT}:{source.fingerprint()}:{image_size}px"
        entry = array_cache.load_arrays(
            path,
            key=cache_key,
            shapes={
                "images": (total, DRAWINGS_PER_CHARACTER, image_size, image_size, 1),
                "characters": (total,),
                "num_background": (),
            },
            dtypes={"images": np.uint8},
            validate=lambda arrays: _cache_problem(arrays, counts["background"]),
        )
        if entry is not None:
            loaded = (
                entry["images"],
                tuple(str(name) for name in entry["characters"]),
                int(entry["num_background"]),
            )
        else:
            raw = omniglot_source.read_source(source, searched=source.omniglot_dir)
            ink = decode_drawings(raw.drawings, image_size, origin=raw.origin)
            ink = ink.reshape([len(raw.characters), DRAWINGS_PER_CHARACTER, *ink.shape[1:]])
            loaded = (ink, tuple(raw.characters), raw.num_background)
            array_cache.save_arrays(
                path,
                {
                    "images": ink,
                    "characters": np.array(raw.characters),
                    "num_background": np.array(raw.num_background),
                },
                key=cache_key,
            )
        loaded[0].setflags(write=False)
        _MEMORY_CACHE[key] = loaded
        return loaded


def _cache_problem(arrays: dict[str, np.ndarray], num_background: int) -> str | None:
    if int(arrays["num_background"]) != num_background:
        return f"it has {int(arrays['num_background'])} background characters, expected " \
               f"{num_background}"
    return None


def _build_split(split, ways, shots, queries, meta_batch_size, seed, data_dir, **options):
    return omniglot(split, ways=ways, shots=shots, queries=queries,
                    meta_batch_size=meta_batch_size, seed=seed, data_dir=data_dir, **options)


SPEC = register(
    DatasetSpec(
        name="omniglot",
        build=_build_split,
        task="classification",
        example="image",
        options=("image_size", "scheme"),
        example_shape=lambda options: (options.get("image_size", 28),) * 2 + (1,),
        description="Omniglot handwritten characters (Lake et al. 2015), greyscale.",
        classes=lambda split, data_dir, **options: split_examples(split, data_dir, **options),
    )
)
