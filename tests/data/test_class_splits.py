"""Comparing a recorded class split with today's (issue 25, item 2), and the registry hook
that gives an image folder's split without decoding an image."""

import importlib

from fake_images import image_tree, write_folder

from tfmeta import data
from tfmeta.data.class_splits import class_split_changes

image_folder_module = importlib.import_module("tfmeta.data.images.image_folder")


def test_the_same_split_has_no_changes():
    splits = {"train": ["a", "b"], "validation": ["c"], "test": ["d"]}
    assert class_split_changes(splits, {k: list(reversed(v)) for k, v in splits.items()}) is None


def test_added_removed_and_moved_classes_are_named():
    before = {"train": ["a", "b", "c"], "validation": ["d"], "test": ["e"]}
    after = {"train": ["a", "b", "f"], "validation": ["c"], "test": ["e", "d"]}
    assert class_split_changes(before, after) == (
        "classes added: ['f']; split 'test' gained ['d']; split 'train' gained ['f'] and lost "
        "['c']; split 'validation' gained ['c'] and lost ['d']")
    assert class_split_changes(after, {"train": ["a"]}).startswith(
        "classes removed: ['b', 'c', 'd', 'e', 'f']")


def test_image_folder_gives_its_seeded_split_without_decoding(tmp_path, monkeypatch):
    folder = write_folder(tmp_path / "photos", image_tree(num_classes=10, images_per_class=1))
    monkeypatch.setattr(image_folder_module, "decode_images", None)
    splits = data.get_dataset("image_folder").class_splits(None, image_folder=str(folder),
                                                           image_size=12)
    classes = [f"class_{c:02d}" for c in range(10)]
    assert splits == image_folder_module.seeded_split(classes, (0.6, 0.2, 0.2), 0)
    assert data.get_dataset("omniglot").class_splits is None
