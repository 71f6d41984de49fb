"""tfmeta.data.tiny_imagenet on a fake Tiny ImageNet in the exact on-disk layout."""

import importlib

import numpy as np
import pytest
import tensorflow as tf
from fake_tiny_imagenet import IMAGES, SPLITS, write_fake_tiny_imagenet

from tfmeta import data
from tfmeta.data import tiny_imagenet

tiny_module = importlib.import_module("tfmeta.data.images.tiny_imagenet")
image_folder_module = importlib.import_module("tfmeta.data.images.image_folder")


@pytest.fixture(autouse=True)
def fake_sizes(monkeypatch):
    """The fake split has 6 / 2 / 2 classes instead of 120 / 40 / 40."""
    monkeypatch.setattr(tiny_module, "SPLIT_SIZES", {"train": 6, "validation": 2, "test": 2})
    image_folder_module.clear_memory_cache()


@pytest.fixture
def fake_root(tmp_path):
    return write_fake_tiny_imagenet(tmp_path / "data")


@pytest.mark.parametrize("archive", [True, False])
def test_contract_from_the_zip_or_the_extracted_folder(tmp_path, archive):
    root = write_fake_tiny_imagenet(tmp_path / "data", archive=archive)
    dataset = tiny_imagenet("train", ways=5, shots=1, queries=2, meta_batch_size=3,
                            data_dir=root)
    inputs, query_y = next(iter(dataset))
    assert inputs["support_x"].shape == (3, 5, 64, 64, 3)
    assert inputs["query_x"].shape == (3, 10, 64, 64, 3)
    assert inputs["support_x"].dtype == tf.float32 and query_y.dtype == tf.int32
    x = inputs["support_x"].numpy()
    assert 0.0 <= x.min() and x.max() <= 1.0


def test_splits_are_disjoint_and_use_only_their_classes(fake_root):
    loaded = data.load_image_folder(
        fake_root / "tiny_imagenet" / "tiny-imagenet-200-train.zip", 64,
        subdir="tiny-imagenet-200/train")
    owner = {}
    for name in loaded.classes:
        for image in loaded.class_images(name):
            owner[image.tobytes()] = name
    for split, wnids in (("train", SPLITS["train"]), ("validation", SPLITS["val"]),
                         ("test", SPLITS["test"])):
        dataset = tiny_imagenet(split, ways=2, shots=1, queries=1, meta_batch_size=16,
                                data_dir=fake_root)
        inputs, _ = next(iter(dataset))
        images = np.round(inputs["support_x"].numpy() * 255).astype(np.uint8)
        assert {owner[image.tobytes()] for image in images.reshape([-1, 64, 64, 3])} <= set(
            wnids)


def test_greyscale_jpegs_become_three_equal_channels(fake_root):
    loaded = data.load_image_folder(
        fake_root / "tiny_imagenet" / "tiny-imagenet-200-train.zip", 64,
        subdir="tiny-imagenet-200/train")
    assert loaded.images.shape == (10 * IMAGES, 64, 64, 3)
    first_class = loaded.class_images(loaded.classes[0])
    # Files sort as _0, _1, ..., _7; _0, _3 and _6 are greyscale.
    for index, image in enumerate(first_class):
        grey = (image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all()
        assert grey == (index % 3 == 0)


def test_any_image_size(fake_root):
    dataset = tiny_imagenet("test", ways=2, shots=1, queries=1, meta_batch_size=1,
                            image_size=32, data_dir=fake_root)
    assert dataset.element_spec[0]["support_x"].shape == tf.TensorShape([1, 2, 32, 32, 3])


def test_registry_entry(fake_root):
    spec = data.get_dataset("tiny_imagenet")
    assert spec.splits == ("train", "validation", "test")
    assert spec.example_shape({"image_size": 84}) == (84, 84, 3)
    assert spec.example_shape({}) == (64, 64, 3)
    dataset = spec.episodes("validation", ways=2, shots=1, queries=1, meta_batch_size=1,
                            data_dir=fake_root, image_size=16)
    assert dataset.element_spec[1].shape == tf.TensorShape([1, 2])


# === Bad input ===


def test_no_data_root(monkeypatch):
    monkeypatch.delenv("TFMETA_DATA_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="TFMETA_DATA_DIR"):
        tiny_imagenet("train")


def test_no_tiny_imagenet_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"tiny_imagenet does not exist"):
        tiny_imagenet("train", data_dir=tmp_path)


def test_no_images(fake_root):
    (fake_root / "tiny_imagenet" / "tiny-imagenet-200-train.zip").unlink()
    with pytest.raises(FileNotFoundError, match="tiny-imagenet-200-train.zip or"):
        tiny_imagenet("train", data_dir=fake_root)


def test_split_file_missing(fake_root):
    (fake_root / "tiny_imagenet" / "splits" / "fewshot" / "val.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"class list file .*val\.txt"):
        tiny_imagenet("train", data_dir=fake_root)


def test_split_file_of_the_wrong_size(fake_root, monkeypatch):
    monkeypatch.setattr(tiny_module, "SPLIT_SIZES", {"train": 120, "validation": 2, "test": 2})
    with pytest.raises(ValueError, match=r"train\.txt: expected 120 distinct.*Received: 6"):
        tiny_imagenet("train", data_dir=fake_root)


def test_overlapping_splits(fake_root):
    folder = fake_root / "tiny_imagenet"
    (folder / "SHA256SUMS").unlink()
    (folder / "splits" / "fewshot" / "test.txt").write_text(
        f"{SPLITS['train'][0]}\n{SPLITS['test'][0]}\n")
    with pytest.raises(ValueError, match=r"train and test splits share the classes"):
        tiny_imagenet("test", data_dir=fake_root)


def test_split_file_not_matching_its_checksum(fake_root):
    path = fake_root / "tiny_imagenet" / "splits" / "fewshot" / "test.txt"
    path.write_text("\n".join(reversed(SPLITS["test"])) + "\n")
    with pytest.raises(ValueError, match=r"test\.txt does not match its checksum"):
        tiny_imagenet("test", data_dir=fake_root)


def test_split_naming_a_class_without_images(fake_root):
    folder = fake_root / "tiny_imagenet"
    (folder / "SHA256SUMS").unlink()
    (folder / "splits" / "fewshot" / "test.txt").write_text(f"{SPLITS['test'][0]}\nn99999999\n")
    with pytest.raises(ValueError, match=r"classes \['n99999999'\] have no folder"):
        tiny_imagenet("test", data_dir=fake_root)


def test_bad_split_name(fake_root):
    with pytest.raises(ValueError, match="`split`"):
        tiny_imagenet("dev", data_dir=fake_root)


def test_pretraining_batches_read_the_split_classes_in_split_order(fake_root):
    # tfmeta.data.batches (Baseline, Baseline++, Meta-Baseline pre-training) over the train
    # split: one pass is each of its 6 x 8 images once, labelled by the class's place in the
    # split file, with the pixels that episodes read.
    loaded = data.load_image_folder(
        fake_root / "tiny_imagenet" / "tiny-imagenet-200-train.zip", 32,
        subdir="tiny-imagenet-200/train")
    owner = {loaded.class_images(name)[i].tobytes(): name
             for name in loaded.classes for i in range(IMAGES)}
    stream = data.batches("tiny_imagenet", "train", batch_size=12, seed=1, data_dir=fake_root,
                          image_size=32)
    assert stream.element_spec[0].shape == (12, 32, 32, 3)
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in stream.take(4)])
    x, y = np.concatenate(xs), np.concatenate(ys)
    assert 0.0 <= x.min() and x.max() <= 1.0
    names = [owner[np.round(e * 255).astype(np.uint8).tobytes()] for e in x]
    assert [SPLITS["train"].index(name) for name in names] == list(y)
    assert len(set(names)) == 6 and all(names.count(n) == IMAGES for n in set(names))
    with pytest.raises(ValueError, match="`batch_size`.*examples of split 'test'"):
        data.batches("tiny_imagenet", "test", batch_size=17, data_dir=fake_root)
