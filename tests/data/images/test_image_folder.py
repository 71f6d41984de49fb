"""tfmeta.data.image_folder on generated folders and zips: the contract, colour modes,
class splits, caching, and every bad input the issue lists."""

import importlib
import zipfile

import numpy as np
import pytest
import tensorflow as tf
from fake_images import KINDS, expected_rgb, image_tree, pixels, write_folder, write_zip

from tfmeta import data
from tfmeta.data import image_folder, load_image_folder

image_folder_module = importlib.import_module("tfmeta.data.images.image_folder")


@pytest.fixture
def tree():
    return image_tree(num_classes=6, images_per_class=8)


@pytest.fixture
def folder(tmp_path, tree):
    return write_folder(tmp_path / "photos", tree)


def first(dataset):
    inputs, query_y = next(iter(dataset))
    return {k: v.numpy() for k, v in inputs.items()}, query_y.numpy()


def test_contract_shapes_dtypes_range_and_labels(folder):
    inputs, query_y = first(image_folder(folder, ways=3, shots=2, queries=4,
                                         meta_batch_size=2, image_size=12))
    assert inputs["support_x"].shape == (2, 6, 12, 12, 3)
    assert inputs["query_x"].shape == (2, 12, 12, 12, 3)
    assert inputs["support_x"].dtype == np.float32
    assert inputs["support_y"].dtype == query_y.dtype == np.int32
    assert 0.0 <= inputs["support_x"].min() and inputs["support_x"].max() <= 1.0
    for labels, per_class in ((inputs["support_y"], 2), (query_y, 4)):
        for episode in labels:
            assert sorted(np.bincount(episode, minlength=3)) == [per_class] * 3


def test_every_format_and_colour_mode_is_decoded_to_its_rgb_pixels(folder, tree):
    """Each stored file equals PIL's RGB reading of it (greyscale repeated over three
    channels, palette looked up, alpha dropped): exact for lossless formats."""
    loaded = load_image_folder(folder, image_size=12)
    assert loaded.images.dtype == np.uint8 and loaded.images.shape == (48, 12, 12, 3)
    assert loaded.classes == tuple(f"class_{c:02d}" for c in range(6))
    seen = set()
    for c, name in enumerate(loaded.classes):
        files = sorted(f for f in tree if f.startswith(name + "/"))
        for row, file in zip(loaded.class_images(name), files, strict=True):
            expected = expected_rgb(tree[file])
            index = int(file.split("img_")[1][:3])
            _, fmt, mode = KINDS[(c + index) % len(KINDS)]
            seen.add((fmt, mode))
            error = np.abs(row.astype(int) - expected)
            if fmt == "JPEG":  # decoders may upsample chroma differently
                assert error.max() <= 8 and error.mean() < 2, file
            else:
                assert error.max() == 0, file
            if mode == "L":
                assert (row[..., 0] == row[..., 1]).all() and (row[..., 1] == row[..., 2]).all()
    assert seen == {(fmt, mode) for _, fmt, mode in KINDS}


def test_episode_pixels_are_the_stored_bytes_over_255(folder):
    loaded = load_image_folder(folder, image_size=12)
    inputs, _ = first(image_folder(folder, ways=6, shots=7, queries=1, meta_batch_size=1,
                                   image_size=12))
    stored = {row.tobytes() for row in loaded.images}
    for image in inputs["support_x"][0]:
        as_bytes = np.round(image * 255.0).astype(np.uint8)
        assert np.allclose(as_bytes / 255.0, image, atol=1e-6)
        assert as_bytes.tobytes() in stored


def test_any_image_size_by_resizing(tmp_path):
    tree = image_tree(num_classes=3, images_per_class=4, size=20)
    folder = write_folder(tmp_path / "big", tree)
    for size in (7, 20, 33):
        loaded = load_image_folder(folder, image_size=size)
        assert loaded.images.shape == (12, size, size, 3)
    # A flat colour stays that colour at any size.
    flat = {"a/x.png": _png(np.full([9, 15, 3], [10, 200, 90], np.uint8)),
            "a/y.png": _png(np.full([30, 30, 3], 77, np.uint8))}
    loaded = load_image_folder(write_folder(tmp_path / "flat", flat), image_size=16)
    assert (loaded.images[0] == [10, 200, 90]).all() and (loaded.images[1] == 77).all()


def test_zip_of_the_folder_gives_the_same_images(tmp_path, folder, tree):
    stored = write_zip(tmp_path / "photos.zip", tree, prefix="photos/")
    deflated = write_zip(tmp_path / "flat.zip", tree, compression=zipfile.ZIP_DEFLATED)
    reference = load_image_folder(folder, image_size=12)
    for archive in (stored, deflated):
        loaded = load_image_folder(archive, image_size=12)
        assert loaded.classes == reference.classes
        np.testing.assert_array_equal(loaded.images, reference.images)
    inputs, _ = first(image_folder(stored, ways=2, shots=1, queries=1, meta_batch_size=1,
                                   image_size=12))
    assert inputs["support_x"].shape == (1, 2, 12, 12, 3)


def test_nested_image_folders_and_other_files(tmp_path):
    tree = {"cat/images/a.png": _png(pixels(0, 0)), "cat/images/b.png": _png(pixels(0, 1)),
            "cat/boxes.txt": b"not an image", "dog/c.png": _png(pixels(1, 0)),
            "dog/.DS_Store": b"x", ".hidden/d.png": _png(pixels(2, 0))}
    loaded = load_image_folder(write_folder(tmp_path / "t", tree), image_size=12)
    assert loaded.classes == ("cat", "dog")
    assert list(loaded.sizes) == [2, 1]


def test_seeded_split_by_fractions_is_disjoint_complete_and_fixed(tmp_path):
    tree = image_tree(num_classes=20, images_per_class=2)
    folder = write_folder(tmp_path / "many", tree)
    classes = [f"class_{c:02d}" for c in range(20)]
    splits = image_folder_module.seeded_split(classes, (0.6, 0.2, 0.2), seed=0)
    assert [len(splits[s]) for s in ("train", "validation", "test")] == [12, 4, 4]
    assert sorted(sum(splits.values(), ())) == classes
    assert splits == image_folder_module.seeded_split(classes, (0.6, 0.2, 0.2), seed=0)
    assert splits != image_folder_module.seeded_split(classes, (0.6, 0.2, 0.2), seed=1)
    # Episodes of a split only show its classes: every image's class, found by its pixels.
    loaded = load_image_folder(folder, image_size=12)
    owner = {row.tobytes(): loaded.classes[np.searchsorted(loaded.offsets, i, "right") - 1]
             for i, row in enumerate(loaded.images)}
    for split, names in splits.items():
        dataset = image_folder(folder, ways=4, shots=1, queries=1, meta_batch_size=8,
                               image_size=12, split=split)
        inputs, _ = first(dataset)
        images = np.round(inputs["support_x"].reshape([-1, 12, 12, 3]) * 255).astype(np.uint8)
        assert {owner[image.tobytes()] for image in images} <= set(names)


def test_class_lists_as_python_lists_files_and_mappings(tmp_path, folder):
    train_file = tmp_path / "train.txt"
    train_file.write_text("# my split\nclass_00\nclass_01\n\nclass_02\n")
    for classes, split in ((["class_03", "class_04"], None), (train_file, None),
                           ({"train": train_file, "val": ["class_05", "class_04"]}, "validation")):
        inputs, _ = first(image_folder(folder, ways=2, shots=1, queries=1, meta_batch_size=2,
                                       image_size=12, classes=classes, split=split))
        assert inputs["support_x"].shape == (2, 2, 12, 12, 3)
    with pytest.raises(ValueError, match=r"`ways`.*between 1 and 2"):
        image_folder(folder, ways=3, shots=1, queries=1, meta_batch_size=1, image_size=12,
                     classes=["class_03", "class_04"])


def test_decoded_once_then_read_from_the_cache(folder, private_cache_dir, monkeypatch):
    load_image_folder(folder, image_size=12)
    entries = list((private_cache_dir / "image_folder").glob("*.npz"))
    assert len(entries) == 1
    image_folder_module.clear_memory_cache()

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(image_folder_module, "decode_images", no_decoding)
    assert load_image_folder(folder, image_size=12).images.shape == (48, 12, 12, 3)
    # A changed folder is a new cache entry.
    (folder / "class_00" / "new.png").write_bytes(_png(pixels(9, 9)))
    with pytest.raises(AssertionError, match="decoded again"):
        load_image_folder(folder, image_size=12)


def test_small_classes_are_an_error_or_skipped_with_a_warning(tmp_path):
    folder = write_folder(tmp_path / "uneven", image_tree(4, 6, sizes={1: 2}))
    with pytest.raises(ValueError, match=r"1 of the 4 classes have fewer than shots \+ "
                                         r"queries = 3 images.*class_01.*small_classes='skip'"):
        image_folder(folder, ways=2, shots=1, queries=2, meta_batch_size=1, image_size=12)
    with pytest.warns(UserWarning, match="class_01"):
        dataset = image_folder(folder, ways=3, shots=1, queries=2, meta_batch_size=1,
                               image_size=12, small_classes="skip")
    assert first(dataset)[0]["support_x"].shape == (1, 3, 12, 12, 3)


# === Bad input: one clear error naming the file, class or argument ===


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"image folder .*nope does not exist"):
        image_folder(tmp_path / "nope", 2, 1, 1, 1, 12)


def test_folder_without_class_folders(tmp_path):
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.png").write_bytes(_png(pixels(0, 0)))
    with pytest.raises(FileNotFoundError, match="holds no class folders"):
        image_folder(tmp_path / "flat", 2, 1, 1, 1, 12)


def test_a_file_that_is_not_a_zip(tmp_path):
    (tmp_path / "x.tar").write_bytes(b"nope")
    with pytest.raises(ValueError, match=r"`path`.*not a zip archive"):
        image_folder(tmp_path / "x.tar", 2, 1, 1, 1, 12)


def test_empty_class_is_named(folder):
    (folder / "class_99").mkdir()
    (folder / "class_99" / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match=r"class folders \['class_99'\] hold no image"):
        image_folder(folder, 2, 1, 1, 1, 12)
    # Not chosen, it does not matter.
    image_folder(folder, 2, 1, 1, 1, 12, classes=["class_00", "class_01"])


@pytest.mark.parametrize("archive", [False, True])
def test_undecodable_image_is_named(tmp_path, tree, archive):
    tree = {**tree, "class_02/broken.jpg": b"\xff\xd8\xff this is no jpeg"}
    path = (write_zip(tmp_path / "bad.zip", tree) if archive
            else write_folder(tmp_path / "bad", tree))
    with pytest.raises(ValueError, match=r"Could not decode the image .*class_02/broken\.jpg"):
        image_folder(path, 2, 1, 1, 1, 12)


def test_class_list_naming_a_missing_class(tmp_path, folder):
    with pytest.raises(ValueError, match=r"classes \['zebra'\] have no folder"):
        image_folder(folder, 2, 1, 1, 1, 12, classes=["class_00", "zebra"])
    split_file = tmp_path / "test.txt"
    split_file.write_text("class_00\nunicorn\n")
    with pytest.raises(ValueError, match=r"test\.txt: the classes \['unicorn'\]"):
        image_folder(folder, 2, 1, 1, 1, 12, classes={"test": split_file}, split="test")
    with pytest.raises(FileNotFoundError, match="class list file .*missing.txt"):
        image_folder(folder, 2, 1, 1, 1, 12, classes=tmp_path / "missing.txt")


@pytest.mark.parametrize("kwargs, match", [
    ({"image_size": 0}, "`image_size`"),
    ({"ways": 0}, "`ways`"),
    ({"split": "dev"}, "`split`"),
    ({"split": "train", "fractions": (0.5, 0.5, 0.5)}, "`fractions`"),
    ({"small_classes": "drop"}, "`small_classes`"),
    ({"classes": ["class_00", "class_00"]}, "more than once"),
    ({"classes": {"train": ["class_00"]}}, "`split`"),
])
def test_bad_arguments(folder, kwargs, match):
    arguments = {"ways": 2, "shots": 1, "queries": 1, "meta_batch_size": 1, "image_size": 12,
                 **kwargs}
    with pytest.raises(ValueError, match=match):
        image_folder(folder, **arguments)


# === Registry ===


def test_registry_entry(folder):
    spec = data.get_dataset("image_folder")
    assert spec.example == "image" and not spec.regression
    assert spec.example_shape({"image_size": 32}) == (32, 32, 3)
    dataset = spec.episodes("train", ways=2, shots=1, queries=1, meta_batch_size=1,
                            image_size=12, image_folder=str(folder))
    assert dataset.element_spec[0]["support_x"].shape == tf.TensorShape([1, 2, 12, 12, 3])
    with pytest.raises(ValueError, match="`image_folder`"):
        spec.episodes("train", ways=2, shots=1, queries=1, meta_batch_size=1, image_size=12)


def _png(array):
    return tf.io.encode_png(tf.constant(array)).numpy()


def test_splits_of_one_folder_share_one_copy_of_the_images(tmp_path):
    folder = write_folder(tmp_path / "many", image_tree(num_classes=10, images_per_class=2))
    for split in ("train", "validation", "test"):
        image_folder(folder, ways=2, shots=1, queries=1, meta_batch_size=1, image_size=12,
                     split=split)
    assert len(image_folder_module._TENSORS) == 1


def test_bad_arguments_fail_before_any_image_is_decoded(folder, monkeypatch):
    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded")

    monkeypatch.setattr(image_folder_module, "decode_images", no_decoding)
    with pytest.raises(ValueError, match="shots \\+ queries"):
        image_folder(folder, ways=2, shots=5, queries=5, meta_batch_size=1, image_size=12)
    with pytest.raises(ValueError, match="`ways`"):
        image_folder(folder, ways=7, shots=1, queries=1, meta_batch_size=1, image_size=12)
