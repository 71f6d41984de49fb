"""The class splits of the standard few-shot benchmarks, read from the package's class lists.

The lists live in `tfmeta/data/benchmarks/class_lists/<dataset>/{train,val,test}.txt` (one class per
line, `#` comments citing the source; see the README there): mini-ImageNet (Ravi and
Larochelle 2017, 64/16/20 WordNet ids), CIFAR-FS (Bertinetto et al. 2019, 64/16/20 CIFAR-100
classes), FC100 (Oreshkin et al. 2018, 12/4/4 CIFAR-100 superclasses, so 60/20/20 classes) and
CUB (Hilliard et al. 2018, 100/50/50 CUB-200-2011 classes).
"""

from __future__ import annotations

import functools
from importlib import resources

from tfmeta.data.arguments import check_choice

SPLITS = ("train", "validation", "test")
SPLIT_ALIASES = {"val": "validation"}
DATASETS = ("mini_imagenet", "cifar_fs", "fc100", "cub")
_FILES = {"train": "train", "validation": "val", "test": "test"}


def check_split(split: str) -> str:
    """Returns the canonical split name; "val" means "validation".

    Example:
    >>> check_split("val")
    'validation'
    """
    split = SPLIT_ALIASES.get(split, split) if isinstance(split, str) else split
    return check_choice("split", split, SPLITS)


@functools.cache
def read_class_list(folder: str, name: str) -> tuple[str, ...]:
    """The non-comment lines of `class_lists/<folder>/<name>.txt`, in file order.

    Example:
    >>> len(read_class_list("mini_imagenet", "train"))
    64
    """
    lists = resources.files("tfmeta.data.benchmarks") / "class_lists"
    text = (lists / folder / f"{name}.txt").read_text()
    lines = (line.strip() for line in text.splitlines())
    return tuple(line for line in lines if line and not line.startswith("#"))


def cifar100_classes() -> tuple[tuple[str, str], ...]:
    """CIFAR-100's 100 `(superclass, class)` pairs, in label order (index = fine label).

    Example:
    >>> cifar100_classes()[0]
    ('fruit_and_vegetables', 'apple')
    """
    return tuple(tuple(line.split("/")) for line in read_class_list("cifar100", "classes"))


def split_classes(dataset: str, split: str) -> tuple[str, ...]:
    """The class names of one split of one benchmark, in the class list's order.

    For FC100 the classes are the CIFAR-100 fine classes of the split's superclasses, in
    CIFAR-100 label order.

    Args:
        dataset: "mini_imagenet", "cifar_fs", "fc100" or "cub".
        split: "train", "validation" (or "val") or "test".

    Returns:
        The names: WordNet ids (mini-ImageNet), CIFAR-100 fine class names (CIFAR-FS,
        FC100) or CUB class folders such as "001.Black_footed_Albatross".

    Example:
    >>> [len(split_classes("fc100", split)) for split in SPLITS]
    [60, 20, 20]
    """
    dataset = check_choice("dataset", dataset, DATASETS)
    names = read_class_list(dataset, _FILES[check_split(split)])
    if dataset != "fc100":
        return names
    superclasses = set(names)
    return tuple(name for superclass, name in cifar100_classes() if superclass in superclasses)
