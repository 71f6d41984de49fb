"""Every argument of tfmeta.data.image_folder checked in one line before any decoding
(issue 25, items 1, 8 and 10): non-finite fractions, split seeds, paths, sub-folders that
leave the folder, zip members with absolute paths, and image sizes that cannot fit."""

import importlib
import zipfile

import pytest
from fake_images import image_tree, write_folder, write_zip

from tfmeta.data import arguments, image_folder, load_image_folder

image_folder_module = importlib.import_module("tfmeta.data.images.image_folder")

EPISODE = {"ways": 2, "shots": 1, "queries": 1, "meta_batch_size": 1, "image_size": 12}


@pytest.fixture(autouse=True)
def no_decoding(monkeypatch):
    """Every check here must fail before an image is decoded."""
    image_folder_module.clear_memory_cache()

    def decode(*args, **kwargs):
        raise AssertionError("decoded before the argument check")

    monkeypatch.setattr(image_folder_module, "decode_images", decode)
    yield
    image_folder_module.clear_memory_cache()


@pytest.fixture
def folder(tmp_path):
    return write_folder(tmp_path / "photos", image_tree(num_classes=6, images_per_class=3))


def one_line_error(error_type, call, *fragments):
    with pytest.raises(error_type) as raised:
        call()
    message = str(raised.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


@pytest.mark.parametrize("fractions", [
    (float("nan"), 0.5, 0.5),
    (0.5, float("nan"), 0.5),
    (float("inf"), -float("inf"), 1.0),
    (0.6, 0.2),
    "0.6,0.2,0.2",
    (True, False, False),
    None,
])
def test_non_finite_or_malformed_fractions_are_refused(folder, fractions):
    one_line_error(ValueError, lambda: image_folder(folder, **EPISODE, split="train",
                                                    fractions=fractions), "`fractions`")


@pytest.mark.parametrize("split_seed", [None, -1, "abc", 1.5, "3", True])
def test_bad_split_seeds_are_refused(folder, split_seed):
    one_line_error(ValueError, lambda: image_folder(folder, **EPISODE, split="train",
                                                    split_seed=split_seed),
                   "`split_seed`", f"split_seed={split_seed!r}")


def test_a_numpy_integer_split_seed_is_an_integer():
    import numpy as np

    assert (image_folder_module.seeded_split([f"c{i}" for i in range(5)], (0.6, 0.2, 0.2),
                                             np.int64(3))
            == image_folder_module.seeded_split([f"c{i}" for i in range(5)], (0.6, 0.2, 0.2), 3))


@pytest.mark.parametrize("path", [None, 123, ""])
def test_bad_paths_are_refused(path):
    one_line_error(ValueError, lambda: image_folder(path, **EPISODE), "`path`")


@pytest.mark.parametrize("subdir", ["../x", "a/../../x", "/etc", "..\\x", 7, ""])
def test_sub_folders_that_leave_the_folder_are_refused(folder, subdir):
    (folder.parent / "x").mkdir(exist_ok=True)
    one_line_error(ValueError, lambda: image_folder(folder, **EPISODE, subdir=subdir),
                   "`subdir`")


def test_a_sub_folder_linking_outside_is_refused(folder, tmp_path):
    outside = write_folder(tmp_path / "elsewhere", image_tree(num_classes=3, images_per_class=2))
    (folder / "inner").symlink_to(outside)
    one_line_error(ValueError, lambda: image_folder(folder, **EPISODE, subdir="inner"),
                   "`subdir`", "links outside")


@pytest.mark.parametrize("member", ["/abs/x.png", "../up/x.png", "a/../../x.png"])
def test_zip_members_outside_the_archive_root_are_refused(tmp_path, member):
    path = write_zip(tmp_path / "photos.zip", image_tree(num_classes=3, images_per_class=2))
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(zipfile.ZipInfo(member), b"not read")
    one_line_error(ValueError, lambda: image_folder(path, **EPISODE), "Invalid zip archive",
                   repr(member))


@pytest.mark.parametrize("image_size", [4096, 1025, 0, 12.0])  # MAX_IMAGE_SIZE is 1024
def test_image_sizes_beyond_the_bound_are_refused_before_decoding(folder, image_size):
    arguments_ = {**EPISODE, "image_size": image_size}
    one_line_error(ValueError, lambda: image_folder(folder, **arguments_), "`image_size`")
    one_line_error(ValueError, lambda: load_image_folder(folder, image_size), "`image_size`")


def test_decoded_images_that_cannot_fit_in_memory_are_refused(folder, monkeypatch):
    monkeypatch.setattr(arguments, "memory_bytes", lambda: 18 * 12 * 12 * 3)  # fits 9 images
    one_line_error(ValueError, lambda: load_image_folder(folder, 12), "`image_size`",
                   "18 images", "GiB")
