"""Output paths of the commands: checked before any work, written atomically, locked."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Not POSIX: no lock (fcntl is on Linux and macOS).
    fcntl = None

LOCK_FILE = ".tfmeta-train.lock"


def writable_folder(path: str | os.PathLike[str], flag: str) -> Path:
    """Creates the folder `path` if needed and checks that files can be written in it.

    Args:
        path: The folder.
        flag: The flag that names it, for the message (e.g. "model_dir").

    Returns:
        The folder as a `Path`.

    Raises:
        ValueError: If `path` is empty, is a file, or the folder cannot be created or
            written to (read-only file system, permissions, full disk).

    Example:
    >>> writable_folder(tempfile.mkdtemp(), "model_dir").is_dir()
    True

    """
    if not str(path).strip():
        raise ValueError(f"Invalid value for flag `--{flag}`: expected a folder. "
                         f"Received: --{flag}={str(path)!r}")
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"Invalid value for flag `--{flag}`: expected a folder, but it is a "
                         f"file. Received: --{flag}={path}")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        reason = error.strerror or str(error)
        raise ValueError(f"Invalid value for flag `--{flag}`: cannot write in the folder "
                         f"({reason}). Received: --{flag}={path}") from None
    return path


def writable_file(path: str | os.PathLike[str], flag: str) -> Path:
    """Checks that the file `path` can be written (its folder is created), before any work.

    Example:
    >>> writable_file(Path(tempfile.mkdtemp()) / "result.json", "output").name
    'result.json'

    """
    if not str(path).strip():
        raise ValueError(f"Invalid value for flag `--{flag}`: expected a file path. "
                         f"Received: --{flag}={str(path)!r}")
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"Invalid value for flag `--{flag}`: expected a file, but it is a "
                         f"folder. Received: --{flag}={path}")
    writable_folder(path.parent, flag)
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"Invalid value for flag `--{flag}`: the file is not writable. "
                         f"Received: --{flag}={path}")
    return path


def write_text_atomically(path: str | os.PathLike[str], text: str) -> Path:
    """Writes `text` to `path` through a temporary file renamed into place.

    Example:
    >>> write_text_atomically(Path(tempfile.mkdtemp()) / "a.txt", "hi").read_text()
    'hi'

    """
    path = Path(path)
    with replaced_atomically(path) as temporary:
        temporary.write_text(text)
    return path


@contextlib.contextmanager
def replaced_atomically(path: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yields a temporary path beside `path`, renamed onto `path` when the block succeeds.

    On failure (e.g. a full disk) the temporary file is removed and `path` is untouched,
    so a reader never sees a truncated file.

    Example:
    >>> target = Path(tempfile.mkdtemp()) / "b.txt"
    >>> with replaced_atomically(target) as temporary:
    ...     _ = temporary.write_text("ok")
    >>> target.read_text()
    'ok'

    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.partial{suffix}")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


@contextlib.contextmanager
def locked_folder(path: Path, flag: str = "model_dir") -> Iterator[None]:
    """Holds an exclusive lock on the folder `path` (a lock file in it) for the block.

    The operating system releases the lock when the process ends, however it ends, so
    a killed run never leaves a stale lock.

    Raises:
        ValueError: If another process holds the lock.

    Example:
    >>> with locked_folder(Path(tempfile.mkdtemp())):
    ...     pass

    """
    if fcntl is None:
        yield
        return
    lock_path = Path(path) / LOCK_FILE
    with open(lock_path, "a+") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            file.seek(0)
            holder = file.read().strip() or "another process"
            raise ValueError(
                f"Invalid value for flag `--{flag}`: {path} is in use by another tfmeta-train "
                f"({holder}, lock {lock_path}); two runs in one folder would mix their "
                f"checkpoints. Wait for it to finish, or use another --{flag}."
            ) from None
        file.seek(0)
        file.truncate()
        file.write(f"pid {os.getpid()}")
        file.flush()
        try:
            yield
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)
