"""A best-effort on-disk cache of NumPy arrays: one uncompressed `.npz` per entry.

The one cache format of every dataset. An entry written with a `key` (everything its
content was built from: the source files' identity, sizes, modes, dtypes and the format's
version) also stores that key and a content checksum of every array; reading it with the
same `key` checks both, plus any expected shapes (row counts included) and dtypes (for
`uint8` images, their value range), and treats a mismatch as a missing entry (with one
warning), so the caller rebuilds it. Temporary files left by a writer that was killed
are removed the next time the cache folder is used.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import warnings
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

_META = "__cache_meta__"
# A temporary file untouched for this long belongs to no live writer (writing an entry
# takes seconds), so it is removed.
STALE_TEMPORARY_SECONDS = 10 * 60

Shapes = Mapping[str, Sequence[int | None]]
DTypes = Mapping[str, np.dtype | type | str]


def load_arrays(
    path: Path,
    *,
    key: str | None = None,
    shapes: Shapes | None = None,
    dtypes: DTypes | None = None,
    validate: Callable[[dict[str, np.ndarray]], str | None] | None = None,
) -> dict[str, np.ndarray] | None:
    """Reads the arrays cached at `path`, or returns `None` if absent, unreadable or wrong.

    An unreadable entry (e.g. truncated by a crash) is reported with a warning and treated
    as absent, so it is rebuilt. With `key`, so is an entry that was not saved with the
    same key, whose content differs from its stored checksums, or (with `shapes`, `dtypes`
    and `validate`) whose arrays do not have the expected shapes or dtypes or fail
    `validate`.

    Args:
        path: The entry's file.
        key: What the entry must have been built from (see `save_arrays`).
        shapes: `{name: shape}` the arrays must have; None in a shape matches any size.
        dtypes: `{name: dtype}` the arrays must have.
        validate: A function of the arrays returning None, or why they are wrong.

    Returns:
        `{name: array}` (without the cache's own metadata), or None.

    Example:
    >>> load_arrays(Path("/nonexistent/entry.npz")) is None
    True
    """
    remove_stale_temporaries(path.parent)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as entry:
            arrays = {name: entry[name] for name in entry.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        warnings.warn(f"Ignoring the unreadable cache file {path}: {error}", stacklevel=2)
        return None
    meta = arrays.pop(_META, None)
    if key is None and shapes is None and dtypes is None and validate is None:
        return arrays
    problem = _problem(arrays, meta, key, shapes, dtypes, validate)
    if problem is not None:
        warnings.warn(f"Rebuilding the cache file {path}: {problem}", stacklevel=2)
        return None
    return arrays


def save_arrays(path: Path, arrays: Mapping[str, np.ndarray], *, key: str | None = None) -> bool:
    """Writes `arrays` to `path` atomically; warns and returns `False` if it cannot.

    The entry is written to a temporary file beside `path` and renamed into place, so
    concurrent readers never see a partial file. With `key` (a description of what the
    arrays were built from), the entry also stores the key and a checksum of each array,
    which `load_arrays(path, key=key)` checks.

    Example:
    >>> import tempfile
    >>> save_arrays(Path(tempfile.mkdtemp()) / "entry.npz", {"x": np.zeros(3)})
    True
    """
    arrays = dict(arrays)
    if key is not None:
        meta = {"key": key, "checksums": {name: _checksum(a) for name, a in arrays.items()}}
        arrays[_META] = np.array(json.dumps(meta, sort_keys=True))
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path.parent)
        with tempfile.NamedTemporaryFile(
            dir=path.parent, prefix=path.name, suffix=".tmp", delete=False
        ) as file:
            temporary = Path(file.name)
            np.savez(file, **arrays)
        temporary.chmod(0o644)
        os.replace(temporary, path)
        return True
    except OSError as error:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        warnings.warn(f"Could not write the cache file {path}: {error}", stacklevel=2)
        return False


def cached_arrays(
    path: Path,
    *,
    key: str,
    build: Callable[[], Mapping[str, np.ndarray]],
    shapes: Shapes | None = None,
    dtypes: DTypes | None = None,
    validate: Callable[[dict[str, np.ndarray]], str | None] | None = None,
) -> dict[str, np.ndarray]:
    """The arrays cached at `path` under `key`, or `build()`'s, which are then cached.

    A missing, unreadable, foreign (another `key`) or wrong entry is rebuilt; an entry
    that cannot be written is only warned about (the built arrays are still returned).

    Example:
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "entry.npz"
    >>> cached_arrays(path, key="k", build=lambda: {"x": np.arange(3)})["x"].tolist()
    [0, 1, 2]
    >>> cached_arrays(path, key="k", build=lambda: {"x": np.zeros(1)})["x"].tolist()
    [0, 1, 2]
    """
    arrays = load_arrays(path, key=key, shapes=shapes, dtypes=dtypes, validate=validate)
    if arrays is not None:
        return arrays
    arrays = {name: np.asarray(array) for name, array in build().items()}
    save_arrays(path, arrays, key=key)
    return arrays


def remove_stale_temporaries(folder: Path, max_age: float = STALE_TEMPORARY_SECONDS) -> None:
    """Removes `*.tmp` files in `folder` that no writer has touched for `max_age` seconds.

    Example:
    >>> remove_stale_temporaries(Path("/nonexistent"))
    """
    if not folder.is_dir():
        return
    now = time.time()
    for temporary in folder.glob("*.tmp"):
        try:
            if now - temporary.stat().st_mtime > max_age:
                temporary.unlink()
        except OSError:
            pass  # Removed by another process, or not ours to remove.


def _checksum(array: np.ndarray) -> str:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{array.dtype.str}{array.shape}".encode())
    digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()


def _problem(arrays, meta, key, shapes, dtypes, validate) -> str | None:
    """Why the entry cannot be used, or None."""
    if key is not None:
        try:
            stored = json.loads(str(meta))
        except (TypeError, ValueError):
            stored = None
        if not isinstance(stored, dict) or stored.get("key") != key:
            return "it was not built from the same source (no or another cache key)"
        checksums = stored.get("checksums", {})
        if set(checksums) != set(arrays):
            return f"it holds arrays {sorted(arrays)}, expected {sorted(checksums)}"
        for name, array in arrays.items():
            if _checksum(array) != checksums[name]:
                return f"the content of {name!r} does not match its checksum"
    for name, shape in (shapes or {}).items():
        if name not in arrays:
            return f"it has no {name!r} array"
        actual = arrays[name].shape
        if len(actual) != len(shape) or any(
            want is not None and want != got for want, got in zip(shape, actual)
        ):
            return f"{name!r} has shape {actual}, expected {tuple(shape)}"
    for name, dtype in (dtypes or {}).items():
        if name not in arrays:
            return f"it has no {name!r} array"
        if arrays[name].dtype != np.dtype(dtype):
            return f"{name!r} has dtype {arrays[name].dtype}, expected {np.dtype(dtype)}"
    if validate is not None:
        return validate(arrays)
    return None
