"""Where datasets are read from and where decoded arrays are cached."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "TFMETA_DATA_DIR"
CACHE_DIR_ENV = "TFMETA_CACHE_DIR"


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """Returns the data root: `data_dir`, else `$TFMETA_DATA_DIR`, else `None`.

    Datasets live in sub-folders of the root, e.g. `<root>/omniglot/`. The root is only
    read, never written.

    Args:
        data_dir: An explicit data root, which wins over the environment variable.

    Returns:
        The data root as an absolute, user-expanded `Path`, or `None` when neither the
        argument nor the environment variable is set.

    Example:
    >>> resolve_data_dir("/data")
    PosixPath('/data')
    """
    if data_dir is None:
        data_dir = os.environ.get(DATA_DIR_ENV) or None
    if data_dir is None:
        return None
    return Path(data_dir).expanduser().absolute()


def resolve_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Returns the folder for decoded-array caches.

    The first that is set wins: `cache_dir`, `$TFMETA_CACHE_DIR`, `$XDG_CACHE_HOME/tfmeta`,
    `~/.cache/tfmeta`. The data root is never used, as it may be read-only.

    Args:
        cache_dir: An explicit cache folder.

    Returns:
        The cache folder as an absolute `Path` (it may not exist yet).

    Example:
    >>> resolve_cache_dir("/tmp/tfmeta-cache")
    PosixPath('/tmp/tfmeta-cache')
    """
    if cache_dir is None:
        cache_dir = os.environ.get(CACHE_DIR_ENV) or None
    if cache_dir is None:
        xdg = os.environ.get("XDG_CACHE_HOME") or None
        base = Path(xdg) if xdg else Path("~/.cache")
        cache_dir = base / "tfmeta"
    return Path(cache_dir).expanduser().absolute()
