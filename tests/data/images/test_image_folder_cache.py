"""The image-folder (and Tiny ImageNet) disk cache is the one keyed, checked cache format
(issue 25, item 5), and byte-identical images are reported with counts (the decision on
duplicates): each bad entry is rebuilt with one warning, never used or crashed on."""

import importlib
import shutil
import warnings

import numpy as np
import pytest
from fake_images import image_tree, write_folder
from fake_tiny_imagenet import write_fake_tiny_imagenet

from tfmeta.data import array_cache, image_folder, load_image_folder

image_folder_module = importlib.import_module("tfmeta.data.images.image_folder")
source_module = importlib.import_module("tfmeta.data.images.image_folder_source")
tiny_module = importlib.import_module("tfmeta.data.images.tiny_imagenet")


@pytest.fixture
def folder(tmp_path):
    return write_folder(tmp_path / "photos", image_tree(num_classes=4, images_per_class=5,
                                                        size=16))


def entry_arrays(path):
    with np.load(path) as entry:
        return {name: entry[name] for name in entry.files if name != "__cache_meta__"}


def eight_px_as_sixteen(arrays8, arrays16):
    return arrays8


def float64_pixels(arrays8, arrays16):
    return {**arrays16, "images": arrays16["images"].astype(np.float64) * 15.38}  # up to 3,921


def too_few_rows(arrays8, arrays16):
    return {**arrays16, "images": arrays16["images"][:-3]}


@pytest.mark.parametrize("corrupt", [eight_px_as_sixteen, float64_pixels, too_few_rows])
@pytest.mark.parametrize("written", ["as main wrote entries (no key)", "under the right key"])
def test_a_wrong_entry_is_rebuilt_with_one_warning(folder, private_cache_dir, corrupt, written):
    listing = source_module.list_images(folder)
    load_image_folder(folder, 8)
    good = load_image_folder(folder, 16).images.copy()
    path8, path16 = (image_folder_module.cache_path(listing, size, None) for size in (8, 16))
    bad = corrupt(entry_arrays(path8), entry_arrays(path16))
    if written == "under the right key":
        array_cache.save_arrays(path16, bad, key=image_folder_module.cache_key(listing, 16))
    else:
        np.savez(path16, **bad)
    image_folder_module.clear_memory_cache()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        loaded = load_image_folder(folder, 16)
    messages = [str(w.message) for w in record]
    assert len(messages) == 1 and messages[0].startswith("Rebuilding the cache file"), messages
    assert loaded.images.dtype == np.uint8
    np.testing.assert_array_equal(loaded.images, good)
    inputs, _ = next(iter(image_folder(folder, ways=4, shots=4, queries=1, meta_batch_size=1,
                                       image_size=16)))
    assert float(inputs["support_x"].numpy().max()) <= 1.0
    image_folder_module.clear_memory_cache()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rewritten: read without a word
        np.testing.assert_array_equal(load_image_folder(folder, 16).images, good)


def test_tiny_imagenet_goes_through_the_same_checked_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(tiny_module, "SPLIT_SIZES", {"train": 6, "validation": 2, "test": 2})
    root = write_fake_tiny_imagenet(tmp_path / "data")
    cache = tmp_path / "cache"
    good = tiny_module.tiny_imagenet_classes("train", root, image_size=16, cache_dir=cache)
    good = np.asarray(good.examples).copy()
    tiny_module.tiny_imagenet_classes("train", root, image_size=8, cache_dir=cache)
    (entry16,) = (cache / "image_folder").glob("*-16px-*.npz")
    (entry8,) = (cache / "image_folder").glob("*-8px-*.npz")
    shutil.copy(entry8, entry16)  # an 8 px entry under the 16 px name
    image_folder_module.clear_memory_cache()
    with pytest.warns(UserWarning, match=r"Rebuilding the cache file .*-16px-.*(key|shape)"):
        again = tiny_module.tiny_imagenet_classes("train", root, image_size=16, cache_dir=cache)
    np.testing.assert_array_equal(np.asarray(again.examples), good)


def test_byte_identical_images_are_reported_with_counts_on_every_load(folder):
    shutil.copy(folder / "class_00" / "img_000.png", folder / "class_01" / "copy.png")
    shutil.copy(folder / "class_02" / "img_002.bmp", folder / "class_02" / "again.bmp")
    for load in ("decoded", "from the disk cache"):
        image_folder_module.clear_memory_cache()
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            loaded = load_image_folder(folder, 16)
        messages = [str(w.message) for w in record]
        assert len(messages) == 1, (load, messages)
        assert "2 images of" in messages[0] and "byte-identical copies" in messages[0]
        assert "1 of an image of another class and 1 within their class" in messages[0]
        assert "class_01/copy.png = class_00/img_000.png" in messages[0]
        # Warned about, not dropped: the folder's classes keep every file.
        assert loaded.sizes.tolist() == [5, 6, 6, 5]


def test_no_warning_without_copies(folder):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_image_folder(folder, 16)
