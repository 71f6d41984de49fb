"""The dataset registry: every named episodic dataset, described once.

A dataset is one module of `tfmeta.data` that defines its entry point (e.g.
`tfmeta.data.omniglot`) and registers a `DatasetSpec` for it. The command line
(`--dataset`), the configs, the benchmarks and the tests look datasets up here, so a new
dataset needs no new branch anywhere else.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf

from tfmeta.data.episode_shape import VARIABLE_OPTIONS

TASKS = ("classification", "regression")
EXAMPLES = ("image", "text", "vector")

PathLike = str | os.PathLike[str]


class ClassExamples(NamedTuple):
    """Every example of a split's classes, class by class (what pre-training reads).

    Attributes:
        examples: `[num_examples, *example_shape]`, the classes one after the other.
        offsets: `[C]` first row of each class in `examples`.
        sizes: `[C]` examples of each class.
        scale: Factor applied after the cast to float32 (e.g. 1/255 for uint8 images),
            or None.
    """

    examples: np.ndarray | tf.Tensor
    offsets: np.ndarray
    sizes: np.ndarray
    scale: float | None = None


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """How to build one named dataset's episodes, and what they hold.

    Attributes:
        name: The registry name, e.g. "omniglot" (what `--dataset` takes).
        build: `build(split, ways, shots, queries, meta_batch_size, seed, data_dir, **options)`
            returns the endless episode dataset of `split` (one of `splits`). Datasets
            without classes (regression) ignore `ways`.
        task: "classification" (int32 labels) or "regression" (float32 targets).
        example: "image" (`[H, W, C]` float32), "text" (tf.string scalars) or "vector".
        options: Dataset-specific keyword arguments of `build` (e.g. `("image_size",
            "scheme")`); the command line passes its flags of the same names. Every
            classification dataset also takes `VARIABLE_OPTIONS` (`max_ways`,
            `max_support`, `max_queries`) for variable episodes (`ways`, `shots` or
            `queries` None).
        example_shape: Maps the options to the shape of one example, e.g.
            `{"image_size": 28} -> (28, 28, 1)`; `()` for text.
        splits: The split names `build` accepts.
        description: One line for listings and `--helpfull`.
        classes: Optional `classes(split, data_dir, **options)` returning the split's
            `ClassExamples`, for non-episodic batches (`tfmeta.data.batches`, the
            pre-training baselines); None where the dataset has no classes.
        target_shape: Regression datasets: maps the options to the shape of one target,
            e.g. `(4,)` for a robot's actions; None: `(1,)`.
        texts: Text datasets only: `texts(split, data_dir, **options)` returns every raw
            sentence of `split`, e.g. to adapt a `keras.layers.TextVectorization` vocabulary
            to the meta-training split alone; `None` for other datasets.
        class_splits: Datasets whose class split is derived from the data (an image
            folder's seeded split): `class_splits(data_dir, **options)` returns
            `{split: class names}` without reading any example, which a run records and
            evaluation compares (`tfmeta.data.class_splits`); None where the split is
            fixed by checked-in rules or files.

    Example:
    >>> spec = DatasetSpec(
    ...     name="toy", build=lambda split, ways, shots, queries, meta_batch_size, seed,
    ...     data_dir: None, task="classification", example="vector",
    ...     example_shape=lambda options: (4,))
    >>> spec.regression
    False
    """

    name: str
    build: Callable[..., tf.data.Dataset]
    task: str
    example: str
    example_shape: Callable[[Mapping[str, Any]], tuple[int, ...]]
    options: tuple[str, ...] = ()
    splits: tuple[str, ...] = ("train", "validation", "test")
    description: str = ""
    classes: Callable[..., ClassExamples] | None = None
    texts: Callable[..., Sequence[str]] | None = None
    class_splits: Callable[..., Mapping[str, Sequence[str]]] | None = None
    target_shape: Callable[[Mapping[str, Any]], tuple[int, ...]] | None = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(
                f"Invalid value for argument `task`: expected one of {TASKS}. "
                f"Received: task={self.task!r}"
            )
        if self.example not in EXAMPLES:
            raise ValueError(
                f"Invalid value for argument `example`: expected one of {EXAMPLES}. "
                f"Received: example={self.example!r}"
            )

    @property
    def regression(self) -> bool:
        """Whether the tasks are regression tasks (float targets) rather than classes."""
        return self.task == "regression"

    def targets(self, options: Mapping[str, Any]) -> tuple[int, ...]:
        """The shape of one regression target under `options` (`(1,)` unless declared)."""
        return (1,) if self.target_shape is None else tuple(self.target_shape(options))

    @property
    def all_options(self) -> tuple[str, ...]:
        """`options`, plus `VARIABLE_OPTIONS` for a classification dataset."""
        return self.options + (() if self.regression else VARIABLE_OPTIONS)

    def check_options(self, options: Mapping[str, Any]) -> None:
        """Refuses keyword arguments that are not among this dataset's `all_options`."""
        unknown = sorted(set(options) - set(self.all_options))
        if unknown:
            raise ValueError(
                f"Invalid arguments for dataset {self.name!r}: {unknown} are not among its "
                f"options {list(self.all_options)}."
            )

    def episodes(
        self,
        split: str,
        *,
        ways: int | None,
        shots: int | None,
        queries: int | None,
        meta_batch_size: int,
        seed: int = 0,
        data_dir: PathLike | None = None,
        **options: Any,
    ) -> tf.data.Dataset:
        """Builds the episode dataset of `split`; `options` must be among `all_options`."""
        self.check_options(options)
        return self.build(split, ways, shots, queries, meta_batch_size, seed, data_dir,
                          **options)


_REGISTRY: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
    """Adds `spec` to the registry under `spec.name` and returns it.

    Raises:
        ValueError: If another dataset already has that name.

    Example:
    >>> "omniglot" in list_datasets()
    True
    """
    existing = _REGISTRY.get(spec.name)
    if existing is not None and existing is not spec:
        raise ValueError(f"A dataset named {spec.name!r} is already registered.")
    _REGISTRY[spec.name] = spec
    return spec


def list_datasets() -> tuple[str, ...]:
    """The names of every registered dataset, sorted.

    Example:
    >>> {"omniglot", "sinusoid"} <= set(list_datasets())
    True
    """
    return tuple(sorted(_REGISTRY))


def get_dataset(name: str) -> DatasetSpec:
    """The `DatasetSpec` registered as `name`.

    Raises:
        ValueError: If no dataset has that name (the message lists the names).

    Example:
    >>> get_dataset("sinusoid").regression
    True
    """
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(
            "Invalid value for argument `dataset`: expected one of "
            + ", ".join(list_datasets())
            + f". Received: dataset={name!r}"
        )
    return _REGISTRY[name]


def get_datasets(names: str) -> tuple[DatasetSpec, ...]:
    """The `DatasetSpec`s of one name or of a comma-separated list ("tiny_imagenet,omniglot").

    Several datasets are mixed episode by episode (`tfmeta.data.mix`); they must be distinct
    and of one task and one kind of examples.

    Raises:
        ValueError: For an unknown name, a repeated one, or datasets that cannot be mixed
            (text with images, regression with classification).

    Example:
    >>> [spec.name for spec in get_datasets("tiny_imagenet,omniglot")]
    ['tiny_imagenet', 'omniglot']
    """
    if not isinstance(names, str) or not names.strip():
        return (get_dataset(names),)
    parts = [name.strip() for name in names.split(",")]
    specs = tuple(get_dataset(name) for name in parts)
    if len(set(parts)) != len(parts):
        raise ValueError(
            "Invalid value for argument `dataset`: expected distinct dataset names to mix. "
            f"Received: dataset={names!r}"
        )
    kinds = sorted({f"{spec.example} {spec.task}" for spec in specs})
    if len(kinds) > 1:
        raise ValueError(
            "Invalid value for argument `dataset`: expected datasets of one kind to mix (e.g. "
            f"all image classification), not {' and '.join(kinds)}. Received: dataset={names!r}"
        )
    return specs
