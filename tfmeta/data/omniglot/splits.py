"""Omniglot class splits: which (character, rotation) pairs make each split's classes.

Characters are named `Alphabet/characterNN` and listed in the loader's canonical order:
the 964 `images_background` characters, then the 659 `images_evaluation` characters, each
half sorted by alphabet and character. Rotations are quarter turns counter-clockwise
(`rot090` = one turn, as `np.rot90`). Three schemes:

- `"vinyals"` (Vinyals et al. 2016, the Prototypical Networks files): read from
  `<omniglot>/splits/vinyals/{train,val,test}.txt` when present, else derived by the rule
  those files follow (checked equal on the real data): the first 1,200 characters in
  canonical order are meta-training, the other 423 test, and the meta-training characters
  of the alphabets in `VINYALS_VALIDATION_ALPHABETS` are validation. 1,028 / 172 / 423
  characters, x4 rotations = 4,112 / 688 / 1,692 classes. Rotations on by default.
- `"maml"` (Finn et al. 2017, as in cbfinn/maml): all 1,623 character names sorted,
  shuffled with `random.Random(1)`, then the first 1,100 are train, the next 100
  validation and the last 423 test. (cbfinn/maml shuffled an unsorted `os.listdir`, which
  is not reproducible; sorting first makes it so.) Rotations on by default, for every
  split, as the original code rotates at meta-test too: 4,400 / 400 / 1,692 classes.
- `"lake"` (Lake et al. 2015): background = train (964), evaluation = test (659). There is
  no validation split. Rotations off by default.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from tfmeta.data.arguments import check_choice, invalid_value
from tfmeta.data.checksums import check_count, verify_file

SCHEMES = ("vinyals", "maml", "lake")
SPLITS = ("train", "validation", "test")
SPLIT_ALIASES = {"val": "validation"}
DEFAULT_ROTATIONS = {"vinyals": True, "maml": True, "lake": False}

VINYALS_VALIDATION_ALPHABETS = (
    "Armenian",
    "Bengali",
    "Early_Aramaic",
    "Hebrew",
    "Mkhedruli_(Georgian)",
)
VINYALS_META_TRAINING_CHARACTERS = 1200
VINYALS_FILES = {"train": "train.txt", "validation": "val.txt", "test": "test.txt"}
# Classes (character, rotation) each Vinyals file lists: 1,028 / 172 / 423 characters x 4.
VINYALS_CLASSES = {"train": 4112, "validation": 688, "test": 1692}
OMNIGLOT_CHARACTERS = 1623  # 964 background + 659 evaluation

MAML_SHUFFLE_SEED = 1
MAML_TRAIN_CHARACTERS = 1100
MAML_VALIDATION_CHARACTERS = 100

_ALL_TURNS = (0, 1, 2, 3)


class OmniglotClasses(NamedTuple):
    """The classes of one split, in canonical order (character, then rotation).

    Attributes:
        characters: `[C]` int64 indices into the loader's character list.
        turns: `[C]` int32 quarter turns (counter-clockwise) of each class.
    """

    characters: np.ndarray
    turns: np.ndarray


def check_split(split: str, scheme: str = "vinyals") -> str:
    """Returns the canonical name of a split of `scheme`; "val" means "validation".

    Raises:
        ValueError: For an unknown split, or "validation" with scheme "lake".

    Example:
    >>> check_split("val")
    'validation'
    """
    split = SPLIT_ALIASES.get(split, split) if isinstance(split, str) else split
    split = check_choice("split", split, SPLITS)
    if scheme == "lake" and split == "validation":
        raise invalid_value(
            "split", "'train' or 'test' (scheme 'lake' has no validation split)", split
        )
    return split


def check_scheme(scheme: str) -> str:
    """Returns `scheme` if it names a split scheme.

    Example:
    >>> check_scheme("maml")
    'maml'
    """
    return check_choice("scheme", scheme, SCHEMES)


def split_classes(
    characters: Sequence[str],
    num_background: int,
    scheme: str = "vinyals",
    split: str = "train",
    rotations: bool | None = None,
    splits_dir: Path | None = None,
) -> OmniglotClasses:
    """Returns the classes of one split of one scheme.

    Args:
        characters: All character names, `Alphabet/characterNN`, in canonical order.
        num_background: How many of them (the first) are `images_background` characters.
        scheme: "vinyals", "maml" or "lake" (see the module docstring).
        split: "train", "validation" (or "val") or "test".
        rotations: Whether rotated characters are classes of their own; `None` takes the
            scheme's default (`DEFAULT_ROTATIONS`). For "vinyals", `True` keeps the
            rotations its files list and `False` keeps only `rot000`.
        splits_dir: The folder holding the Vinyals files `train.txt`, `val.txt`,
            `test.txt` (used when the file for `split` exists there).

    Returns:
        The split's `OmniglotClasses`.

    Raises:
        ValueError: For an unknown scheme or split, a validation split of "lake", a split
            file naming a character that is not in `characters`, a split file without its
            known number of classes (`VINYALS_CLASSES`) or that does not match the data
            folder's `SHA256SUMS`, or an empty split.

    Example:
    >>> names = [f"A/character{i:02d}" for i in range(1, 11)]
    >>> split_classes(names, 6, scheme="lake", split="test").characters.tolist()
    [6, 7, 8, 9]
    """
    scheme = check_scheme(scheme)
    split = check_split(split, scheme)
    if rotations is None:
        rotations = DEFAULT_ROTATIONS[scheme]
    if not isinstance(rotations, bool | np.bool_):
        raise invalid_value("rotations", "True, False or None (the scheme's default)", rotations)
    turns = _ALL_TURNS if rotations else (0,)
    names = list(characters)
    split_file = splits_dir / VINYALS_FILES[split] if splits_dir is not None else None
    if scheme == "vinyals" and split_file is not None and split_file.is_file():
        # The data folder (two levels up) may list the file in its SHA256SUMS.
        verify_file(split_file, split_file.parent.parent.parent)
        pairs = _read_vinyals_file(split_file, names)
        if len(names) == OMNIGLOT_CHARACTERS:  # the full Omniglot: the files' known sizes
            check_count(f"classes (lines) for split '{split}'", len(pairs),
                        VINYALS_CLASSES[split], split_file)
        pairs = [(index, turn) for index, turn in pairs if turn in turns]
    else:
        if scheme == "vinyals":
            indices = _vinyals_rule(names, split)
        elif scheme == "maml":
            indices = _maml_rule(names, split)
        else:
            indices = _lake_rule(num_background, len(names), split == "train")
        pairs = [(index, turn) for index in indices for turn in turns]
    if not pairs:
        raise ValueError(
            f"Split '{split}' of scheme '{scheme}' has no classes in the loaded Omniglot "
            f"({len(names)} characters)."
        )
    pairs.sort()
    return OmniglotClasses(
        characters=np.array([index for index, _ in pairs], dtype=np.int64),
        turns=np.array([turn for _, turn in pairs], dtype=np.int32),
    )


def _vinyals_rule(names: list[str], split: str) -> list[int]:
    meta_training = range(min(VINYALS_META_TRAINING_CHARACTERS, len(names)))
    if split == "test":
        return list(range(len(meta_training), len(names)))
    validation = set(VINYALS_VALIDATION_ALPHABETS)
    is_validation = [names[index].split("/")[0] in validation for index in meta_training]
    wanted = split == "validation"
    return [index for index in meta_training if is_validation[index] == wanted]


def _maml_rule(names: list[str], split: str) -> list[int]:
    position = {name: index for index, name in enumerate(names)}
    shuffled = sorted(names)
    random.Random(MAML_SHUFFLE_SEED).shuffle(shuffled)
    end_train = MAML_TRAIN_CHARACTERS
    end_validation = end_train + MAML_VALIDATION_CHARACTERS
    chosen = {
        "train": shuffled[:end_train],
        "validation": shuffled[end_train:end_validation],
        "test": shuffled[end_validation:],
    }[split]
    return [position[name] for name in chosen]


def _lake_rule(num_background: int, num_characters: int, train: bool) -> list[int]:
    if train:
        return list(range(num_background))
    return list(range(num_background, num_characters))


def _read_vinyals_file(path: Path, names: list[str]) -> list[tuple[int, int]]:
    """Parses `Alphabet/characterNN/rotDDD` lines into `(character index, turns)` pairs."""
    position = {name: index for index, name in enumerate(names)}
    pairs = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        character, _, rotation = line.rpartition("/")
        degrees = rotation[3:] if rotation.startswith("rot") else ""
        if character not in position or not degrees.isdigit() or int(degrees) % 90:
            raise ValueError(
                f"Line {number} of the split file {path} does not name a class of the loaded "
                f"Omniglot as `Alphabet/characterNN/rotDDD`: {line!r}"
            )
        pairs.append((position[character], int(degrees) // 90 % 4))
    return pairs
