"""A best-effort on-disk cache of NumPy arrays: one uncompressed `.npz` per entry."""

from __future__ import annotations

import os
import tempfile
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np


def load_arrays(path: Path) -> dict[str, np.ndarray] | None:
    """Reads the arrays cached at `path`, or returns `None` if absent or unreadable.

    An unreadable entry (e.g. truncated by a crash) is reported with a warning and treated
    as absent, so it is rebuilt.

    Example:
    >>> load_arrays(Path("/nonexistent/entry.npz")) is None
    True
    """
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as entry:
            return {name: entry[name] for name in entry.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        warnings.warn(f"Ignoring the unreadable cache file {path}: {error}", stacklevel=2)
        return None


def save_arrays(path: Path, arrays: Mapping[str, np.ndarray]) -> bool:
    """Writes `arrays` to `path` atomically; warns and returns `False` if it cannot.

    The entry is written to a temporary file beside `path` and renamed into place, so
    concurrent readers never see a partial file.

    Example:
    >>> import tempfile
    >>> save_arrays(Path(tempfile.mkdtemp()) / "entry.npz", {"x": np.zeros(3)})
    True
    """
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
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
