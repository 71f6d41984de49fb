"""Byte-identical images in an image folder: found once, reported with counts.

The same file stored twice (in two class folders, or twice in one) lets one episode hold
the same example in its support and query sets, under two labels when the classes differ.
tfmeta's choice is to warn with counts, naming a few copies, and keep the data as given:
which label a copy deserves is not the loader's to guess, and dropping images would
change class sizes and the benchmarks' published counts (Tiny ImageNet's training part
holds 20 such pairs across classes). Remove the copies from the folder to silence it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np


def copy_of(encoded: Sequence[bytes]) -> np.ndarray:
    """For each file, the index of the first earlier file with the same bytes, or -1.

    Example:
    >>> copy_of([b"a", b"b", b"a", b"a"]).tolist()
    [-1, -1, 0, 0]
    """
    first: dict[bytes, int] = {}
    result = np.full(len(encoded), -1, dtype=np.int64)
    for index, data in enumerate(encoded):
        digest = hashlib.blake2b(data, digest_size=16).digest()
        earlier = first.setdefault(digest, index)
        if earlier != index:
            result[index] = earlier
    return result


def copies_message(copies: np.ndarray, sizes: np.ndarray, names: Sequence[str],
                   where: str) -> str | None:
    """The warning about the copies `copy_of` found, or None when there are none.

    Args:
        copies: `copy_of`'s result, one entry per image, class by class.
        sizes: Images per class.
        names: Each image's name (relative to the folder), for the examples.
        where: The folder, for the message.

    Example:
    >>> copies_message(np.array([-1, -1, 0]), np.array([2, 1]), ["a/1", "a/2", "b/1"], "f")[:40]
    '1 images of f are byte-identical copies '
    """
    rows = np.flatnonzero(copies >= 0)
    if not rows.size:
        return None
    class_of = np.repeat(np.arange(len(sizes)), sizes)
    across = rows[class_of[rows] != class_of[copies[rows]]]
    shown = ", ".join(f"{names[row]} = {names[copies[row]]}" for row in
                      [*across[:3], *rows[class_of[rows] == class_of[copies[rows]]][:3]][:3])
    return (
        f"{rows.size} images of {where} are byte-identical copies of another image: "
        f"{across.size} of an image of another class and {rows.size - across.size} within "
        f"their class (e.g. {shown}). An episode can hold both copies, the same example in "
        "its support and query sets; remove the copies from the folder to avoid it."
    )
