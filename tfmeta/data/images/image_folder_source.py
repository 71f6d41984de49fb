"""Finding the images of a class-per-folder image collection, in a folder or a zip.

The layout is `<root>/<class>/<image>`: every sub-folder of the root is a class, and every
file with an image extension (`.jpg`, `.jpeg`, `.png`, `.bmp`, `.gif`, any case) below it,
at any depth, is one of its images (so `<class>/images/<image>`, Tiny ImageNet's layout,
works too). Other files (e.g. bounding-box text files) and hidden files and folders (names
starting with "." or "__MACOSX") are not images and are passed over. The root may be a
folder or a zip archive of that layout; inside a zip, the root is `subdir` or, when every
entry lies in one top-level folder (as when a folder is zipped), that folder.

Only regular files are read (after following symbolic links): a FIFO, a device (a link to
`/dev/zero` named `.png`), a socket, a dangling or self-referencing link, an unreadable
folder and a link back to a folder already listed (a loop) are skipped, with one warning
naming them. An image file, or a zip member once decompressed, may hold at most
`MAX_FILE_BYTES` (64 MiB); a larger one is an error naming it, found from the listing
before any image is read, and every read stops at that bound whatever the file claims.
"""

from __future__ import annotations

import errno
import hashlib
import json
import mmap
import os
import stat
import struct
import warnings
import zipfile
import zlib
from collections import defaultdict
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from tfmeta.data.arguments import invalid_value

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
# The most bytes one image file (or decompressed zip member) may hold: a 24-megapixel JPEG
# is about 10 MB, and a PNG of 8192 x 8192 pixels (the decoding bound) rarely more.
MAX_FILE_BYTES = 64 * 2**20
_LOCAL_HEADER_SIZE = 30

PathLike = str | os.PathLike[str]


class ImageFolderListing(NamedTuple):
    """Every class and image file of an image collection.

    Attributes:
        path: The folder or zip given.
        root: The class folder's path inside `path` ("" for `path` itself), POSIX style.
        classes: Class names (sub-folder names), sorted.
        files: Per class, its image files (relative to the root, POSIX style), sorted.
        empty: Classes whose folder holds no image file, sorted.
        fingerprint: A short hash of what the listing was built from (names, sizes and
            modification times), naming caches of the decoded images.
    """

    path: Path
    root: str
    classes: tuple[str, ...]
    files: tuple[tuple[str, ...], ...]
    empty: tuple[str, ...]
    fingerprint: str

    @property
    def is_zip(self) -> bool:
        return self.path.is_file()

    def describe(self, relative: str) -> str:
        """Where the file `relative` (to the root) is, for messages."""
        inner = str(PurePosixPath(self.root, relative)) if self.root else relative
        return f"{self.path}:{inner}" if self.is_zip else str(self.path / inner)


def list_images(path: PathLike, subdir: str | None = None) -> ImageFolderListing:
    """Lists the classes and image files under `path` (a folder or a zip).

    Args:
        path: The folder `<path>/<class>/<image>`, or a zip archive of that layout.
        subdir: The folder inside `path` whose sub-folders are the classes (default:
            `path` itself, or a zip's single top-level folder).

    Returns:
        The listing; classes without images are listed in `empty`.

    Raises:
        FileNotFoundError: When `path` (or `subdir` in it) does not exist, or holds no class
            folder.
        ValueError: When `path` is a file that is not a zip archive.

    Example:
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp()); (root / "cat").mkdir(); (root / "cat/1.png").touch()
    >>> list_images(root).classes
    ('cat',)
    """
    if not isinstance(path, str | os.PathLike) or not str(path):
        raise invalid_value("path", "the path of a folder <class>/<image> or of a zip of one",
                            path)
    subdir = _check_subdir(subdir)
    path = Path(path).expanduser().absolute()
    if path.is_dir():
        root = path / subdir if subdir else path
        if not root.is_dir():
            raise FileNotFoundError(f"The image folder {root} does not exist.")
        if not root.resolve().is_relative_to(path.resolve()):
            raise invalid_value("subdir", f"a folder inside {path} (it links outside)", subdir)
        entries, skipped = _walk_folder(root)
        root_name = subdir or ""
    elif path.is_file():
        if not zipfile.is_zipfile(path):
            raise ValueError(
                "Invalid value for argument `path`: expected a folder of class folders or a zip "
                f"archive of one. Received: path='{path}' (a file that is not a zip archive)"
            )
        entries, root_name = _zip_entries(path, subdir)
        skipped = []
    elif path.exists():
        raise ValueError(
            "Invalid value for argument `path`: expected a folder of class folders or a zip "
            f"archive of one. Received: path='{path}' (neither a folder nor a regular file)"
        )
    else:
        raise FileNotFoundError(
            f"The image folder {path} does not exist (expected a folder <path>/<class>/<image> "
            "or a zip archive of one)."
        )
    groups: dict[str, list[str]] = defaultdict(list)
    folders: set[str] = set()
    where = f"{path}:{root_name}" if path.is_file() else str(path / root_name)
    for relative, is_dir, size, _ in entries:
        parts = PurePosixPath(relative).parts
        if any(_hidden(part) for part in parts):
            continue
        if is_dir or len(parts) > 1:
            folders.add(parts[0])
        if not is_dir and len(parts) > 1 and relative.lower().endswith(IMAGE_EXTENSIONS):
            if size > MAX_FILE_BYTES:
                inner = str(PurePosixPath(root_name, relative))
                raise _too_large(f"{path}:{inner}" if path.is_file() else str(path / inner), size)
            groups[parts[0]].append(relative)
    if skipped:
        shown = "; ".join(skipped[:5]) + (f"; and {len(skipped) - 5} more" if len(skipped) > 5
                                          else "")
        warnings.warn(f"Skipping {len(skipped)} entries of the image folder {where} that are "
                      f"not regular files or folders: {shown}.", stacklevel=2)
    classes = tuple(sorted(folders))
    if not classes:
        raise FileNotFoundError(
            f"The image folder {where} holds no class folders (expected <class>/<image> files "
            f"with extensions {', '.join(IMAGE_EXTENSIONS)})."
        )
    files = tuple(tuple(sorted(groups.get(name, ()))) for name in classes)
    empty = tuple(name for name, images in zip(classes, files, strict=True) if not images)
    return ImageFolderListing(
        path, root_name, classes, files, empty, _fingerprint(path, root_name, entries)
    )


def read_bytes(listing: ImageFolderListing, relatives: list[str]) -> list[bytes]:
    """Reads the files `relatives` (relative to the listing's root) as bytes."""
    if not listing.is_zip:
        base = listing.path / listing.root if listing.root else listing.path
        return [_regular_file_bytes(base / relative) for relative in relatives]
    prefix = f"{listing.root}/" if listing.root else ""
    with zipfile.ZipFile(listing.path) as archive, open(listing.path, "rb") as file:
        # Stored and deflated members are sliced out of one memory map, several times
        # faster than `archive.read` per member; other methods take `archive.read`.
        with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as view:
            return [_member_bytes(archive, view, prefix + relative) for relative in relatives]


def _regular_file_bytes(path: Path) -> bytes:
    """The bytes of `path` if it is a regular file of at most `MAX_FILE_BYTES`.

    Opened without blocking (a FIFO that replaced a file since the listing never hangs),
    checked to be a regular file, and read at most one byte past the bound.
    """
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with open(descriptor, "rb") as file:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise ValueError(f"Cannot read the image {path}: it is not a regular file (a FIFO, "
                             "device or socket); remove it from the image folder.")
        data = file.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise _too_large(str(path), len(data))
    return data


def _too_large(name: str, size: int) -> ValueError:
    at_least = "at least " if size == MAX_FILE_BYTES + 1 else ""
    return ValueError(
        f"The image file {name} holds {at_least}{size:,} bytes, more than the "
        f"{MAX_FILE_BYTES:,} (MAX_FILE_BYTES) tfmeta reads for one image; shrink or remove it."
    )


def _member_bytes(archive: zipfile.ZipFile, view: mmap.mmap, name: str) -> bytes:
    info = archive.getinfo(name)
    where = f"{archive.filename}:{name}"
    if info.file_size > MAX_FILE_BYTES:
        raise _too_large(where, info.file_size)
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or info.flag_bits & 1:
        try:
            with archive.open(name) as member:
                data = member.read(MAX_FILE_BYTES + 1)
        except zipfile.BadZipFile as error:
            raise ValueError(f"The zip member {where} is corrupt ({error}).") from None
        if len(data) > MAX_FILE_BYTES:
            raise _too_large(where, len(data))
        return data
    header = view[info.header_offset:info.header_offset + _LOCAL_HEADER_SIZE]
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    start = info.header_offset + _LOCAL_HEADER_SIZE + name_length + extra_length
    data = view[start:start + min(info.compress_size, MAX_FILE_BYTES + 1)]
    if info.compress_type == zipfile.ZIP_DEFLATED:
        # Bounded whatever the header claims: a member may inflate far beyond its size.
        data = zlib.decompressobj(-15).decompress(data, MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise _too_large(where, len(data))
    if zlib.crc32(data) != info.CRC:
        raise ValueError(f"The zip member {name} of {archive.filename} is corrupt (bad CRC).")
    return data


def _check_subdir(subdir: object) -> str | None:
    """`subdir` as a relative POSIX path inside the root, or None; anything else refused."""
    if subdir is None:
        return None
    expected = "None or a relative folder inside `path` (no '..' part, not absolute)"
    if not isinstance(subdir, str) or not subdir.strip("/") or _leaves_root(subdir):
        raise invalid_value("subdir", expected, subdir)
    return subdir.strip("/")


def _check_member_names(path: Path, names: list[str]) -> None:
    """Refuses a zip whose members have absolute paths or '..' parts (they leave its root)."""
    for name in names:
        if _leaves_root(name):
            raise ValueError(
                f"Invalid zip archive {path}: the member {name!r} has an absolute path or a "
                "'..' part, so it lies outside the archive's folder of classes. Re-create the "
                "archive with relative paths."
            )


def _leaves_root(name: str) -> bool:
    """Whether the relative path `name` is absolute or climbs out with '..' (either slash)."""
    return name.startswith(("/", "\\")) or ".." in PurePosixPath(name.replace("\\", "/")).parts


def _hidden(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"


def _walk_folder(root: Path) -> tuple[list[tuple[str, bool, int, int]], list[str]]:
    """The folders and regular files under `root` (links followed), and what was skipped.

    Entries are `(relative POSIX path, is folder, size, mtime_ns)`; each skipped entry is
    its path and why. Each folder is entered once (by device and inode), so a link loop
    ends at once.
    """
    entries, skipped = [], []
    root_stat = root.stat()
    entered = {(root_stat.st_dev, root_stat.st_ino)}
    stack = [("", root)]
    while stack:
        prefix, folder = stack.pop()
        try:
            with os.scandir(folder) as scan:
                listed = list(scan)
        except OSError as error:
            skipped.append(f"{prefix.rstrip('/')} (unreadable folder: {error.strerror})")
            continue
        for entry in listed:
            relative = f"{prefix}{entry.name}"
            if _hidden(entry.name):
                continue
            try:
                info = entry.stat()  # Follows links.
            except OSError as error:
                why = ("a link to itself or a link loop" if error.errno == errno.ELOOP else
                       "a dangling link" if entry.is_symlink() else error.strerror)
                skipped.append(f"{relative} ({why})")
                continue
            if stat.S_ISDIR(info.st_mode):
                identity = (info.st_dev, info.st_ino)
                if identity in entered:
                    skipped.append(f"{relative} (a link to a folder already listed: a loop)")
                    continue
                entered.add(identity)
                entries.append((relative, True, 0, 0))
                stack.append((relative + "/", Path(entry.path)))
            elif stat.S_ISREG(info.st_mode):
                entries.append((relative, False, info.st_size, info.st_mtime_ns))
            else:
                skipped.append(f"{relative} (not a regular file: {_file_kind(info.st_mode)})")
    return entries, skipped


def _file_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def _zip_entries(path: Path, subdir: str | None) -> tuple[list[tuple[str, bool, int, int]], str]:
    """Entries of the zip below its root folder, and that root."""
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
    _check_member_names(path, [info.filename for info in infos])
    names = [(info.filename.rstrip("/"), info.is_dir(), info.file_size, info.CRC)
             for info in infos if info.filename.rstrip("/")]
    if subdir is None:
        tops = {name.split("/")[0] for name, *_ in names if not _hidden(name.split("/")[0])}
        single_folder = len(tops) == 1 and all(
            "/" in name for name, *_ in names if name.split("/")[0] in tops
        )
        root = tops.pop() if single_folder else ""
    else:
        root = subdir.strip("/")
    prefix = f"{root}/" if root else ""
    entries = [(name[len(prefix):], is_dir, size, crc) for name, is_dir, size, crc in names
               if name.startswith(prefix) and name != root]
    # Folders a zip does not list explicitly still hold their files.
    if root and not any(name == root or name.startswith(prefix) for name, *_ in names):
        raise FileNotFoundError(f"The zip archive {path} has no folder {root!r}.")
    return entries, root


def _fingerprint(path: Path, root: str, entries: list[tuple[str, bool, int, int]]) -> str:
    """A hash of the listing's names, sizes and times (a zip's own size and time)."""
    digest = hashlib.sha1(json.dumps([str(path), root]).encode())
    if path.is_file():
        # An archive changes as a whole: its size and time stand for its members.
        stat = path.stat()
        digest.update(json.dumps([stat.st_size, stat.st_mtime_ns]).encode())
    else:
        digest.update(json.dumps(sorted(entries)).encode())
    return digest.hexdigest()[:12]
