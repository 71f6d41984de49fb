"""The array cache validates what it reads and cleans up after killed writers (item 4)."""

import importlib
import os
import time
import warnings

import numpy as np
import pytest
from fake_omniglot import FAKE_SIZE

from tfmeta.data import array_cache, load_omniglot

omniglot_module = importlib.import_module("tfmeta.data.omniglot.omniglot")


def test_an_entry_round_trips_with_its_key(tmp_path):
    path = tmp_path / "entry.npz"
    assert array_cache.save_arrays(path, {"x": np.arange(6).reshape(2, 3)}, key="source-1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = array_cache.load_arrays(path, key="source-1", shapes={"x": (2, None)})
    assert list(loaded) == ["x"] and loaded["x"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert set(array_cache.load_arrays(path)) == {"x"}  # plain calls work as before


@pytest.mark.parametrize(
    "rewrite, reason",
    [
        (lambda p: np.savez(p, x=np.zeros([2, 3], "int64")), "cache key"),
        (lambda p: array_cache.save_arrays(p, {"x": np.zeros([2, 3])}, key="other"), "cache key"),
        (lambda p: array_cache.save_arrays(p, {"x": np.zeros([5, 3])}, key="source-1"), "shape"),
    ],
)
def test_a_readable_but_wrong_entry_is_rebuilt(tmp_path, rewrite, reason):
    path = tmp_path / "entry.npz"
    rewrite(path)
    with pytest.warns(UserWarning, match=f"Rebuilding the cache file .*{reason}"):
        assert array_cache.load_arrays(path, key="source-1", shapes={"x": (2, 3)}) is None


def test_content_that_does_not_match_the_checksum_is_rebuilt(tmp_path):
    path = tmp_path / "entry.npz"
    array_cache.save_arrays(path, {"x": np.ones([2, 3])}, key="k")
    with np.load(path) as entry:
        meta = entry["__cache_meta__"]
    np.savez(path, x=np.zeros([2, 3]), __cache_meta__=meta)  # right keys, blanked content
    with pytest.warns(UserWarning, match="does not match its checksum"):
        assert array_cache.load_arrays(path, key="k") is None


def test_stale_temporary_files_are_removed_and_fresh_ones_kept(tmp_path):
    stale, fresh = tmp_path / "entry.npzabc.tmp", tmp_path / "entry.npzdef.tmp"
    for file in (stale, fresh):
        file.write_bytes(b"\0" * 1024)
    old = time.time() - array_cache.STALE_TEMPORARY_SECONDS - 60
    os.utime(stale, (old, old))
    array_cache.load_arrays(tmp_path / "entry.npz")
    assert not stale.exists() and fresh.exists()


@pytest.mark.parametrize("content", ["ten_characters", "blank"])
def test_omniglot_rebuilds_a_wrong_cache_entry(fake_root, private_cache_dir, content):
    good = load_omniglot(fake_root, FAKE_SIZE, dtype="uint8")
    omniglot_module.clear_memory_cache()
    (entry,) = (private_cache_dir / "omniglot").glob("*.npz")
    with np.load(entry) as arrays:
        arrays = dict(arrays)
    if content == "blank":
        arrays["images"] = np.zeros_like(arrays["images"])
    else:
        arrays = {"images": arrays["images"][:2], "characters": arrays["characters"][:2],
                  "num_background": arrays["num_background"]}
    np.savez(entry, **arrays)
    with pytest.warns(UserWarning, match="Rebuilding the cache file"):
        data = load_omniglot(fake_root, FAKE_SIZE, dtype="uint8")
    np.testing.assert_array_equal(data.images, good.images)
    omniglot_module.clear_memory_cache()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the entry was rewritten: no warning now
        load_omniglot(fake_root, FAKE_SIZE, dtype="uint8")
