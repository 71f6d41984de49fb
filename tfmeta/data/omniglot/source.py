"""Finding and reading the raw Omniglot drawings (PNG bytes), from files or from TFDS.

Under a data root, Omniglot is looked for in `<root>/omniglot/` (or in `<root>` itself if
it holds the files directly). Each half, background and evaluation, may be the extracted
folder `images_<half>/`, the official zip `images_<half>.zip`, or the same archive named
`omniglot_<half>.zip`, taken in that order. Archive checksums are not checked (repacked
archives are common) unless the folder's own `SHA256SUMS` lists them (as the shipped data
does); the content always is: every character must have exactly 20 PNG drawings
and each half its full number of characters. When no data root is set, or it holds no
Omniglot, the drawings come from TensorFlow Datasets (`tfds` "omniglot"), which downloads
them where a network exists.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
import zlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from tfmeta.data.checksums import verify_file
from tfmeta.data.tfds_fallback import read_with_tfds

HALVES = ("background", "evaluation")
DRAWINGS_PER_CHARACTER = 20
EXPECTED_CHARACTERS = {"background": 964, "evaluation": 659}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TFDS_HALVES = {"background": "train", "evaluation": "test"}


class OmniglotSource(NamedTuple):
    """Where the two halves of Omniglot are.

    Attributes:
        background: The `images_background` folder or zip, or `None` for TFDS.
        evaluation: The `images_evaluation` folder or zip, or `None` for TFDS.
        omniglot_dir: The folder searched (holding the split files), or `None` for TFDS.
    """

    background: Path | None
    evaluation: Path | None
    omniglot_dir: Path | None

    @property
    def is_tfds(self) -> bool:
        return self.background is None

    def fingerprint(self) -> str:
        """A short hash naming this source's content, for cache file names."""
        if self.is_tfds:
            description: object = "tfds:omniglot:3.0.0"
        else:
            description = [_describe_file(path) for path in (self.background, self.evaluation)]
        digest = hashlib.sha1(json.dumps(description).encode()).hexdigest()
        return digest[:12]


class RawOmniglot(NamedTuple):
    """Every drawing of Omniglot as PNG bytes.

    Attributes:
        characters: `Alphabet/characterNN` names: the background characters, then the
            evaluation ones, each half sorted.
        num_background: How many of `characters` (the first) are background characters.
        drawings: `len(characters) * 20` PNG byte strings, 20 per character in order.
        origin: A description of where they were read, for error messages.
    """

    characters: list[str]
    num_background: int
    drawings: list[bytes]
    origin: str


def find_source(root: Path | None) -> OmniglotSource:
    """Locates Omniglot under the data root `root`, or returns the TFDS source.

    Args:
        root: The data root, or `None` when none is set.

    Returns:
        The files of both halves, or a TFDS source when `root` holds no Omniglot at all.

    Raises:
        FileNotFoundError: When only one of the two halves is under `root`.

    Example:
    >>> find_source(None).is_tfds
    True
    """
    if root is None:
        return OmniglotSource(None, None, None)
    omniglot_dir = root / "omniglot"
    if not omniglot_dir.is_dir():
        omniglot_dir = root
    found = {half: _find_half(omniglot_dir, half) for half in HALVES}
    if all(path is None for path in found.values()):
        return OmniglotSource(None, None, omniglot_dir)
    for half, path in found.items():
        if path is None:
            raise FileNotFoundError(
                f"Omniglot in {omniglot_dir} is incomplete: found {found[_other(half)]} but no "
                f"{' or '.join(_candidates(half))} for the {half} characters."
            )
    return OmniglotSource(found["background"], found["evaluation"], omniglot_dir)


def read_source(source: OmniglotSource, searched: Path | None = None) -> RawOmniglot:
    """Reads every drawing from `source` (files, else TFDS).

    Args:
        source: What `find_source` returned.
        searched: The folder that was searched, for the message when TFDS fails.

    Returns:
        The drawings of both halves.

    Raises:
        FileNotFoundError: When TFDS is needed and cannot provide Omniglot (e.g. offline).
        ValueError: When a file is corrupt or incomplete.
    """
    if source.is_tfds:
        return _read_tfds(searched)
    halves = {}
    for half, path in (("background", source.background), ("evaluation", source.evaluation)):
        if path.is_dir():
            halves[half] = _group(_folder_members(path), str(path))
        else:
            # The data folder's SHA256SUMS, when it lists the archive (the shipped copies).
            verify_file(path, source.omniglot_dir)
            halves[half] = _group(_zip_members(path), str(path))
    return _assemble(halves, f"{source.background} and {source.evaluation}")


def _candidates(half: str) -> tuple[str, str, str]:
    return (f"images_{half}/", f"images_{half}.zip", f"omniglot_{half}.zip")


def _other(half: str) -> str:
    return HALVES[1 - HALVES.index(half)]


def _find_half(folder: Path, half: str) -> Path | None:
    for name in _candidates(half):
        path = folder / name.rstrip("/")
        if path.is_dir() if name.endswith("/") else path.is_file():
            return path
    return None


def _describe_file(path: Path) -> list[object]:
    stat = path.stat()
    size = stat.st_size if path.is_file() else 0
    return [str(path.resolve()), size, stat.st_mtime_ns]


def _zip_members(path: Path) -> Iterator[tuple[str, bytes]]:
    """Yields `(member name, bytes)` for the PNGs of a zip; corrupt -> ValueError."""
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.is_dir() and info.filename.lower().endswith(".png"):
                    yield info.filename, archive.read(info)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:
        raise ValueError(
            f"The Omniglot archive {path} is corrupt or truncated ({error}). "
            "Replace it with a good copy."
        ) from error


def _folder_members(path: Path) -> Iterator[tuple[str, bytes]]:
    for file in sorted(path.rglob("*.png")):
        yield file.relative_to(path).as_posix(), file.read_bytes()


def _group(members: Iterable[tuple[str, bytes]], origin: str) -> dict[str, list[bytes]]:
    """Groups PNGs by `Alphabet/characterNN` (the last two folders of each member)."""
    grouped: dict[str, list[tuple[str, bytes]]] = defaultdict(list)
    for name, data in members:
        parts = name.split("/")
        if len(parts) < 3 or any(part.startswith(("__MACOSX", ".")) for part in parts):
            continue
        if not data.startswith(_PNG_SIGNATURE):
            raise ValueError(f"{name} in {origin} is not a PNG image: the data is corrupt.")
        grouped[f"{parts[-3]}/{parts[-2]}"].append((parts[-1], data))
    return {
        character: [data for _, data in sorted(drawings)] for character, drawings in grouped.items()
    }


def _assemble(halves: dict[str, dict[str, list[bytes]]], origin: str) -> RawOmniglot:
    """Checks the counts of both halves and lays them out in canonical order."""
    characters: list[str] = []
    drawings: list[bytes] = []
    for half in HALVES:
        grouped = halves[half]
        expected = EXPECTED_CHARACTERS.get(half)
        if expected is not None and len(grouped) != expected:
            raise ValueError(
                f"The Omniglot {half} set in {origin} has {len(grouped)} characters, expected "
                f"{expected}: the data is incomplete."
            )
        for character in sorted(grouped):
            count = len(grouped[character])
            if count != DRAWINGS_PER_CHARACTER:
                raise ValueError(
                    f"Omniglot character {character} in {origin} has {count} drawings, "
                    f"expected {DRAWINGS_PER_CHARACTER}: the data is incomplete."
                )
            characters.append(character)
            drawings.extend(grouped[character])
    return RawOmniglot(characters, len(halves["background"]), drawings, origin)


def _read_tfds(searched: Path | None) -> RawOmniglot:
    halves = read_with_tfds(
        "omniglot", searched,
        "images_background.zip and images_evaluation.zip (or omniglot_background.zip / "
        "omniglot_evaluation.zip, or the extracted folders)",
        lambda: {half: _group_tfds(_tfds_examples(_TFDS_HALVES[half])) for half in HALVES},
        title="Omniglot",
    )
    return _assemble(halves, "TensorFlow Datasets 'omniglot'")


def _group_tfds(examples: Iterable[tuple[str, int, bytes]]) -> dict[str, list[bytes]]:
    grouped: dict[str, list[bytes]] = defaultdict(list)
    for alphabet, character_id, png in examples:
        grouped[f"{alphabet}/character{character_id + 1:02d}"].append(png)
    return dict(grouped)


def _tfds_examples(split: str) -> Iterator[tuple[str, int, bytes]]:
    """Yields `(alphabet, alphabet_char_id, png bytes)` for a TFDS omniglot split."""
    import tensorflow_datasets as tfds

    builder = tfds.builder("omniglot")
    builder.download_and_prepare()
    alphabets = builder.info.features["alphabet"].names
    dataset = builder.as_dataset(
        split=split, shuffle_files=False, decoders={"image": tfds.decode.SkipDecoding()}
    )
    for example in tfds.as_numpy(dataset):
        yield alphabets[example["alphabet"]], int(example["alphabet_char_id"]), example["image"]
