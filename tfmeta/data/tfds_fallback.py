"""The TensorFlow Datasets fallback of the file loaders, and the error when data is missing.

A loader that finds no files under the data root may read the dataset through TFDS
(which downloads it where a network exists). Where TFDS cannot work (not installed, or a
package its download manager imports is missing), the fallback is not tried at all; either
way a missing dataset fails with one `FileNotFoundError` line that names the folder that
was searched and how to supply the data.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from tfmeta.data.data_dir import DATA_DIR_ENV

T = TypeVar("T")

# Modules a TFDS download needs: tensorflow_datasets, and importlib_resources, which its
# download manager imports (through etils.epath) only when it downloads.
TFDS_MODULES = {"tensorflow_datasets": "tensorflow-datasets",
                "importlib_resources": "importlib_resources"}


def tfds_unavailable_reason() -> str | None:
    """Why a TFDS download cannot work in this Python, or None when it may.

    Example:
    >>> reason = tfds_unavailable_reason()
    >>> reason is None or "pip install" in reason
    True
    """
    for module, package in TFDS_MODULES.items():
        if importlib.util.find_spec(module) is None:
            return (f"the TensorFlow Datasets fallback cannot work here, as `{module}` is not "
                    f"installed (pip install {package})")
    return None


def missing_data_error(dataset: str, searched: Path | None, expected: str, reason: str,
                       title: str | None = None) -> FileNotFoundError:
    """The one-line error for a dataset that is neither under the data root nor in TFDS.

    Args:
        dataset: The dataset's folder name under the data root, e.g. "omniglot".
        searched: The folder searched, or None when no data root was set.
        expected: What the folder should hold, as a phrase.
        reason: Why TFDS did not supply it.
        title: The dataset's name in the message (default: `dataset`).

    Example:
    >>> str(missing_data_error("omniglot", None, "the zips", "offline")).split(":")[0]
    'No data directory was given (argument `data_dir`, or $TFMETA_DATA_DIR)'
    """
    where = (f"No {title or dataset} was found in {searched}" if searched is not None
             else f"No data directory was given (argument `data_dir`, or ${DATA_DIR_ENV})")
    return FileNotFoundError(
        f"{where}: it should hold {expected} under {dataset}/. Put the files there, or set "
        f"`data_dir` (--data_dir) or ${DATA_DIR_ENV} to the folder that holds {dataset}/; "
        f"{reason}."
    )


def read_with_tfds(dataset: str, searched: Path | None, expected: str,
                   read: Callable[[], T], title: str | None = None) -> T:
    """Returns `read()` (a TFDS read), or raises `missing_data_error` when it cannot work.

    `read` is not called where TFDS cannot work (see `tfds_unavailable_reason`), so no
    doomed download starts; any failure of `read` (e.g. no network) is reported the same
    way, with its reason.

    Example:
    >>> read_with_tfds("omniglot", None, "the zips", lambda: 42) == 42 or True
    True
    """
    reason = tfds_unavailable_reason()
    if reason is not None:
        raise missing_data_error(dataset, searched, expected, reason, title)
    try:
        return read()
    except Exception as error:  # noqa: BLE001 - any TFDS failure means "no data here".
        message = " ".join(str(error).split()) or type(error).__name__
        raise missing_data_error(
            dataset, searched, expected,
            f"downloading through TensorFlow Datasets failed too ({message})", title,
        ) from error
