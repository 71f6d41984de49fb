"""Few-shot intent detection: episodes of raw sentences (BANKING77, HWU64, CLINC150, yours).

An intent dataset is a folder `<root>/intent/<name>/` holding

- `full.jsonl`: one JSON object a line, `{"sentence": str, "label": str}` (other keys are
  ignored), every sentence of every intent;
- `splits/01/`, `splits/02/`, ...: class splits, each with `train.txt`, `valid.txt` and
  `test.txt` listing one intent label a line (disjoint lists).

This is the layout of the ProtAugment distribution of BANKING77, HWU64 and CLINC150
(Dopierre, Gravier and Logerais, 2021) in `../shared/data/intent/`; any folder in that layout
works, so a user's own intents need no code.

Every read is checked before it is used: each file against the `SHA256SUMS` of
`<root>/intent/` or of the dataset's own folder when either lists it (`tfmeta.data.checksums`;
hashed once per file version), the known datasets against their known counts (sentences,
intents, intents per split file), the split files of a class split for shared intents, and
`full.jsonl` for UTF-8 and its format (errors name the file and line).

Duplicate sentences are removed at load: a sentence repeated within an intent is kept once
(its first line), and a sentence given to two or more intents is dropped from all of them (it
has no right answer). Otherwise one sentence could be both support and query of an episode.
The shipped files hold few: BANKING77 repeats 11 sentences (in 6 intents), CLINC150 repeats 1
and gives 4 sentences two intents each (8 lines), HWU64 has none.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tfmeta.data.arguments import check_int_in_range, invalid_value
from tfmeta.data.checksums import SUMS_FILE, check_count, verify_file
from tfmeta.data.data_dir import DATA_DIR_ENV, resolve_data_dir
from tfmeta.data.episode_shape import MAX_QUERIES, MAX_SUPPORT, check_episode_sizes, episode_shape
from tfmeta.data.episodes import sampled_episodes
from tfmeta.data.registry import DatasetSpec, register

PathLike = str | os.PathLike[str]

INTENT_FOLDER = "intent"
SPLIT_FILES = {"train": "train.txt", "validation": "valid.txt", "test": "test.txt"}
_SPLIT_ALIASES = {"val": "validation", "valid": "validation"}

# Named groups `drop_intents` may give instead of intent names. CLINC150's banking and
# credit-card domains, as listed by its release (github.com/clinc/oos-eval,
# data/domains.json): IntentBERT (Zhang et al., "Effectiveness of Pre-training for Few-shot
# Intent Classification", Findings of EMNLP 2021) removes both domains from CLINC150's
# training side before testing on BANKING77, so that no intent of the target leaks.
INTENT_GROUPS = {
    "clinc150_banking": (
        "freeze_account", "routing", "pin_change", "bill_due", "pay_bill", "account_blocked",
        "interest_rate", "min_payment", "bill_balance", "transfer", "order_checks", "balance",
        "spending_history", "transactions", "report_fraud"),
    "clinc150_credit_cards": (
        "replacement_card_duration", "expiration_date", "damaged_card",
        "improve_credit_score", "report_lost_card", "card_declined", "credit_limit_change",
        "apr", "redeem_rewards", "credit_limit", "rewards_balance", "application_status",
        "credit_score", "new_card", "international_fees"),
}


class KnownIntents(NamedTuple):
    """The counts a shipped intent dataset must have (checked even without `SHA256SUMS`).

    Attributes:
        sentences: Lines of `full.jsonl`.
        intents: Distinct labels in `full.jsonl`.
        split_sizes: `(train, valid, test)` intents of class splits 01, 02, ...
    """

    sentences: int
    intents: int
    split_sizes: tuple[tuple[int, int, int], ...]


# ProtAugment's distribution (../shared/data/intent/, whose README gives these figures).
KNOWN_DATASETS = {
    "banking77": KnownIntents(13_083, 77, ((25, 25, 27),) * 5),
    "hwu64": KnownIntents(
        11_036, 64, ((16, 23, 25), (30, 15, 19), (24, 18, 22), (20, 15, 29), (25, 11, 28))),
    "clinc150": KnownIntents(22_500, 150, ((50, 50, 50),) * 5),
}


class _Sentences(NamedTuple):
    by_label: dict[str, tuple[str, ...]]  # duplicates removed
    lines: int  # sentence lines of the file
    labels: int  # distinct labels of the file


_CACHE: dict[tuple[str, int, int], _Sentences] = {}
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
    drop_intents: Sequence[str] = (),
) -> IntentClasses:
    """Reads the intents of one split of a class split, with their sentences.

    Args:
        name: The dataset folder under `<root>/intent/`, e.g. "banking77", "hwu64",
            "clinc150", or your own.
        split: "train", "validation" (aliases "valid", "val") or "test".
        class_split: Which class split, `splits/0<class_split>/` (1..5 for the shipped data).
        data_dir: The data root holding `intent/`; defaults to `$TFMETA_DATA_DIR`.
        drop_intents: Intents left out of the split (e.g. those of a cross-domain target,
            so that none leaks into meta-training): intent names of the dataset, or names
            of `INTENT_GROUPS` (e.g. "clinc150_banking", "clinc150_credit_cards").

    Returns:
        An `IntentClasses`, each intent's sentences distinct (see the module's notes on
        duplicates).

    Raises:
        FileNotFoundError: When the folder, `full.jsonl` or the split file is missing.
        ValueError: For a bad argument; a file that differs from its `SHA256SUMS` line or
            (known datasets) from its known counts; split files of the class split that
            share intents; a line that is not UTF-8 or not a JSON object with "sentence"
            and "label"; an empty sentence; or a split file naming an intent that has no
            sentence in `full.jsonl`.

    Example:
    >>> classes = load_intents("banking77", "train", class_split=1)  # doctest: +SKIP
    >>> len(classes.labels), classes.labels[0], len(classes.sentences[0])  # doctest: +SKIP
    (25, 'transfer_not_received_by_recipient', 211)
    """
    split = _check_split(split)
    folder = intent_folder(name, data_dir)
    class_split = check_int_in_range("class_split", class_split, high=99)
    by_label = _read_sentences(folder / "full.jsonl", KNOWN_DATASETS.get(name))
    split_path = folder / "splits" / f"{class_split:02d}" / SPLIT_FILES[split]
    if not split_path.is_file():
        present = sorted(p.name for p in (folder / "splits").glob("*") if p.is_dir())
        raise FileNotFoundError(
            f"Invalid value for argument `class_split`: no split file {split_path}. Class "
            f"splits in {folder / 'splits'}: {present or 'none'}. Received: "
            f"class_split={class_split}"
        )
    labels = _read_class_split(split_path.parent, class_split, KNOWN_DATASETS.get(name))[split]
    missing = [label for label in labels if label not in by_label]
    if missing:
        raise ValueError(
            f"Invalid split file {split_path}: it names intents that have no sentence in "
            f"{folder / 'full.jsonl'}: {missing[:5]}{' ...' if len(missing) > 5 else ''}"
        )
    dropped = dropped_intents(drop_intents, by_label, folder)
    labels = tuple(label for label in labels if label not in dropped)
    return IntentClasses(labels, tuple(by_label[label] for label in labels))


def dropped_intents(drop_intents: Sequence[str], known: Iterable[str] = (),
                    folder: PathLike = "") -> frozenset[str]:
    """The intent names of `drop_intents`, with `INTENT_GROUPS` names expanded.

    Args:
        drop_intents: Intent names and group names (a comma-separated string works too).
        known: The dataset's intents: every name must be one of them or a group.
        folder: The dataset's folder, named in the error.

    Example:
    >>> sorted(dropped_intents(["clinc150_banking"]))[:3]
    ['account_blocked', 'balance', 'bill_balance']
    """
    if isinstance(drop_intents, str):
        drop_intents = drop_intents.split(",")
    try:
        names = [str(name).strip() for name in drop_intents]
    except TypeError:
        raise invalid_value("drop_intents", "a sequence of intent names", drop_intents) from None
    known = set(known)
    unknown = [name for name in names if name and name not in known and name not in INTENT_GROUPS]
    if known and unknown:
        raise ValueError(
            f"Invalid value for argument `drop_intents`: {unknown[:5]} are neither intents of "
            f"{Path(folder) / 'full.jsonl'} nor groups ({sorted(INTENT_GROUPS)}). Received: "
            f"drop_intents={list(drop_intents)!r}"[:600]
        )
    dropped = set()
    for name in filter(None, names):
        dropped.update(INTENT_GROUPS.get(name, (name,)))
    return frozenset(dropped)


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
    drop_intents: Sequence[str] = (),
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
        drop_intents: Intents (or `INTENT_GROUPS`) left out of the split (`load_intents`).

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
    classes = load_intents(name, split, class_split, data_dir, drop_intents)
    sizes = np.array([len(sentences) for sentences in classes.sentences], dtype=np.int64)
    smallest = int(np.argmin(sizes))
    shape = episode_shape(
        ways, shots, queries, sizes,
        classes_reason=f"the number of intents in split '{_check_split(split)}' of {name!r}",
        size_reason=f"distinct sentences of intent {classes.labels[smallest]!r}, the smallest "
        "of this split",
        max_ways=max_ways, max_support=max_support, max_queries=max_queries,
    )
    sentences = np.array([s for sentences in classes.sentences for s in sentences], dtype=object)
    return sampled_episodes(sentences, np.concatenate([[0], np.cumsum(sizes)[:-1]]), sizes,
                            shape, meta_batch_size, seed, deterministic=deterministic)


def intent_sentences(
    name: str = "banking77",
    split: str = "train",
    class_split: int = 1,
    data_dir: PathLike | None = None,
    drop_intents: Sequence[str] = (),
) -> list[str]:
    """Every sentence of the intents of `split`, e.g. to adapt a text vocabulary.

    Adapt vocabularies to the "train" split only: the test intents' sentences must stay
    unseen until evaluation.

    Example:
    >>> sentences = intent_sentences("banking77", "train", 1)  # doctest: +SKIP
    >>> len(sentences)  # doctest: +SKIP
    4328
    """
    classes = load_intents(name, split, class_split, data_dir, drop_intents)
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


def _read_class_split(split_dir: Path, class_split: int,
                      known: KnownIntents | None) -> dict[str, tuple[str, ...]]:
    """`{split: labels}` of the split files in `split_dir`, checked together.

    Every split file there is read (whichever split is asked for), so that intents shared
    between two of them, which would leak test intents into meta-training, are refused.
    """
    dataset_folder = split_dir.parent.parent
    labels = {split: _read_split_file(split_dir / name, dataset_folder)
              for split, name in SPLIT_FILES.items() if (split_dir / name).is_file()}
    if known is not None and class_split <= len(known.split_sizes):
        for split, size in zip(SPLIT_FILES, known.split_sizes[class_split - 1]):
            if split in labels:
                check_count("intents (lines)", len(labels[split]), size,
                            split_dir / SPLIT_FILES[split])
    shared = [
        f"{SPLIT_FILES[first]} and {SPLIT_FILES[second]} share the intents {names[:5]}"
        f"{' ...' if len(names) > 5 else ''}"
        for first, second in (("train", "validation"), ("train", "test"),
                              ("validation", "test"))
        if first in labels and second in labels
        and (names := sorted(set(labels[first]) & set(labels[second])))
    ]
    if shared:
        raise ValueError(
            f"Invalid split files in {split_dir}: {'; '.join(shared)}. The train, valid and "
            "test intents of a class split must be disjoint."
        )
    return labels


def _read_split_file(path: Path, dataset_folder: Path) -> tuple[str, ...]:
    _verify(path, dataset_folder)
    labels = tuple(line.strip() for line in _decoded_lines(path) if line.strip())
    if not labels:
        raise ValueError(f"Invalid split file {path}: it names no intent.")
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise ValueError(f"Invalid split file {path}: intents listed twice: {duplicates[:5]}")
    return labels


def _verify(path: Path, dataset_folder: Path) -> None:
    """Checks `path` against the SHA256SUMS of its dataset folder and of `<root>/intent/`."""
    for folder in (dataset_folder, dataset_folder.parent):
        if (folder / SUMS_FILE).is_file():
            verify_file(path, folder)


def _read_sentences(path: Path, known: KnownIntents | None) -> dict[str, tuple[str, ...]]:
    """`{label: distinct sentences}` of a checked `full.jsonl`, parsed once per file version."""
    _verify(path, path.parent)
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = _parse_jsonl(path)
        parsed = _CACHE[key]
    if known is not None:
        check_count("sentences (lines)", parsed.lines, known.sentences, path)
        check_count("intents", parsed.labels, known.intents, path)
    return parsed.by_label


def _decoded_lines(path: Path) -> list[str]:
    """The file's lines as text, or a `ValueError` naming the first line that is not UTF-8."""
    lines = path.read_bytes().removeprefix(b"\xef\xbb\xbf").split(b"\n")
    try:
        return [line.decode("utf-8") for line in lines]
    except UnicodeDecodeError:
        number = next(n for n, line in enumerate(lines, start=1) if not _is_utf8(line))
        raise ValueError(
            f"Invalid line {number} of {path}: it is not UTF-8 text. Received: "
            f"{lines[number - 1][:80]!r}"
        ) from None


def _is_utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _parse_jsonl(path: Path) -> _Sentences:
    by_label: dict[str, dict[str, None]] = {}  # insertion-ordered sets
    intents_of: dict[str, set[str]] = {}
    lines = 0
    for number, line in enumerate(_decoded_lines(path), start=1):
        if not line.strip():
            continue
        lines += 1
        sentence, label = _parse_line(line, number, path)
        by_label.setdefault(label, {})[sentence] = None
        intents_of.setdefault(sentence, set()).add(label)
    ambiguous = {sentence for sentence, labels in intents_of.items() if len(labels) > 1}
    return _Sentences(
        {label: tuple(s for s in sentences if s not in ambiguous)
         for label, sentences in by_label.items()},
        lines,
        len(by_label),
    )


def _parse_line(line: str, number: int, path: Path) -> tuple[str, str]:
    expected = (f"Invalid line {number} of {path}: expected a JSON object with string "
                f'"sentence" and "label". Received: {line.strip()[:80]!r}')
    try:
        record = json.loads(line)
        sentence, label = record["sentence"], record["label"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise ValueError(expected) from None
    if not isinstance(sentence, str) or not isinstance(label, str) or not label:
        raise ValueError(expected)
    if not sentence.strip():
        raise ValueError(
            f"Invalid line {number} of {path}: the sentence of intent {label!r} is "
            f"empty. Received: sentence={sentence!r}"
        )
    try:
        (sentence + label).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate escape such as "\\ud800"
        raise ValueError(
            f"Invalid line {number} of {path}: its text is not valid UTF-8 (a lone "
            f"surrogate escape). Received: {line.strip()[:80]!r}"
        ) from None
    return sentence, label


def _build_split(split, ways, shots, queries, meta_batch_size, seed, data_dir,
                 intent_dataset="banking77", class_split=1, drop_intents=(), **variable):
    return intents(intent_dataset, split, ways=ways, shots=shots, queries=queries,
                   meta_batch_size=meta_batch_size, class_split=class_split, seed=seed,
                   data_dir=data_dir, drop_intents=drop_intents, **variable)


def _split_texts(split, data_dir, intent_dataset="banking77", class_split=1, drop_intents=()):
    return intent_sentences(intent_dataset, split, class_split, data_dir, drop_intents)


SPEC = register(
    DatasetSpec(
        name="intents",
        build=_build_split,
        task="classification",
        example="text",
        options=("intent_dataset", "class_split", "drop_intents"),
        example_shape=lambda options: (),
        description="Intent detection sentences (BANKING77, HWU64, CLINC150 or any folder "
        "under <root>/intent/), five class splits each.",
        texts=_split_texts,
    )
)
