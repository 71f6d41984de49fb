"""Omniglot on the real data in $TFMETA_DATA_DIR (skipped, with the reason, without it).

The data is decoded once per session into a session cache folder (about 3 s on 2 cores);
every test here reuses that in-process copy.
"""

import importlib
import time

import numpy as np
import pytest
import tensorflow as tf

from tfmeta.data import load_omniglot, omniglot
from tfmeta.data.omniglot.splits import split_classes

omniglot_module = importlib.import_module("tfmeta.data.omniglot.omniglot")
omniglot_source = importlib.import_module("tfmeta.data.omniglot.source")

SIZES = {
    "vinyals": {"train": 1028, "validation": 172, "test": 423},
    "maml": {"train": 1100, "validation": 100, "test": 423},
    "lake": {"train": 964, "test": 659},
}


def test_counts_964_plus_659_characters_of_20_drawings(real_omniglot):
    assert real_omniglot.images.shape == (1623, 20, 28, 28, 1)
    assert real_omniglot.num_background == 964
    assert len(set(real_omniglot.characters)) == 1623
    assert len({name.split("/")[0] for name in real_omniglot.characters}) == 50
    assert real_omniglot.characters[0] == "Alphabet_of_the_Magi/character01"
    assert real_omniglot.characters[964] == "Angelic/character01"


def test_ink_is_one_on_zero_background(real_omniglot):
    images = real_omniglot.images[::50].astype(np.float32) / 255.0  # uint8 view of the cache
    assert images.min() == 0.0 and images.max() == 1.0
    per_image_ink = images.mean(axis=(2, 3, 4))
    assert 0.02 < per_image_ink.mean() < 0.25  # thin strokes on an empty page
    assert (images[:, :, 0, 0, 0] == 0.0).mean() > 0.95  # corners are background


@pytest.mark.parametrize("scheme", sorted(SIZES))
def test_split_sizes_disjoint_and_x4_with_rotations(real_root, real_omniglot, scheme):
    splits_dir = real_root / "omniglot" / "splits" / "vinyals"
    data = real_omniglot
    for rotations, factor in ((False, 1), (True, 4)):
        seen = set()
        for split, characters in SIZES[scheme].items():
            result = split_classes(
                data.characters, data.num_background, scheme, split, rotations, splits_dir
            )
            pairs = set(zip(result.characters.tolist(), result.turns.tolist()))
            assert len(pairs) == factor * characters, (scheme, split, rotations)
            assert not pairs & seen
            seen |= pairs
        assert {character for character, _ in seen} == set(range(1623))


def test_vinyals_files_give_4112_688_1692_and_match_the_rule(real_root, real_omniglot):
    splits_dir = real_root / "omniglot" / "splits" / "vinyals"
    data = real_omniglot
    for split, count in {"train": 4112, "validation": 688, "test": 1692}.items():
        from_files = split_classes(data.characters, 964, "vinyals", split, None, splits_dir)
        from_rule = split_classes(data.characters, 964, "vinyals", split, None, None)
        assert len(from_files.characters) == count
        np.testing.assert_array_equal(from_files.characters, from_rule.characters)
        np.testing.assert_array_equal(from_files.turns, from_rule.turns)


def test_vinyals_episodes_from_real_data(real_root, real_cache_dir):
    dataset = omniglot("test", 20, 5, 5, 4, data_dir=real_root, cache_dir=real_cache_dir, seed=1)
    inputs, query_y = next(iter(dataset))
    assert inputs["support_x"].shape == (4, 100, 28, 28, 1)
    assert inputs["query_x"].shape == (4, 100, 28, 28, 1) and query_y.shape == (4, 100)
    assert inputs["support_x"].dtype == tf.float32
    x = inputs["support_x"].numpy()
    assert x.min() == 0.0 and x.max() == 1.0
    np.testing.assert_array_equal(np.sort(query_y.numpy()[0]), np.repeat(np.arange(20), 5))


def test_too_many_ways_names_the_split_size(real_root, real_cache_dir):
    expected = (
        r"Invalid value for argument `ways`: expected an integer between 1 and 964 \(the "
        r"number of classes in split 'train'\). Received: ways=1000"
    )
    with pytest.raises(ValueError, match=expected):
        omniglot(ways=1000, scheme="lake", data_dir=real_root, cache_dir=real_cache_dir)


def test_warm_load_reads_the_disk_cache_quickly(real_root, real_cache_dir, real_omniglot):
    omniglot_module.clear_memory_cache()
    try:
        start = time.perf_counter()
        again = load_omniglot(real_root, 28, cache_dir=real_cache_dir, dtype="uint8")
        elapsed = time.perf_counter() - start
    finally:
        omniglot_module.clear_memory_cache()
    np.testing.assert_array_equal(again.images, real_omniglot.images)
    assert elapsed < 5.0


@pytest.mark.slow
def test_original_size_is_binary(real_root, tmp_path):
    data = load_omniglot(real_root, 105, cache_dir=tmp_path, dtype="uint8")
    assert data.images.shape == (1623, 20, 105, 105, 1)
    assert set(np.unique(data.images[::40])) == {0, 255}
    omniglot_module.clear_memory_cache()
