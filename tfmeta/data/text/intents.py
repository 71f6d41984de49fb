"""Few-shot intent detection: episodes of raw sentences (BANKING77, HWU64, CLINC150, yours).

An intent dataset is a folder `<root>/intent/<name>/` holding

- `full.jsonl`: one JSON object a line, `{"sentence": str, "label": str}` (other keys are
  ignored), every sentence of every intent;
- `splits/01/`, `splits/02/`, ...: class splits, each with `train.txt`, `valid.txt` and
  `test.txt` listing one intent label a line (disjoint lists).

This is the layout of the ProtAugment distribution of BANKING77, HWU64 and CLINC150
(Dopierre, Gravier and Logerais, 2021) in `../shared/data/intent/`; any folder in that layout
works, so a user's own intents need no code.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tfmeta.data.arguments import check_int_in_range, invalid_value
from tfmeta.data.data_dir import DATA_DIR_ENV, resolve_data_dir
from tfmeta.data.episode_shape import MAX_QUERIES, MAX_SUPPORT, check_episode_sizes, episode_shape
from tfmeta.data.episodes import episode_dataset
from tfmeta.data.registry import DatasetSpec, register
from tfmeta.data.sampling import EpisodeSampler

PathLike = str | os.PathLike[str]

INTENT_FOLDER = "intent"
SPLIT_FILES = {"train": "train.txt", "validation": "valid.txt", "test": "test.txt"}
_SPLIT_ALIASES = {"val": "validation", "valid": "validation"}

_CACHE: dict[tuple[str, int, int], dict[str, tuple[str, ...]]] = {}
_CACHE_LOCK = threading.Lock()


class IntentClasses(NamedTuple):
    """The intents of one split and their sentences.

    Attributes:
        labels: The intent names, in the order of the split file.
        sentences: `sentences[i]` holds every sentence of intent `labels[i]`, in the order
            of `full.jsonl`.
    """

    labels: tuple[str, ...]
    sentences: tuple[tuple[str, ...], ...]


def load_intents(
    name: str = "banking77",
    split: str = "train",
    class_split: int = 1,
    data_dir: PathLike | None = None,
) -> IntentClasses:
    """Reads the intents of one split of a class split, with their sentences.

    Args:
        name: The dataset folder under `<root>/intent/`, e.g. "banking77", "hwu64",
            "clinc150", or your own.
        split: "train", "validation" (aliases "valid", "val") or "test".
        class_split: Which class split, `splits/0<class_split>/` (1..5 for the shipped data).
        data_dir: The data root holding `intent/`; defaults to `$TFMETA_DATA_DIR`.

    Returns:
        An `IntentClasses`.

    Raises:
        FileNotFoundError: When the folder, `full.jsonl` or the split file is missing.
        ValueError: For a bad argument, a malformed line, an empty sentence, or a split file
            naming an intent that has no sentence in `full.jsonl`.

    Example:
    >>> classes = load_intents("banking77", "train", class_split=1)  # doctest: +SKIP
    >>> len(classes.labels), classes.sentences[0][0]  # doctest: +SKIP
    (25, 'How do I locate my card?')
    """
    split = _check_split(split)
    folder = intent_folder(name, data_dir)
    class_split = check_int_in_range("class_split", class_split, high=99)
    by_label = _read_sentences(folder / "full.jsonl")
    split_path = folder / "splits" / f"{class_split:02d}" / SPLIT_FILES[split]
    labels = _read_split_file(split_path, class_split, folder)
    missing = [label for label in labels if label not in by_label]
    if missing:
        raise ValueError(
            f"Invalid split file {split_path}: it names intents that have no sentence in "
            f"{folder / 'full.jsonl'}: {missing[:5]}{' ...' if len(missing) > 5 else ''}"
        )
    return IntentClasses(labels, tuple(by_label[label] for label in labels))


def intents(
    name: str = "banking77",
    split: str = "train",
    ways: int | None = 5,
    shots: int | None = 1,
    queries: int | None = 5,
    meta_batch_size: int = 4,
    class_split: int = 1,
    seed: int = 0,
    data_dir: PathLike | None = None,
    *,
    deterministic: bool = True,
    max_ways: int | None = None,
    max_support: int = MAX_SUPPORT,
    max_queries: int = MAX_QUERIES,
) -> tf.data.Dataset:
    """Endless N-way K-shot episodes of raw sentences, one intent per class.

    Each element is `(inputs, query_y)`: `inputs["support_x"]` `[B, N*K]` tf.string (the
    sentences), `inputs["support_y"]` `[B, N*K]` int32, `inputs["query_x"]` `[B, N*Q]`
    tf.string and `query_y` `[B, N*Q]` int32, with static shapes. Classes are the intents
    of `split` in class split `class_split`; labels are a random permutation of `0..N-1`
    per episode and the support and query sets are shuffled (the sampler of
    `tfmeta.data.episodes`). Episodes depend only on `seed` and their position.

    Args:
        name: The dataset folder under `<root>/intent/` ("banking77", "hwu64",
            "clinc150" or your own in the same layout).
        split: "train", "validation" or "test": meta-train, select and report on disjoint
            intents.
        ways: Intents per episode, N.
        shots: Support sentences per intent, K.
        queries: Query sentences per intent, Q (`shots + queries` at most the sentences of
            the split's smallest intent).
        meta_batch_size: Episodes per element, B.
        class_split: Which class split (`splits/0<class_split>/`).
        seed: Integer seed of the episode stream.
        data_dir: The data root holding `intent/`; defaults to `$TFMETA_DATA_DIR`.
        deterministic: Whether the parallel sampler keeps element order.
        max_ways: With `ways=None`, the most ways (default `min(50, classes)`).
        max_support: With `shots=None`, the most support examples of an episode.
        max_queries: With `queries=None`, the most query examples per class.

    Returns:
        An endless `tf.data.Dataset` of meta-batches.

    Raises:
        FileNotFoundError: When the data is not there.
        ValueError: For a bad argument (e.g. more `ways` than the split has intents, or an
            intent with fewer than `shots + queries` sentences) or bad data.

    Example:
    >>> dataset = intents("banking77", "train", ways=5, shots=1, queries=5)  # doctest: +SKIP
    >>> inputs, query_y = next(iter(dataset))  # doctest: +SKIP
    >>> inputs["support_x"].shape, inputs["support_x"].dtype, query_y.shape  # doctest: +SKIP
    (TensorShape([4, 5]), tf.string, TensorShape([4, 25]))
    """
    ways, shots, queries = check_episode_sizes(ways, shots, queries)
    meta_batch_size = check_int_in_range("meta_batch_size", meta_batch_size)
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool):
        raise invalid_value("seed", "an integer", seed)
    classes = load_intents(name, split, class_split, data_dir)
    sizes = np.array([len(sentences) for sentences in classes.sentences], dtype=np.int64)
    smallest = int(np.argmin(sizes))
    shape = episode_shape(
        ways, shots, queries, sizes,
        classes_reason=f"the number of intents in split '{_check_split(split)}' of {name!r}",
        size_reason=f"sentences of intent {classes.labels[smallest]!r}, the smallest of this "
        "split",
        max_ways=max_ways, max_support=max_support, max_queries=max_queries,
    )
    sampler = EpisodeSampler(
        np.array([s for sentences in classes.sentences for s in sentences], dtype=object),
        offsets=np.concatenate([[0], np.cumsum(sizes)[:-1]]),
        sizes=sizes,
        ways=shape.ways,
        shots=shape.shots,
        queries=shape.queries,
        meta_batch_size=meta_batch_size,
        seed=int(seed),
        **shape.sampler_options(),
    )
    return episode_dataset(sampler, deterministic=deterministic)


def intent_sentences(
    name: str = "banking77",
    split: str = "train",
    class_split: int = 1,
    data_dir: PathLike | None = None,
) -> list[str]:
    """Every sentence of the intents of `split`, e.g. to adapt a text vocabulary.

    Adapt vocabularies to the "train" split only: the test intents' sentences must stay
    unseen until evaluation.

    Example:
    >>> sentences = intent_sentences("banking77", "train", 1)  # doctest: +SKIP
    >>> len(sentences)  # doctest: +SKIP
    4160
    """
    classes = load_intents(name, split, class_split, data_dir)
    return [sentence for sentences in classes.sentences for sentence in sentences]


def intent_folder(name: str, data_dir: PathLike | None = None) -> Path:
    """`<root>/intent/<name>/`, checked to hold `full.jsonl`.

    Raises:
        FileNotFoundError: Without a data root, or without `full.jsonl` in the folder (the
            message lists the datasets that are there).

    Example:
    >>> intent_folder("banking77", "/work/shared/data").name  # doctest: +SKIP
    'banking77'
    """
    if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
        raise invalid_value("name", "the name of a folder under <root>/intent/", name)
    root = resolve_data_dir(data_dir)
    if root is None:
        raise FileNotFoundError(
            f"No data root for intent dataset {name!r}: pass data_dir= (--data_dir) or set "
            f"${DATA_DIR_ENV} to the folder holding intent/{name}/full.jsonl."
        )
    folder = root / INTENT_FOLDER / name
    if not (folder / "full.jsonl").is_file():
        present = sorted(
            p.name for p in (root / INTENT_FOLDER).glob("*") if (p / "full.jsonl").is_file()
        ) if (root / INTENT_FOLDER).is_dir() else []
        raise FileNotFoundError(
            f"Invalid intent dataset {name!r}: no {folder / 'full.jsonl'} (expected "
            f"<root>/intent/<name>/full.jsonl). Intent datasets in {root / INTENT_FOLDER}: "
            f"{present or 'none'}"
        )
    return folder


def _check_split(split: str) -> str:
    split = _SPLIT_ALIASES.get(split, split) if isinstance(split, str) else split
    if split not in SPLIT_FILES:
        raise invalid_value("split", "one of 'train', 'validation', 'test'", split)
    return split


def _read_split_file(path: Path, class_split: int, folder: Path) -> tuple[str, ...]:
    if not path.is_file():
        present = sorted(p.name for p in (folder / "splits").glob("*") if p.is_dir())
        raise FileNotFoundError(
            f"Invalid value for argument `class_split`: no split file {path}. Class splits in "
            f"{folder / 'splits'}: {present or 'none'}. Received: class_split={class_split}"
        )
    labels = tuple(line.strip() for line in path.read_text().splitlines() if line.strip())
    if not labels:
        raise ValueError(f"Invalid split file {path}: it names no intent.")
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise ValueError(f"Invalid split file {path}: intents listed twice: {duplicates[:5]}")
    return labels


def _read_sentences(path: Path) -> dict[str, tuple[str, ...]]:
    """`{label: sentences}` of a `full.jsonl`, parsed once per process and file version."""
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = _parse_jsonl(path)
        return _CACHE[key]


def _parse_jsonl(path: Path) -> dict[str, tuple[str, ...]]:
    by_label: dict[str, list[str]] = {}
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                sentence, label = record["sentence"], record["label"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise ValueError(
                    f"Invalid line {number} of {path}: expected a JSON object with string "
                    f'"sentence" and "label". Received: {line.strip()[:80]!r}'
                ) from None
            if not isinstance(sentence, str) or not isinstance(label, str) or not label:
                raise ValueError(
                    f"Invalid line {number} of {path}: expected a JSON object with string "
                    f'"sentence" and "label". Received: {line.strip()[:80]!r}'
                )
            if not sentence.strip():
                raise ValueError(
                    f"Invalid line {number} of {path}: the sentence of intent {label!r} is "
                    f"empty. Received: sentence={sentence!r}"
                )
            by_label.setdefault(label, []).append(sentence)
    return {label: tuple(sentences) for label, sentences in by_label.items()}


def _build_split(split, ways, shots, queries, meta_batch_size, seed, data_dir,
                 intent_dataset="banking77", class_split=1):
    return intents(intent_dataset, split, ways=ways, shots=shots, queries=queries,
                   meta_batch_size=meta_batch_size, class_split=class_split, seed=seed,
                   data_dir=data_dir)


def _split_texts(split, data_dir, intent_dataset="banking77", class_split=1):
    return intent_sentences(intent_dataset, split, class_split, data_dir)


SPEC = register(
    DatasetSpec(
        name="intents",
        build=_build_split,
        task="classification",
        example="text",
        options=("intent_dataset", "class_split"),
        example_shape=lambda options: (),
        description="Intent detection sentences (BANKING77, HWU64, CLINC150 or any folder "
        "under <root>/intent/), five class splits each.",
        texts=_split_texts,
    )
)
