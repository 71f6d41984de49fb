"""Tiny ImageNet on the real data in $TFMETA_DATA_DIR (skipped, with the reason, without it).

The split-file checks read a few small files; the tests marked slow decode all 100,000
JPEGs once per session (about a minute on 2 cores) into a session cache folder.
"""

import hashlib
import importlib
import os
import random
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from tfmeta.data import load_image_folder, tiny_imagenet

tiny_module = importlib.import_module("tfmeta.data.images.tiny_imagenet")

ZIP = "tiny-imagenet-200-train.zip"


@pytest.fixture(scope="session")
def real_tiny_root() -> Path:
    value = os.environ.get("TFMETA_DATA_DIR")
    if not value:
        pytest.skip("real Tiny ImageNet test: TFMETA_DATA_DIR is not set (CI sets it)")
    root = Path(value).absolute()
    if not (root / "tiny_imagenet" / ZIP).is_file():
        pytest.skip(f"real Tiny ImageNet test: no tiny_imagenet/{ZIP} in {root}")
    return root


@pytest.fixture(scope="session")
def wnids(real_tiny_root):
    with zipfile.ZipFile(real_tiny_root / "tiny_imagenet" / ZIP) as archive:
        return archive.read("tiny-imagenet-200/wnids.txt").decode().split()


@pytest.fixture(scope="session")
def real_images(real_tiny_root, tmp_path_factory):
    return load_image_folder(real_tiny_root / "tiny_imagenet" / ZIP, 64,
                             subdir="tiny-imagenet-200/train",
                             cache_dir=tmp_path_factory.mktemp("tiny_cache"))


def test_split_files_are_120_40_40_disjoint_and_cover_the_200_classes(real_tiny_root, wnids):
    splits = tiny_module.split_classes(real_tiny_root / "tiny_imagenet")
    assert {name: len(classes) for name, classes in splits.items()} == {
        "train": 120, "validation": 40, "test": 40}
    union = set().union(*splits.values())
    assert len(union) == 200 and union == set(wnids)


def test_split_files_follow_their_documented_rule_and_checksums(real_tiny_root, wnids):
    """The README: the 200 sorted wnids shuffled with random.Random(0), cut 120/40/40."""
    shuffled = sorted(wnids)
    random.Random(0).shuffle(shuffled)
    folder = real_tiny_root / "tiny_imagenet"
    splits = tiny_module.split_classes(folder)
    assert set(splits["train"]) == set(shuffled[:120])
    assert set(splits["validation"]) == set(shuffled[120:160])
    assert set(splits["test"]) == set(shuffled[160:])
    sums = dict(reversed(line.split()) for line in (folder / "SHA256SUMS").read_text().split("\n")
                if line.strip())
    for name in ("train", "val", "test"):
        path = folder / "splits" / "fewshot" / f"{name}.txt"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == sums[f"splits/fewshot/{name}.txt"]


@pytest.mark.slow
def test_100000_images_of_200_classes_and_greyscale_as_three_channels(real_tiny_root,
                                                                      real_images):
    assert real_images.images.shape == (100_000, 64, 64, 3)
    assert len(real_images.classes) == 200 and set(real_images.sizes) == {500}
    # Greyscale JPEGs, found from their headers (one colour component), independently of
    # the decoder: the README says 1,821. Each must decode to three equal channels.
    grey = _greyscale_members(real_tiny_root / "tiny_imagenet" / ZIP)
    assert len(grey) == 1821
    # Rows follow the sorted member names (classes sorted, then files sorted as strings).
    files = sorted(f"{name}/images/{name}_{i}.JPEG" for name in real_images.classes
                   for i in range(500))
    index = {f: i for i, f in enumerate(files)}
    for member in grey:
        image = real_images.images[index[member.removeprefix("tiny-imagenet-200/train/")]]
        assert (image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all()


@pytest.mark.slow
def test_contract_and_split_disjointness_on_real_data(real_tiny_root, real_images):
    # Tiny ImageNet holds a few identical images under two classes: an image may have
    # several owners, and one of them must be in the split.
    owners = defaultdict(set)
    for name in real_images.classes:
        for image in real_images.class_images(name):
            owners[hash(image.tobytes())].add(name)
    # `real_images` is in this process' memory cache, so these datasets decode nothing.
    splits = tiny_module.split_classes(real_tiny_root / "tiny_imagenet")
    for split in ("train", "validation", "test"):
        dataset = tiny_imagenet(split, ways=5, shots=1, queries=15, meta_batch_size=4,
                                data_dir=real_tiny_root)
        inputs, query_y = next(iter(dataset))
        assert inputs["support_x"].shape == (4, 5, 64, 64, 3)
        assert inputs["query_x"].shape == (4, 75, 64, 64, 3) and query_y.shape == (4, 75)
        x = inputs["query_x"].numpy()
        assert 0.0 <= x.min() and x.max() <= 1.0 and x.std() > 0.1
        images = np.round(x * 255).astype(np.uint8).reshape([-1, 64, 64, 3])
        assert all(owners[hash(image.tobytes())] & set(splits[split]) for image in images)


def _greyscale_members(path):
    """Zip members that are JPEGs with one colour component (read from the SOF marker)."""
    grey = []
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.filename.endswith(".JPEG"):
                if _jpeg_components(archive.read(info)) == 1:
                    grey.append(info.filename)
    return grey


def _jpeg_components(data):
    position = 2
    while position + 4 <= len(data):
        marker, length = data[position + 1], int.from_bytes(data[position + 2:position + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return data[position + 9]
        position += 2 + length
    return None


@pytest.mark.slow
def test_pretraining_batches_on_real_data(real_tiny_root, real_images):
    # What Baseline/Baseline++/Meta-Baseline pre-train on: the 60,000 images of the 120 train
    # classes, labelled by their place in the split file.
    from tfmeta.data import batches

    train = tiny_module.split_classes(real_tiny_root / "tiny_imagenet")["train"]
    stream = batches("tiny_imagenet", "train", batch_size=256, data_dir=real_tiny_root,
                     image_size=64)
    x, y = (t.numpy() for t in next(iter(stream)))
    assert x.shape == (256, 64, 64, 3) and y.shape == (256,) and 0 <= y.min() <= y.max() < 120
    images = np.round(x * 255).astype(np.uint8)
    for image, label in zip(images, y):
        index = real_images.classes.index(train[label])
        start = real_images.offsets[index]
        owned = real_images.images[start:start + real_images.sizes[index]]
        assert (owned == image).all(axis=(1, 2, 3)).any()
