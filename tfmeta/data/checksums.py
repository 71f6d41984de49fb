"""Checking data files against the checksums and sizes their data folder promises.

A data folder may ship a `SHA256SUMS` file (the output of `sha256sum`, paths relative to
the folder, optionally starting with `./`). A file it lists must match; a file it does not
list is not checked. Known sizes (classes per split, lines per split file) are checked
with `check_count`, so a truncated file never silently changes a benchmark.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

SUMS_FILE = "SHA256SUMS"


def read_sha256sums(folder: str | os.PathLike[str]) -> dict[str, str]:
    """`{relative path: sha256 hex}` from `<folder>/SHA256SUMS` (empty if there is none).

    Example:
    >>> read_sha256sums("/nonexistent")
    {}
    """
    path = Path(folder) / SUMS_FILE
    if not path.is_file():
        return {}
    sums = {}
    for line in path.read_text().splitlines():
        digest, _, name = line.strip().partition(" ")
        name = name.strip().lstrip("*")
        if len(digest) == 64 and name:
            sums[name.removeprefix("./")] = digest.lower()
    return sums


def verify_file(path: str | os.PathLike[str], folder: str | os.PathLike[str]) -> bool:
    """Checks `path` against `<folder>/SHA256SUMS` when that file lists it.

    Args:
        path: A file inside `folder`.
        folder: The data folder that may hold `SHA256SUMS`.

    Returns:
        True if the file was listed (and matched), False if it is not listed.

    Raises:
        ValueError: If the file's SHA-256 differs from the listed one.

    Example:
    >>> verify_file("/nonexistent/a.zip", "/nonexistent")
    False
    """
    path, folder = Path(path), Path(folder)
    try:
        name = path.resolve().relative_to(folder.resolve()).as_posix()
    except ValueError:
        return False
    expected = read_sha256sums(folder).get(name)
    if expected is None:
        return False
    stat = path.stat()
    actual = _sha256(str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if actual != expected:
        raise ValueError(
            f"The data file {path} does not match its checksum in {folder / SUMS_FILE} "
            f"(expected SHA-256 {expected[:12]}..., found {actual[:12]}...): it is truncated "
            "or modified. Replace it with a good copy."
        )
    return True


def check_count(what: str, found: int, expected: int, origin: str | os.PathLike[str]) -> None:
    """Raises a `ValueError` when `found` differs from the known size `expected`.

    Example:
    >>> check_count("classes in split 'test'", 1692, 1692, "test.txt")
    """
    if found != expected:
        raise ValueError(
            f"{origin} has {found:,} {what}, expected {expected:,}: the data is truncated or "
            "modified. Replace it with a good copy."
        )


@functools.lru_cache(maxsize=64)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    """The file's SHA-256 (cached per path, size and modification time)."""
    del size, mtime_ns  # Part of the cache key only.
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
