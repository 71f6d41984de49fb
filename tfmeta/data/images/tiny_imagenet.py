"""Tiny ImageNet few-shot episodes: a thin use of `tfmeta.data.image_folder`.

Tiny ImageNet (Le and Yang, "Tiny ImageNet Visual Recognition Challenge", Stanford CS231n,
2015) has 200 ImageNet classes of 500 64x64 training JPEGs each (1,821 of them greyscale,
converted to RGB). Under a data root it is looked for in `<root>/tiny_imagenet/` as:

- the zip `tiny-imagenet-200-train.zip` (its training part) or the official
  `tiny-imagenet-200.zip`, both in the official layout
  `tiny-imagenet-200/train/<wnid>/images/<wnid>_<n>.JPEG`, or
- their extracted folder `tiny-imagenet-200/` (holding `train/<wnid>/images/`),

taken in that order. The few-shot class split is read from
`<root>/tiny_imagenet/splits/fewshot/{train,val,test}.txt` (120 / 40 / 40 wnids, disjoint:
the sorted 200 wnids shuffled with Python's `random.Random(0)`, a split of this project); it
is checked (sizes, disjointness, and the `SHA256SUMS` lines of the split files when that
file is there) before any image is read. Examples are RGB float32 in `[0, 1]` (pixel / 255).
"""

from __future__ import annotations

import os
from pathlib import Path

import tensorflow as tf

from tfmeta.data.arguments import check_choice, check_image_size
from tfmeta.data.checksums import verify_file
from tfmeta.data.data_dir import DATA_DIR_ENV, resolve_data_dir
from tfmeta.data.episode_shape import MAX_QUERIES, MAX_SUPPORT
from tfmeta.data.images.image_folder import image_folder, image_folder_classes, read_class_list
from tfmeta.data.registry import ClassExamples, DatasetSpec, register

SPLIT_FILES = {"train": "train.txt", "validation": "val.txt", "test": "test.txt"}
SPLIT_SIZES = {"train": 120, "validation": 40, "test": 40}
ARCHIVES = ("tiny-imagenet-200-train.zip", "tiny-imagenet-200.zip")
FOLDER = "tiny-imagenet-200"
TRAIN_FOLDER = "tiny-imagenet-200/train"

PathLike = str | os.PathLike[str]


def tiny_imagenet(
    split: str = "train",
    ways: int | None = 5,
    shots: int | None = 1,
    queries: int | None = 15,
    meta_batch_size: int = 4,
    image_size: int = 64,
    seed: int = 0,
    data_dir: PathLike | None = None,
    *,
    cache_dir: PathLike | None = None,
    deterministic: bool = True,
    max_ways: int | None = None,
    max_support: int = MAX_SUPPORT,
    max_queries: int = MAX_QUERIES,
) -> tf.data.Dataset:
    """Endless N-way K-shot episodes of Tiny ImageNet classes (RGB, `[0, 1]`).

    Each element is `(inputs, query_y)` with `inputs["support_x"]` `[B, N*K, H, H, 3]`
    float32, `inputs["support_y"]` `[B, N*K]` int32, `inputs["query_x"]`
    `[B, N*Q, H, H, 3]` and `query_y` `[B, N*Q]` int32, `H = image_size` (64 is the native
    size; others are resized). The 100,000 images are decoded once and cached (see
    `tfmeta.data.load_image_folder`).

    Args:
        split: "train" (120 classes), "validation" (alias "val"; 40) or "test" (40).
        ways: Classes per episode, N, or None (sampled per episode; see
            `tfmeta.data.episodes` for variable episodes).
        shots: Support images per class, K, or None (sampled).
        queries: Query images per class, Q (`shots + queries <= 500`), or None (sampled).
        meta_batch_size: Episodes per element, B.
        image_size: Side of the square images.
        seed: Integer seed of the episode stream.
        data_dir: The data root holding `tiny_imagenet/`; defaults to `$TFMETA_DATA_DIR`.
        cache_dir: Where decoded images are cached.
        deterministic: Whether the parallel sampler keeps element order.
        max_ways: With `ways=None`, the most ways (default `min(50, classes)`).
        max_support: With `shots=None`, the most support examples of an episode.
        max_queries: With `queries=None`, the most query examples per class.

    Returns:
        An endless `tf.data.Dataset` of meta-batches.

    Raises:
        FileNotFoundError: When the data or the split files are not there.
        ValueError: For a bad argument or inconsistent split files.

    Example:
    >>> dataset = tiny_imagenet("train", ways=5, shots=1, queries=15)  # doctest: +SKIP
    >>> inputs, query_y = next(iter(dataset))  # doctest: +SKIP
    >>> inputs["support_x"].shape  # doctest: +SKIP
    TensorShape([4, 5, 64, 64, 3])
    """
    image_size = check_image_size(image_size)  # before the data is looked for
    source, subdir, class_lists, split = _locate(split, data_dir)
    return image_folder(
        source, ways, shots, queries, meta_batch_size, image_size, classes=class_lists,
        seed=seed, split=split, subdir=subdir, cache_dir=cache_dir, deterministic=deterministic,
        max_ways=max_ways, max_support=max_support, max_queries=max_queries,
    )


def tiny_imagenet_classes(
    split: str = "train",
    data_dir: PathLike | None = None,
    image_size: int = 64,
    *,
    cache_dir: PathLike | None = None,
) -> ClassExamples:
    """Every image of a split's classes, as `ClassExamples` (what pre-training reads).

    `examples` is the decoded tensor that `tiny_imagenet` episodes of the same size read:
    `[100000, H, H, 3]` uint8 (scale 1/255), the split's 500 images a class at `offsets`.

    Example:
    >>> examples = tiny_imagenet_classes("train", image_size=32)  # doctest: +SKIP
    >>> len(examples.sizes), int(examples.sizes.sum())  # doctest: +SKIP
    (120, 60000)
    """
    image_size = check_image_size(image_size)
    source, subdir, class_lists, split = _locate(split, data_dir)
    return image_folder_classes(source, image_size, class_lists, split=split, subdir=subdir,
                                cache_dir=cache_dir)


def _locate(split: str, data_dir: PathLike | None):
    """The images, their class folder, the split's class lists and the canonical split."""
    split = {"val": "validation"}.get(split, split)
    check_choice("split", split, tuple(SPLIT_FILES))
    folder = tiny_imagenet_dir(data_dir)
    source, subdir = find_images(folder)
    class_lists = {name: list(names) for name, names in split_classes(folder).items()}
    return source, subdir, class_lists, split


def tiny_imagenet_dir(data_dir: PathLike | None = None) -> Path:
    """The `tiny_imagenet/` folder of the data root.

    Raises:
        FileNotFoundError: When no data root is set or it has no `tiny_imagenet/`.
    """
    root = resolve_data_dir(data_dir)
    if root is None:
        raise FileNotFoundError(
            "Tiny ImageNet needs a data root: pass data_dir (--data_dir) or set "
            f"${DATA_DIR_ENV} to the folder holding tiny_imagenet/."
        )
    folder = root / "tiny_imagenet"
    if not folder.is_dir():
        raise FileNotFoundError(f"No Tiny ImageNet: the folder {folder} does not exist.")
    return folder


def find_images(folder: Path) -> tuple[Path, str]:
    """The zip or extracted folder holding the images, and the class folder inside it."""
    for name in ARCHIVES:
        if (folder / name).is_file():
            return folder / name, TRAIN_FOLDER
    if (folder / TRAIN_FOLDER).is_dir():
        return folder, TRAIN_FOLDER
    raise FileNotFoundError(
        f"No Tiny ImageNet images in {folder}: expected {' or '.join(ARCHIVES)} or the "
        f"extracted folder {TRAIN_FOLDER}/."
    )


def split_classes(folder: Path) -> dict[str, tuple[str, ...]]:
    """Reads and checks the few-shot class split `<folder>/splits/fewshot/*.txt`.

    Raises:
        FileNotFoundError: When a split file is missing.
        ValueError: When a split has the wrong size, two splits share a class, or a file
            does not match its `SHA256SUMS` line.
    """
    splits_dir = folder / "splits" / "fewshot"
    classes = {}
    for split, name in SPLIT_FILES.items():
        path = splits_dir / name
        if path.is_file():
            verify_file(path, folder)
        names = read_class_list(path)
        if len(names) != SPLIT_SIZES[split] or len(set(names)) != len(names):
            raise ValueError(
                f"Invalid split file {path}: expected {SPLIT_SIZES[split]} distinct class ids. "
                f"Received: {len(names)} lines, {len(set(names))} distinct"
            )
        classes[split] = tuple(names)
    for first, second in (("train", "validation"), ("train", "test"), ("validation", "test")):
        shared = sorted(set(classes[first]) & set(classes[second]))
        if shared:
            raise ValueError(
                f"Invalid split files in {splits_dir}: the {first} and {second} splits share "
                f"the classes {shared[:5]}."
            )
    return classes


def _build_split(split, ways, shots, queries, meta_batch_size, seed, data_dir, **options):
    return tiny_imagenet(split, ways=ways, shots=shots, queries=queries,
                         meta_batch_size=meta_batch_size, seed=seed, data_dir=data_dir,
                         **options)


SPEC = register(
    DatasetSpec(
        name="tiny_imagenet",
        build=_build_split,
        task="classification",
        example="image",
        options=("image_size",),
        example_shape=lambda options: (options.get("image_size", 64),) * 2 + (3,),
        description="Tiny ImageNet (Le and Yang 2015), 64x64 RGB, 120/40/40 few-shot classes.",
        classes=lambda split, data_dir, **options: tiny_imagenet_classes(
            split, data_dir, **options),
    )
)
