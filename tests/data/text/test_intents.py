"""Intent episodes: the text episode contract, class splits, determinism and bad input."""

import importlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from fake_intents import SPLITS, sign, write_fake_intents

from tfmeta import data
from tfmeta.data import intents, load_intents

intents_module = importlib.import_module("tfmeta.data.text.intents")


@pytest.fixture
def fake_intent_root(tmp_path):
    return write_fake_intents(tmp_path / "data")


def first(dataset):
    inputs, query_y = next(iter(dataset))
    return {key: value.numpy() for key, value in inputs.items()}, query_y.numpy()


def label_of(sentence):
    """The fake data ends every sentence with `of <intent>`."""
    return sentence.decode().rsplit(" of ", 1)[1]


def test_episodes_hold_strings_of_the_split_intents(fake_intent_root):
    dataset = intents("toy", "train", ways=3, shots=2, queries=3, meta_batch_size=4,
                      data_dir=fake_intent_root)
    spec = dataset.element_spec
    assert spec[0]["support_x"].shape == (4, 6) and spec[0]["support_x"].dtype == tf.string
    assert spec[0]["query_x"].shape == (4, 9) and spec[0]["query_x"].dtype == tf.string
    assert spec[0]["support_y"].dtype == tf.int32 and spec[1].shape == (4, 9)
    for inputs, query_y in dataset.take(5).as_numpy_iterator():
        for b in range(4):
            support = [label_of(s) for s in inputs["support_x"][b]]
            query = [label_of(s) for s in inputs["query_x"][b]]
            assert set(support) <= set(SPLITS["train"])
            # One intent per label, the same in support and query, N distinct intents.
            by_label = {}
            for label, intent in zip(inputs["support_y"][b], support):
                assert by_label.setdefault(label, intent) == intent
            for label, intent in zip(query_y[b], query):
                assert by_label[label] == intent
            assert sorted(by_label) == [0, 1, 2] and len(set(by_label.values())) == 3
            assert np.bincount(inputs["support_y"][b]).tolist() == [2, 2, 2]
            assert np.bincount(query_y[b]).tolist() == [3, 3, 3]
            # Support and query sentences are distinct.
            assert not set(inputs["support_x"][b]) & set(inputs["query_x"][b])


def test_splits_read_their_own_intents(fake_intent_root):
    seen = {}
    for split, file_split in (("train", "train"), ("validation", "valid"), ("test", "test")):
        classes = load_intents("toy", split, 1, fake_intent_root)
        assert classes.labels == SPLITS[file_split]
        assert all(label_of(s.encode()) == label
                   for label, sentences in zip(classes.labels, classes.sentences)
                   for s in sentences)
        seen[split] = set(classes.labels)
    assert not seen["train"] & seen["validation"] and not seen["train"] & seen["test"]
    assert not seen["validation"] & seen["test"]
    # Class split 02 swaps validation and test (fake_intents), and "valid" is an alias.
    assert load_intents("toy", "valid", 2, fake_intent_root).labels == SPLITS["test"]
    sentences = data.intent_sentences("toy", "train", 1, fake_intent_root)
    assert len(sentences) == 6 * 8 and all(label_of(s.encode()) in SPLITS["train"]
                                           for s in sentences)


def test_same_seed_same_episodes_other_seed_others(fake_intent_root):
    def make(seed):
        return intents("toy", "train", ways=3, shots=1, queries=2, meta_batch_size=2, seed=seed,
                       data_dir=fake_intent_root)

    a, b, c = first(make(0)), first(make(0)), first(make(1))
    assert all((a[0][k] == b[0][k]).all() for k in a[0]) and (a[1] == b[1]).all()
    assert not (a[0]["support_x"] == c[0]["support_x"]).all()


def test_the_registry_entry_and_its_texts(fake_intent_root):
    spec = data.get_dataset("intents")
    assert spec.example == "text" and spec.options == (
        "intent_dataset", "class_split", "drop_intents")
    assert spec.example_shape({}) == ()
    dataset = spec.episodes("test", ways=2, shots=1, queries=1, meta_batch_size=1,
                            data_dir=fake_intent_root, intent_dataset="toy", class_split=2)
    inputs, _ = first(dataset)
    assert {label_of(s) for s in inputs["support_x"][0]} <= set(SPLITS["valid"])
    texts = spec.texts("train", fake_intent_root, intent_dataset="toy", class_split=1)
    assert len(texts) == 48


def test_the_registry_entry_takes_variable_episodes(fake_intent_root):
    spec = data.get_dataset("intents")
    dataset = spec.episodes("train", ways=None, shots=None, queries=None, meta_batch_size=2,
                            data_dir=fake_intent_root, intent_dataset="toy", max_ways=6,
                            max_support=20, max_queries=2)
    inputs, query_y = first(dataset)
    assert inputs["support_x"].shape == (2, 20) and query_y.shape == (2, 12)
    for support_y, labels in zip(inputs["support_y"], query_y):
        ways = support_y.max() + 1
        assert 5 <= ways <= 6 and set(labels[labels >= 0]) == set(range(ways))
        assert (inputs["support_x"][0][inputs["support_y"][0] < 0] == b"").all()


def test_the_environment_variable_is_the_default_root(fake_intent_root, monkeypatch):
    monkeypatch.setenv("TFMETA_DATA_DIR", str(fake_intent_root))
    assert load_intents("toy", "test").labels == SPLITS["test"]


# === Bad input: one-line errors before any episode ===


def test_a_folder_without_full_jsonl(fake_intent_root, monkeypatch):
    (fake_intent_root / "intent" / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"'empty'.*full\.jsonl.*\['toy'\]"):
        intents("empty", data_dir=fake_intent_root)
    monkeypatch.delenv("TFMETA_DATA_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="TFMETA_DATA_DIR"):
        intents("toy", data_dir=None)


def test_a_split_file_naming_an_unknown_intent(fake_intent_root):
    path = fake_intent_root / "intent" / "toy" / "splits" / "01" / "test.txt"
    path.write_text("exchange_rate\nno_such_intent\n")
    sign(fake_intent_root)
    with pytest.raises(ValueError, match=r"test\.txt.*no sentence.*'no_such_intent'"):
        intents("toy", "test", ways=1, data_dir=fake_intent_root)


def test_intents_with_too_few_sentences(tmp_path):
    root = write_fake_intents(tmp_path, overrides={"top_up": ["top up please", "top up now"]})
    with pytest.raises(ValueError, match=r"shots \+ queries.*at most 2.*'top_up'"):
        intents("toy", "validation", ways=2, shots=1, queries=2, data_dir=root)
    assert intents("toy", "validation", ways=2, shots=1, queries=1, data_dir=root) is not None


def test_empty_sentences_and_malformed_lines(tmp_path):
    root = write_fake_intents(tmp_path, overrides={"top_up": ["top up", "   "]})
    with pytest.raises(ValueError, match=r"line \d+ of .*full\.jsonl.*'top_up' is empty"):
        load_intents("toy", "train", 1, root)
    path = Path(root) / "intent" / "toy" / "full.jsonl"
    path.write_text(json.dumps({"text": "hello", "label": "x"}) + "\n")
    sign(root)
    with pytest.raises(ValueError, match=r"line 1 of .*\"sentence\" and \"label\""):
        load_intents("toy", "train", 1, root)


def one_line_error(error_type, call, *args, **kwargs):
    with pytest.raises(error_type) as caught:
        call(*args, **kwargs)
    message = str(caught.value)
    assert "\n" not in message, message
    return message


# === Checked data: SHA256SUMS, known counts, disjoint splits, UTF-8 (issue 25) ===


def test_the_stand_in_carries_its_sha256sums(fake_intent_root):
    listed = data.checksums.read_sha256sums(fake_intent_root / "intent")
    assert {"toy/full.jsonl", "toy/splits/01/test.txt", "toy/splits/02/train.txt"} <= set(listed)


def test_a_file_that_differs_from_sha256sums_is_refused(fake_intent_root):
    folder = fake_intent_root / "intent" / "toy"
    test_file = folder / "splits" / "01" / "test.txt"
    test_file.write_text("exchange_rate\n")  # one of the three test intents
    message = one_line_error(ValueError, load_intents, "toy", "test", 1, fake_intent_root)
    assert str(test_file) in message and "does not match its checksum" in message
    # Every file of the class split is checked, whichever split is asked for.
    one_line_error(ValueError, load_intents, "toy", "train", 1, fake_intent_root)
    assert load_intents("toy", "test", 2, fake_intent_root).labels == SPLITS["valid"]
    full = folder / "full.jsonl"
    lines = full.read_text().splitlines()
    full.write_text("\n".join(lines[: len(lines) // 2]) + "\n")
    message = one_line_error(ValueError, intents, "toy", "test", class_split=2,
                             data_dir=fake_intent_root)
    assert str(full) in message and "does not match its checksum" in message


def test_a_dataset_folder_may_carry_its_own_sha256sums(fake_intent_root):
    folder = fake_intent_root / "intent" / "toy"
    (fake_intent_root / "intent" / "SHA256SUMS").unlink()
    shutil.copy(folder / "full.jsonl", folder / "good.jsonl")
    sign(fake_intent_root)
    sums = (fake_intent_root / "intent" / "SHA256SUMS").read_text().replace("./toy/", "./")
    (fake_intent_root / "intent" / "SHA256SUMS").unlink()
    (folder / "SHA256SUMS").write_text(sums)
    assert load_intents("toy", "test", 1, fake_intent_root).labels == SPLITS["test"]
    (folder / "full.jsonl").write_text((folder / "full.jsonl").read_text()[:-40] + "\n")
    message = one_line_error(ValueError, load_intents, "toy", "test", 1, fake_intent_root)
    assert str(folder / "full.jsonl") in message and str(folder / "SHA256SUMS") in message


def test_known_datasets_are_checked_against_their_counts(fake_intent_root, monkeypatch):
    """Without SHA256SUMS, a known dataset's counts still catch a cut file."""
    known = intents_module.KnownIntents(sentences=12 * 8, intents=12,
                                        split_sizes=((6, 3, 3), (6, 3, 3)))
    monkeypatch.setitem(intents_module.KNOWN_DATASETS, "toy", known)
    (fake_intent_root / "intent" / "SHA256SUMS").unlink()
    assert load_intents("toy", "test", 1, fake_intent_root).labels == SPLITS["test"]
    folder = fake_intent_root / "intent" / "toy"
    test_file = folder / "splits" / "02" / "test.txt"
    test_file.write_text("card_lost\n")
    message = one_line_error(ValueError, load_intents, "toy", "test", 2, fake_intent_root)
    assert message.startswith(str(test_file)) and "has 1 intents" in message
    assert "expected 3" in message
    full = folder / "full.jsonl"
    full.write_text("\n".join(full.read_text().splitlines()[:48]) + "\n")
    message = one_line_error(ValueError, load_intents, "toy", "test", 1, fake_intent_root)
    assert message.startswith(str(full)) and "has 48 sentences" in message
    assert "expected 96" in message


def test_split_files_that_share_intents_are_refused(fake_intent_root):
    split_dir = fake_intent_root / "intent" / "toy" / "splits" / "01"
    (split_dir / "train.txt").write_text("\n".join(SPLITS["train"] + ("pin_blocked",)) + "\n")
    (split_dir / "valid.txt").write_text("\n".join(SPLITS["valid"] + ("alarm_set",)) + "\n")
    sign(fake_intent_root)
    for split in ("train", "validation", "test"):
        message = one_line_error(ValueError, load_intents, "toy", split, 1, fake_intent_root)
        assert str(split_dir) in message
        assert "train.txt and valid.txt share the intents ['alarm_set']" in message
        assert "train.txt and test.txt share the intents ['pin_blocked']" in message
    assert load_intents("toy", "train", 2, fake_intent_root).labels == SPLITS["train"]


def test_bytes_that_are_not_utf8_name_the_file_and_line(fake_intent_root):
    full = fake_intent_root / "intent" / "toy" / "full.jsonl"
    lines = full.read_bytes().splitlines()
    lines[2] = lines[2].replace(b"alarm", b"al\xffarm")
    full.write_bytes(b"\n".join(lines) + b"\n")
    sign(fake_intent_root)
    message = one_line_error(ValueError, load_intents, "toy", "train", 1, fake_intent_root)
    assert f"line 3 of {full}" in message and "UTF-8" in message
    full.write_bytes(b"\n".join(lines[:2]).replace(b'"alarm', b'"\\ud800alarm') + b"\n")
    sign(fake_intent_root)
    message = one_line_error(ValueError, load_intents, "toy", "train", 1, fake_intent_root)
    assert f"line 1 of {full}" in message and "UTF-8" in message


def test_a_utf8_byte_order_mark_is_accepted(fake_intent_root):
    full = fake_intent_root / "intent" / "toy" / "full.jsonl"
    full.write_bytes(b"\xef\xbb\xbf" + full.read_bytes())
    sign(fake_intent_root)
    assert load_intents("toy", "train", 1, fake_intent_root).sentences[0][0].startswith("alarm")


def test_duplicate_sentences_are_removed_at_load(tmp_path):
    """Decision on issue 25: a repeated sentence could be support and query of one episode."""
    def texts(label, words):
        return [f"{words} {i} of {label}" for i in range(3)]

    twice = "same words of card_lost"
    root = write_fake_intents(tmp_path, overrides={
        "card_lost": [twice, twice, twice, *texts("card_lost", "lost")],
        "card_arrival": [*texts("card_arrival", "when"), "when card_arrival"],
        "top_up": ["top up of top_up", "both of them", *texts("top_up", "top"),
                   "top up of top_up"],
        "alarm_set": ["both of them", *texts("alarm_set", "wake")],
    })
    classes = load_intents("toy", "validation", 1, root)
    by_label = dict(zip(classes.labels, classes.sentences))
    # Within an intent: the first copy stays, in file order.
    assert by_label["card_lost"] == (twice, *texts("card_lost", "lost"))
    # A sentence of two intents has no right answer: it leaves both.
    assert by_label["top_up"] == ("top up of top_up", *texts("top_up", "top"))
    assert "both of them" not in load_intents("toy", "train", 1, root).sentences[0]
    with pytest.raises(ValueError, match=r"at most 4 \(the distinct sentences of intent"):
        intents("toy", "validation", ways=3, shots=2, queries=3, data_dir=root)
    for inputs, _ in intents("toy", "validation", ways=3, shots=2, queries=2,
                             meta_batch_size=8, data_dir=root).take(3).as_numpy_iterator():
        for b in range(8):
            assert not set(inputs["support_x"][b]) & set(inputs["query_x"][b])
            assert len(set(inputs["support_x"][b])) == 6


def test_bad_arguments(fake_intent_root):
    with pytest.raises(ValueError, match=r"`split`.*Received: split='dev'"):
        intents("toy", "dev", data_dir=fake_intent_root)
    with pytest.raises(FileNotFoundError, match=r"`class_split`.*\['01', '02'\].*class_split=3"):
        intents("toy", class_split=3, data_dir=fake_intent_root)
    with pytest.raises(ValueError, match=r"`ways`.*between 1 and 3.*ways=4"):
        intents("toy", "test", ways=4, data_dir=fake_intent_root)
    with pytest.raises(ValueError, match=r"`name`"):
        intents("../toy", data_dir=fake_intent_root)


# === Real data (../shared/data/intent), contract and class splits ===

REAL = Path(os.environ.get("TFMETA_DATA_DIR", "/nonexistent")) / "intent"
real_data = pytest.mark.skipif(not (REAL / "banking77" / "full.jsonl").is_file(),
                               reason="real intent data: TFMETA_DATA_DIR has no intent/")


@real_data
@pytest.mark.parametrize("name,counts", [("banking77", 77), ("hwu64", 64), ("clinc150", 150)])
def test_real_class_splits_are_disjoint_and_cover_the_intents(name, counts):
    root = REAL.parent
    labels_of = {}
    for line in (REAL / name / "full.jsonl").read_text().splitlines():
        record = json.loads(line)
        labels_of.setdefault(record["sentence"], set()).add(record["label"])
    for class_split in range(1, 6):
        splits = {split: load_intents(name, split, class_split, root)
                  for split in ("train", "validation", "test")}
        names = [set(classes.labels) for classes in splits.values()]
        assert not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])
        assert len(names[0] | names[1] | names[2]) == counts
    inputs, query_y = first(intents(name, "test", ways=5, shots=2, queries=3,
                                    meta_batch_size=2, class_split=1, data_dir=root))
    test_intents = set(load_intents(name, "test", 1, root).labels)
    for b in range(2):
        mapping = {}
        for sentence, label in zip(inputs["support_x"][b], inputs["support_y"][b]):
            intents_of = labels_of[sentence.decode()]
            assert intents_of & test_intents
            mapping.setdefault(int(label), set()).update(intents_of & test_intents)
        for sentence, label in zip(inputs["query_x"][b], query_y[b]):
            assert labels_of[sentence.decode()] & mapping[int(label)]


@real_data
def test_real_hwu64_smallest_intent_limits_shots_and_queries():
    root = REAL.parent
    with pytest.raises(ValueError, match=r"at most 38 .*shots=34, queries=5"):
        intents("hwu64", "test", shots=34, queries=5, class_split=1, data_dir=root)
    assert intents("hwu64", "test", shots=33, queries=5, class_split=1, data_dir=root)


@real_data
def test_real_banking77_cut_files_are_refused(tmp_path):
    """Issue 25, item 3: a test.txt cut to 6 of 27 intents, or a full.jsonl cut in half."""
    folder = tmp_path / "data" / "intent"
    shutil.copytree(REAL / "banking77", folder / "banking77", copy_function=shutil.copyfile)
    shutil.copyfile(REAL / "SHA256SUMS", folder / "SHA256SUMS")
    for path in folder.rglob("*"):  # the shared copy is read-only
        path.chmod(0o755 if path.is_dir() else 0o644)
    root, away = folder.parent, tmp_path / "SHA256SUMS.away"
    assert len(load_intents("banking77", "test", 1, root).labels) == 27
    test_file = folder / "banking77" / "splits" / "01" / "test.txt"
    test_file.write_text("\n".join(test_file.read_text().splitlines()[:6]) + "\n")
    message = one_line_error(ValueError, load_intents, "banking77", "test", 1, root)
    assert str(test_file) in message and "does not match its checksum" in message
    (folder / "SHA256SUMS").rename(away)  # without SHA256SUMS, the known counts
    message = one_line_error(ValueError, load_intents, "banking77", "test", 1, root)
    assert message.startswith(f"{test_file} has 6 intents (lines)") and "expected 27" in message
    shutil.copyfile(REAL / "banking77" / "splits" / "01" / "test.txt", test_file)
    full = folder / "banking77" / "full.jsonl"
    lines = full.read_text().splitlines()
    full.write_text("\n".join(lines[: len(lines) // 2]) + "\n")
    message = one_line_error(ValueError, intents, "banking77", "test", data_dir=root)
    assert message.startswith(f"{full} has 6,541 sentences (lines), expected 13,083")
    away.rename(folder / "SHA256SUMS")
    message = one_line_error(ValueError, intents, "banking77", "test", data_dir=root)
    assert str(full) in message and "does not match its checksum" in message


@real_data
def test_real_duplicates_are_removed():
    """BANKING77 repeats 11 sentences within 6 intents; CLINC150 repeats one and gives 4
    sentences two intents each; HWU64 has no exact duplicate."""
    root = REAL.parent
    for name, removed in (("banking77", 11), ("hwu64", 0), ("clinc150", 1 + 8)):
        kept = sum(len(sentences) for split in ("train", "validation", "test")
                   for sentences in load_intents(name, split, 1, root).sentences)
        lines = len((REAL / name / "full.jsonl").read_text().splitlines())
        assert lines - kept == removed, name


# === Dropped intents (a cross-domain target's, out of the training side) ===


def test_dropped_intents_leave_every_episode_and_sentence_list(fake_intent_root, monkeypatch):
    dropped = ("alarm_set", "music_play")
    classes = load_intents("toy", "train", 1, fake_intent_root, drop_intents=dropped)
    assert classes.labels == tuple(x for x in SPLITS["train"] if x not in dropped)
    sentences = data.intent_sentences("toy", "train", 1, fake_intent_root, dropped)
    assert len(sentences) == 4 * 8 and not {label_of(s.encode()) for s in sentences} & set(
        dropped)
    for inputs, _ in intents("toy", "train", ways=4, shots=1, queries=1, data_dir=(
            fake_intent_root), drop_intents=dropped).take(5).as_numpy_iterator():
        assert not {label_of(s) for s in inputs["support_x"].ravel()} & set(dropped)
    # Names of another split's intents are accepted (nothing of this split to drop), and a
    # comma-separated string is a list.
    assert load_intents("toy", "test", 1, fake_intent_root,
                        drop_intents="alarm_set,music_play").labels == SPLITS["test"]
    # Groups expand to their intents.
    monkeypatch.setitem(intents_module.INTENT_GROUPS, "toy_music",
                        ("music_play", "music_likeness"))
    assert load_intents("toy", "train", 1, fake_intent_root,
                        drop_intents=["toy_music"]).labels == (
        "alarm_set", "alarm_remove", "weather_query", "news_query")
    # Registry options reach it too (the CLI's --drop_intents).
    texts = data.get_dataset("intents").texts("train", fake_intent_root, intent_dataset="toy",
                                              drop_intents=("toy_music",))
    assert len(texts) == 4 * 8


def test_a_dropped_name_that_is_no_intent_is_refused(fake_intent_root):
    message = one_line_error(ValueError, load_intents, "toy", "train", 1, fake_intent_root,
                             drop_intents=["alarm_set", "alarm_sett"])
    assert "`drop_intents`" in message and "['alarm_sett']" in message
    with pytest.raises(ValueError, match=r"`ways`.*between 1 and 2"):
        intents("toy", "train", ways=3, data_dir=fake_intent_root,
                drop_intents=SPLITS["train"][:4])


def test_clinc150_groups_are_its_banking_and_credit_card_domains():
    groups = intents_module.INTENT_GROUPS
    assert len(groups["clinc150_banking"]) == len(groups["clinc150_credit_cards"]) == 15
    assert not set(groups["clinc150_banking"]) & set(groups["clinc150_credit_cards"])


@real_data
def test_real_clinc150_without_banking_and_credit_cards():
    root = REAL.parent
    groups = ("clinc150_banking", "clinc150_credit_cards")
    dropped = set(intents_module.dropped_intents(groups))
    every = {json.loads(line)["label"]
             for line in (REAL / "clinc150" / "full.jsonl").read_text().splitlines()}
    assert len(dropped) == 30 and dropped <= every  # the names are CLINC150's own
    train = load_intents("clinc150", "train", 1, root, drop_intents=groups)
    assert len(train.labels) == 38 and not set(train.labels) & dropped
    assert len(set(load_intents("clinc150", "train", 1, root).labels) & dropped) == 12
