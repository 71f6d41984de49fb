"""Few-shot episodes from any folder of class folders of images (or a zip of one).

Normalisation, the same for every natural-image dataset of tfmeta: examples are RGB
float32 in `[0, 1]` (pixel / 255), shape `[image_size, image_size, 3]`. Images are decoded
once, stored as `uint8` (4x less memory than float32) and cast and scaled per episode by
the episode sampler.
"""

from __future__ import annotations

import math
import numbers
import os
import threading
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tfmeta.data import array_cache
from tfmeta.data.arguments import (
    check_choice,
    check_decoded_size,
    check_image_size,
    check_int_in_range,
    check_seed,
    invalid_value,
)
from tfmeta.data.data_dir import resolve_cache_dir
from tfmeta.data.episode_shape import (
    MAX_QUERIES,
    MAX_SUPPORT,
    VARIABLE_OPTIONS,
    check_episode_sizes,
    episode_shape,
    min_class_size,
)
from tfmeta.data.episodes import sampled_episodes
from tfmeta.data.images.duplicates import copies_message, copy_of
from tfmeta.data.images.image_decoding import decode_images
from tfmeta.data.images.image_folder_source import ImageFolderListing, list_images, read_bytes
from tfmeta.data.registry import ClassExamples, DatasetSpec, register

SPLITS = ("train", "validation", "test")
DEFAULT_FRACTIONS = (0.6, 0.2, 0.2)
_SPLIT_ALIASES = {"val": "validation", "valid": "validation"}
_CACHE_FORMAT = 2
_MEMORY_CACHE: dict[tuple[str, int], ImageFolderImages] = {}
# One tensor copy of each entry's images, shared by every sampler of the process (train and
# validation episodes of one folder hold 1 copy, not 2; 1.2 GB for Tiny ImageNet at 64 px).
_TENSORS: dict[tuple[str, int], tf.Tensor] = {}
_MEMORY_CACHE_LOCK = threading.Lock()

PathLike = str | os.PathLike[str]
ClassList = Sequence[str] | PathLike


class ImageFolderImages(NamedTuple):
    """Every image of an image folder, decoded.

    Attributes:
        images: `[num_images, H, H, 3]` RGB `uint8`, class by class in the order of
            `classes`.
        classes: The class (folder) names, sorted.
        offsets: `[C]` first row of each class in `images`.
        sizes: `[C]` number of images of each class (0 for an empty folder).
    """

    images: np.ndarray
    classes: tuple[str, ...]
    offsets: np.ndarray
    sizes: np.ndarray

    def class_images(self, name: str) -> np.ndarray:
        """The images of class `name`, `[size, H, H, 3]` uint8."""
        index = self.classes.index(name)
        return self.images[self.offsets[index]:self.offsets[index] + self.sizes[index]]


def load_image_folder(
    path: PathLike,
    image_size: int,
    *,
    subdir: str | None = None,
    cache_dir: PathLike | None = None,
) -> ImageFolderImages:
    """Decodes every image of `<path>/<class>/<image>` (a folder or a zip), with caches.

    The first load decodes the images (see `tfmeta.data.images.image_decoding.decode_images`:
    any colour mode to RGB, resized to `image_size`) and caches them in
    `<cache_dir>/image_folder/` (`tfmeta.data.array_cache`, the cache of every dataset),
    keyed on the files' names, sizes and modification times, `image_size`, the colour mode,
    dtype and format version (see `cache_key`); later loads read that file after checking
    its key, checksum, dtype (`uint8`, so `[0, 255]`), shapes and row count, and rebuild a
    stale or damaged entry with one warning (a changed folder gets a new entry). Loads in
    the same process reuse the arrays in memory. Byte-identical images are reported with
    one warning with counts (see `tfmeta.data.images.duplicates`).

    Args:
        path: The folder or zip archive (see `tfmeta.data.image_folder_source`).
        image_size: Side of the square images.
        subdir: The folder inside `path` whose sub-folders are the classes.
        cache_dir: Where decoded arrays are cached (see `resolve_cache_dir`).

    Returns:
        The decoded images and their class table.

    Raises:
        FileNotFoundError: When `path` does not exist or holds no class folder.
        ValueError: Naming the first image that does not decode.

    Example:
    >>> data = load_image_folder("my_photos", image_size=84)  # doctest: +SKIP
    >>> data.images.shape, data.classes[:2]  # doctest: +SKIP
    ((1200, 84, 84, 3), ('cat', 'dog'))
    """
    image_size = check_image_size(image_size)
    listing = list_images(path, subdir)
    return _load(listing, image_size, cache_dir)


def image_folder(
    path: PathLike,
    ways: int | None,
    shots: int | None,
    queries: int | None,
    meta_batch_size: int,
    image_size: int,
    classes: ClassList | Mapping[str, ClassList] | None = None,
    seed: int = 0,
    *,
    split: str | None = None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    split_seed: int = 0,
    subdir: str | None = None,
    small_classes: str = "error",
    cache_dir: PathLike | None = None,
    deterministic: bool = True,
    max_ways: int | None = None,
    max_support: int = MAX_SUPPORT,
    max_queries: int = MAX_QUERIES,
) -> tf.data.Dataset:
    """Endless N-way K-shot episodes of your own images, `<path>/<class>/<image>`.

    Each element is `(inputs, query_y)` with `inputs["support_x"]` `[B, N*K, H, H, 3]`
    float32 RGB in `[0, 1]` (pixel / 255), `inputs["support_y"]` `[B, N*K]` int32,
    `inputs["query_x"]` `[B, N*Q, H, H, 3]` and `query_y` `[B, N*Q]` int32, `H =
    image_size` (see `tfmeta.data.episodes` for the sampling). JPEG, PNG, BMP and GIF files
    are read, greyscale, palette and RGBA images are converted to RGB, and every image is
    resized to `H x H`; images are decoded once and cached (see `load_image_folder`).

    Which classes give episodes:

    - `classes=None, split=None`: every class.
    - `classes=None, split="train"|"validation"|"test"`: a seeded class split: the sorted
      classes are shuffled with `numpy.random.default_rng(split_seed)` and cut by
      `fractions` (train, validation, test), so the three splits are disjoint and fixed.
    - `classes=[...]` or a text file (one class per line, "#" comments): those classes.
    - `classes={"train": ..., "validation": ..., "test": ...}` (lists or files) with
      `split`: the list of that split.

    A class with fewer than `shots + queries` images cannot give an episode: by default
    (`small_classes="error"`) that is an error naming the classes; with
    `small_classes="skip"` they are left out with a warning naming them. An empty class
    folder among the chosen classes is always an error.

    Args:
        path: The folder of class folders, or a zip archive of one.
        ways: Classes per episode, N.
        shots: Support images per class, K.
        queries: Query images per class, Q.
        meta_batch_size: Episodes per element, B.
        image_size: Side of the square images.
        classes: The classes to use (see above).
        seed: Integer seed of the episode stream.
        split: With `classes=None`, the split of the seeded class split; with a mapping,
            its key.
        fractions: Fractions of the classes in the train, validation and test splits.
        split_seed: Seed of the class split.
        subdir: The folder inside `path` whose sub-folders are the classes (default: `path`
            itself, or a zip's single top-level folder).
        small_classes: "error" or "skip" (see above).
        cache_dir: Where decoded images are cached.
        deterministic: Whether the parallel sampler keeps element order.
        max_ways: With `ways=None`, the most ways (default `min(50, classes)`).
        max_support: With `shots=None`, the most support examples of an episode.
        max_queries: With `queries=None`, the most query examples per class.

    Returns:
        An endless `tf.data.Dataset` of meta-batches.

    Raises:
        FileNotFoundError: When `path` (or a class list file) does not exist.
        ValueError: For a bad argument, a class list naming a class that is not there, an
            empty class, an image that does not decode (named), or too few images.

    Example:
    >>> dataset = image_folder("my_photos", ways=5, shots=1, queries=5,
    ...                        meta_batch_size=4, image_size=84, split="train")  # doctest: +SKIP
    >>> inputs, query_y = next(iter(dataset))  # doctest: +SKIP
    >>> inputs["support_x"].shape  # doctest: +SKIP
    TensorShape([4, 5, 84, 84, 3])
    """
    ways, shots, queries = check_episode_sizes(ways, shots, queries)
    meta_batch_size = check_int_in_range("meta_batch_size", meta_batch_size)
    image_size = check_image_size(image_size)
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool):
        raise invalid_value("seed", "an integer", seed)
    check_choice("small_classes", small_classes, ("error", "skip"))
    listing, chosen = _chosen_classes(path, subdir, classes, split, fractions, split_seed)
    # Every check reads the listing, so a bad argument fails before any image is decoded.
    counts = dict(zip(listing.classes, (len(files) for files in listing.files), strict=True))
    needed = min_class_size(shots, queries)
    small = [name for name in chosen if counts[name] < needed]
    if small:
        examples = {name: counts[name] for name in small[:5]}
        message = (
            f"{len(small)} of the {len(chosen)} classes have fewer than shots + queries = "
            f"{needed} images (e.g. {examples})"
        )
        if small_classes == "error":
            raise ValueError(
                f"Invalid values for arguments `shots` and `queries`: {message}. Lower them, or "
                "pass small_classes='skip' to leave those classes out. Received: "
                f"shots={shots}, queries={queries}"
            )
        warnings.warn(f"Skipping classes of {listing.path}: {message}.", stacklevel=2)
        chosen = tuple(name for name in chosen if counts[name] >= needed)
    what = f"split '{split}'" if split is not None else "the chosen classes"
    shape = episode_shape(
        ways, shots, queries, [counts[name] for name in chosen] or [0],
        classes_reason=f"the number of usable classes in {what}",
        size_reason=f"images of the smallest class of {what}",
        max_ways=max_ways, max_support=max_support, max_queries=max_queries,
    )
    examples = _class_examples(listing, chosen, image_size, cache_dir)
    return sampled_episodes(examples.examples, examples.offsets, examples.sizes, shape,
                            meta_batch_size, seed, scale=examples.scale,
                            deterministic=deterministic)


def image_folder_classes(
    path: PathLike,
    image_size: int,
    classes: ClassList | Mapping[str, ClassList] | None = None,
    *,
    split: str | None = None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    split_seed: int = 0,
    subdir: str | None = None,
    cache_dir: PathLike | None = None,
) -> ClassExamples:
    """Every image of the classes that `image_folder` would sample, as `ClassExamples`.

    What `tfmeta.data.batches` pre-trains on: the classes are chosen exactly as
    `image_folder` chooses them (same `classes`, `split`, `fractions` and `split_seed`), and
    `examples` is the one decoded tensor that episodes of the same folder and size read, so
    pre-training adds no copy of the images. Pixels are uint8, scaled by 1/255 on reading.

    Args:
        path: The folder or zip archive.
        image_size: Side of the square images.
        classes: The classes to use (see `image_folder`).
        split: The split (see `image_folder`).
        fractions: Fractions of the seeded class split.
        split_seed: Seed of the seeded class split.
        subdir: The folder inside `path` whose sub-folders are the classes.
        cache_dir: Where decoded images are cached.

    Returns:
        `ClassExamples` of the chosen classes, in the order they are chosen.

    Raises:
        FileNotFoundError: When `path` (or a class list file) does not exist.
        ValueError: For a bad argument, an unknown or empty class.

    Example:
    >>> examples = image_folder_classes("my_photos", 84, split="train")  # doctest: +SKIP
    >>> examples.sizes[:3]  # doctest: +SKIP
    array([600, 600, 600])
    """
    image_size = check_image_size(image_size)
    listing, chosen = _chosen_classes(path, subdir, classes, split, fractions, split_seed)
    return _class_examples(listing, chosen, image_size, cache_dir)


def _chosen_classes(path, subdir, classes, split, fractions, split_seed):
    """The folder's listing and the chosen classes, none of them empty."""
    check_fractions(fractions)
    check_split_seed(split_seed)
    listing = list_images(path, subdir)
    chosen = choose_classes(listing.classes, classes, split, fractions, split_seed, listing)
    empty = sorted(set(chosen) & set(listing.empty))
    if empty:
        raise ValueError(
            f"Invalid image folder {listing.path}: the class folders {empty} hold no image "
            "(.jpg, .jpeg, .png, .bmp or .gif files)."
        )
    return listing, chosen


def _class_examples(listing: ImageFolderListing, chosen: Sequence[str], image_size: int,
                    cache_dir: PathLike | None) -> ClassExamples:
    """The chosen classes' rows of the decoded images, as `ClassExamples`.

    The images are one tensor per (folder, size), shared by every sampler and pre-training
    stream of a process.
    """
    data = _load(listing, image_size, cache_dir)
    index = np.array([data.classes.index(name) for name in chosen], dtype=np.int64)
    with _MEMORY_CACHE_LOCK:
        key = (listing.fingerprint, image_size)
        if key not in _TENSORS:
            _TENSORS[key] = tf.constant(data.images)
        examples = _TENSORS[key]
    return ClassExamples(examples, data.offsets[index], data.sizes[index], scale=1.0 / 255.0)


def choose_classes(
    available: Sequence[str],
    classes: ClassList | Mapping[str, ClassList] | None,
    split: str | None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    split_seed: int = 0,
    listing: ImageFolderListing | None = None,
) -> tuple[str, ...]:
    """The classes that `image_folder`'s `classes` and `split` arguments choose.

    Example:
    >>> choose_classes(["a", "b", "c", "d", "e"], None, "test", (0.6, 0.2, 0.2))
    ('b',)
    """
    if split is not None:
        split = _SPLIT_ALIASES.get(split, split)
        check_choice("split", split, SPLITS)
    where = f" in {listing.path}" if listing is not None else ""
    if classes is None:
        if split is None:
            return tuple(available)
        return seeded_split(available, fractions, split_seed)[split]
    if isinstance(classes, Mapping):
        named = {_SPLIT_ALIASES.get(key, key): value for key, value in classes.items()}
        if split is None or split not in named:
            raise invalid_value(
                "split", f"one of the keys of `classes` ({', '.join(map(repr, named))})", split
            )
        classes, argument = named[split], f"classes[{split!r}]"
    else:
        if split is not None:
            raise invalid_value(
                "split", "None when `classes` is one list (pass a mapping of split lists)", split
            )
        argument = "classes"
    names, origin = _class_names(classes, argument)
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"Invalid class list {origin}: it names {duplicates} more than once.")
    known = set(available)
    missing = [name for name in names if name not in known]
    if missing:
        raise ValueError(
            f"Invalid class list {origin}: the classes {missing[:5]}"
            f"{' (and more)' if len(missing) > 5 else ''} have no folder{where}."
        )
    if not names:
        raise ValueError(f"Invalid class list {origin}: it names no class.")
    return tuple(names)


def seeded_split(
    classes: Sequence[str], fractions: Sequence[float], seed: int = 0
) -> dict[str, tuple[str, ...]]:
    """Cuts the sorted, seeded-shuffled `classes` into train/validation/test by `fractions`.

    Example:
    >>> seeded_split(["a", "b", "c", "d", "e"], (0.6, 0.2, 0.2))["train"]
    ('c', 'd', 'e')
    """
    fractions = check_fractions(fractions)
    seed = check_split_seed(seed)
    order = np.random.default_rng(int(seed)).permutation(len(classes))
    shuffled = [sorted(classes)[i] for i in order]
    cuts = np.round(np.cumsum(fractions) * len(classes)).astype(int)
    bounds = [0, cuts[0], cuts[1], len(classes)]
    return {name: tuple(sorted(shuffled[bounds[i]:bounds[i + 1]]))
            for i, name in enumerate(SPLITS)}


def check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    """Checks `fractions`: three finite non-negative numbers summing to 1 (NaN refused).

    Example:
    >>> check_fractions((0.6, 0.2, 0.2))
    (0.6, 0.2, 0.2)
    """
    expected = "three finite non-negative fractions (train, validation, test) summing to 1"
    if isinstance(fractions, str | bytes) or not isinstance(fractions, Sequence):
        raise invalid_value("fractions", expected, fractions)
    if len(fractions) != 3 or not all(isinstance(f, numbers.Real) and not isinstance(f, bool)
                                      for f in fractions):
        raise invalid_value("fractions", expected, fractions)
    values = tuple(float(f) for f in fractions)
    if not all(math.isfinite(f) and f >= 0 for f in values) or abs(sum(values) - 1.0) > 1e-6:
        raise invalid_value("fractions", expected, fractions)
    return values


def check_split_seed(split_seed: int) -> int:
    """Checks `split_seed`: an integer >= 0 (NumPy's `default_rng` takes no negative seed).

    Example:
    >>> check_split_seed(3)
    3
    """
    return check_seed(split_seed, "split_seed", low=0)


def read_class_list(path: PathLike) -> list[str]:
    r"""The class names of a split file: one per line; blank lines and "#" comments skipped.

    Example:
    >>> import tempfile
    >>> file = Path(tempfile.mkdtemp()) / "train.txt"; _ = file.write_text("cat\n# x\ndog\n")
    >>> read_class_list(file)
    ['cat', 'dog']
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"The class list file {path} does not exist.")
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def clear_memory_cache() -> None:
    """Forgets the decoded images kept in this process (the disk cache stays).

    Example:
    >>> clear_memory_cache()
    """
    with _MEMORY_CACHE_LOCK:
        _MEMORY_CACHE.clear()
        _TENSORS.clear()


def cache_path(listing: ImageFolderListing, image_size: int, cache_dir: PathLike | None) -> Path:
    """The disk-cache file of `listing` decoded at `image_size`."""
    name = f"{listing.path.stem}-{image_size}px-v{_CACHE_FORMAT}-{listing.fingerprint}.npz"
    return resolve_cache_dir(cache_dir) / "image_folder" / name


def _class_names(classes: ClassList, argument: str) -> tuple[list[str], str]:
    if isinstance(classes, str | os.PathLike):
        return read_class_list(classes), str(classes)
    if not isinstance(classes, Sequence) or not all(isinstance(c, str) for c in classes):
        raise invalid_value(argument, "a list of class names or a class list file", classes)
    return list(classes), f"`{argument}`"


def _load(listing: ImageFolderListing, image_size: int,
          cache_dir: PathLike | None) -> ImageFolderImages:
    key = (listing.fingerprint, image_size)
    with _MEMORY_CACHE_LOCK:
        if key in _MEMORY_CACHE:
            return _MEMORY_CACHE[key]
        sizes = np.array([len(files) for files in listing.files], dtype=np.int64)
        total, num_classes = int(sizes.sum()), len(listing.classes)
        check_decoded_size(total, image_size, 3, str(listing.path))
        relatives = [relative for files in listing.files for relative in files]

        def build() -> dict[str, np.ndarray]:
            encoded = read_bytes(listing, relatives)
            copies = copy_of(encoded)
            images = decode_images(
                encoded, image_size, names=[listing.describe(r) for r in relatives]
            )
            return {"images": images, "classes": np.array(listing.classes), "sizes": sizes,
                    "copy_of": copies}

        # Keyed on everything the content depends on and checked on every read (checksum,
        # shapes with the row count, dtypes: uint8 is the [0, 255] the 1/255 scale expects):
        # a stale, foreign or damaged entry is rebuilt with one warning.
        entry = array_cache.cached_arrays(
            cache_path(listing, image_size, cache_dir),
            key=cache_key(listing, image_size),
            build=build,
            shapes={"images": (total, image_size, image_size, 3), "classes": (num_classes,),
                    "sizes": (num_classes,), "copy_of": (total,)},
            dtypes={"images": np.uint8, "sizes": np.int64, "copy_of": np.int64},
            validate=lambda arrays: _entry_problem(arrays, listing, sizes),
        )
        message = copies_message(entry["copy_of"], sizes, relatives, str(listing.path))
        if message is not None:
            warnings.warn(message, stacklevel=4)
        images = entry["images"]
        images.setflags(write=False)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        loaded = ImageFolderImages(images, listing.classes, offsets, sizes)
        _MEMORY_CACHE[key] = loaded
        return loaded


def cache_key(listing: ImageFolderListing, image_size: int) -> str:
    """What a cache entry of `listing` at `image_size` is built from, as its key.

    The source files' identity (the listing's fingerprint: path, names, sizes and
    modification times, or a zip's size and time), the size, colour mode, dtype, the
    resizing and this format's version.
    """
    return (f"image_folder-v{_CACHE_FORMAT}:{listing.fingerprint}:{image_size}px:rgb:uint8:"
            "antialiased-bilinear")


def _entry_problem(arrays: dict[str, np.ndarray], listing: ImageFolderListing,
                   sizes: np.ndarray) -> str | None:
    if tuple(str(name) for name in arrays["classes"]) != listing.classes:
        return "its classes are not the folder's"
    if not np.array_equal(arrays["sizes"], sizes):
        return "its class sizes are not the folder's"
    copies = arrays["copy_of"]
    if copies.size and (copies.min() < -1 or (copies >= np.arange(copies.size)).any()):
        return "its 'copy_of' table is not valid"
    return None


def _build_split(split, ways, shots, queries, meta_batch_size, seed, data_dir, **options):
    del data_dir  # The folder is the `image_folder` option (`--image_folder`).
    variable = {name: options[name] for name in VARIABLE_OPTIONS if name in options}
    return image_folder(_folder_option(options), ways, shots, queries, meta_batch_size,
                        options.get("image_size", 84), seed=seed, split=split, **variable)


def _folder_option(options: Mapping[str, object]) -> object:
    folder = options.get("image_folder")
    if not folder:
        raise invalid_value(
            "image_folder", "the path of a folder <class>/<image> (or a zip of one)", folder
        )
    return folder


SPEC = register(
    DatasetSpec(
        name="image_folder",
        build=_build_split,
        task="classification",
        example="image",
        options=("image_size", "image_folder"),
        example_shape=lambda options: (options.get("image_size", 84),) * 2 + (3,),
        description="Your own images, <folder>/<class>/<image> (or a zip), RGB; classes "
        "split 60/20/20 by a seeded shuffle.",
        classes=lambda split, data_dir, **options: image_folder_classes(
            _folder_option(options), options.get("image_size", 84), split=split),
        class_splits=lambda data_dir, **options: seeded_split(
            list_images(_folder_option(options)).classes, DEFAULT_FRACTIONS),
    )
)
