"""Tiny stand-ins for the few-shot benchmarks, in their exact on-disk formats.

Every image is one flat colour that encodes where it came from, so a test can read an
episode's pixels back into (class, image) pairs:

- mini-ImageNet JPEGs: class `c` (its index in train + val + test order) has red
  `20 + 20 * (c // 10)` and blue `20 + 20 * (c % 10)`; image `i` of a class has green
  `10 + 10 * i` (steps of 10 survive JPEG).
- CIFAR-100 binary records: red = fine label, green = image index within its class,
  blue = coarse label (exact: no compression).
- CUB (TFDS mock): red = label, green = image index within its class.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from tfmeta.data.benchmarks.benchmark_splits import SPLITS, cifar100_classes, split_classes


def mini_imagenet_wnids() -> list[str]:
    return [wnid for split in SPLITS for wnid in split_classes("mini_imagenet", split)]


def mini_imagenet_colour(class_index: int, image_index: int) -> tuple[int, int, int]:
    return (20 + 20 * (class_index // 10), 10 + 10 * image_index, 20 + 20 * (class_index % 10))


def decode_mini_imagenet(pixels: np.ndarray) -> tuple[int, int]:
    """(class index, image index) of one episode image in [0, 1]."""
    red, green, blue = np.round(pixels.reshape(-1, 3).mean(axis=0) * 255.0)
    return int(round((red - 20) / 20)) * 10 + int(round((blue - 20) / 20)), int(
        round((green - 10) / 10)
    )


def write_fake_mini_imagenet(
    folder: Path, images_per_class: int = 6, layout: str = "images", size: tuple = (12, 16)
) -> Path:
    """Writes the 100 classes as `<folder>/images/<wnid><number>.jpg` or `<folder>/<wnid>/`.

    With layout "images", `train.csv`, `val.csv` and `test.csv` are written beside
    `images/` as in the common release.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for class_index, wnid in enumerate(mini_imagenet_wnids()):
        target = folder / ("images" if layout == "images" else wnid)
        target.mkdir(exist_ok=True)
        for image_index in range(images_per_class):
            colour = np.array(mini_imagenet_colour(class_index, image_index), np.uint8)
            image = np.broadcast_to(colour, (*size, 3))
            data = tf.io.encode_jpeg(image, quality=100).numpy()
            (target / f"{wnid}{image_index + 1:08d}.jpg").write_bytes(data)
    if layout == "images":
        for split, name in zip(SPLITS, ("train", "val", "test")):
            rows = ["filename,label"] + [
                f"{wnid}{index + 1:08d}.jpg,{wnid}"
                for wnid in split_classes("mini_imagenet", split)
                for index in range(images_per_class)
            ]
            (folder / f"{name}.csv").write_text("\n".join(rows) + "\n")
    return folder


def write_fake_cifar100_archive(folder: Path, train_per_class: int = 3,
                                test_per_class: int = 2) -> Path:
    """Writes the extracted `cifar-100-binary/` folder of CIFAR-100's archive; returns `folder`.

    Records are 1 byte coarse label, 1 byte fine label, 3,072 bytes of channel-major 32x32
    pixels; the label name files list one name per line, in label order.
    """
    classes = cifar100_classes()
    superclasses = sorted({superclass for superclass, _ in classes})
    binary = folder / "cifar-100-binary"
    binary.mkdir(parents=True, exist_ok=True)
    (binary / "fine_label_names.txt").write_text("\n".join(n for _, n in classes) + "\n")
    (binary / "coarse_label_names.txt").write_text("\n".join(superclasses) + "\n")
    for name, first, count in (("train", 0, train_per_class),
                               ("test", train_per_class, test_per_class)):
        records = []
        for index in range(first, first + count):
            for fine, (superclass, _) in enumerate(classes):
                coarse = superclasses.index(superclass)
                planes = np.stack([np.full((32, 32), value, np.uint8)
                                   for value in (fine, index, coarse)])
                records.append(bytes([coarse, fine]) + planes.tobytes())
        (binary / f"{name}.bin").write_bytes(b"".join(records))
    return folder


def prepare_fake_cifar100(tfds_dir: Path, monkeypatch) -> Path:
    """Prepares TFDS' real `cifar100` builder in `tfds_dir` from the fake archive, offline."""
    archive = write_fake_cifar100_archive(Path(tempfile.mkdtemp(prefix="fake_cifar100_")))
    monkeypatch.setattr(tfds.download.DownloadManager, "download_and_extract",
                        lambda self, url: archive)
    tfds.builder("cifar100", data_dir=str(tfds_dir)).download_and_prepare()
    return tfds_dir


def cub_as_dataset(images_per_split: dict[str, int]):
    """An `as_dataset_fn` for `tfds.testing.mock_data`: CUB's image and label features.

    Every one of the 200 classes has `images_per_split[split]` images of varying sizes;
    red = label, green = image index within the class (train first, then test).
    """

    def as_dataset(self, split, decoders=None, read_config=None, shuffle_files=False,
                   **kwargs):
        del self, decoders, read_config, shuffle_files, kwargs
        name = str(split)
        first = 0 if name == "train" else images_per_split["train"]

        def generate():
            for label in range(200):
                for index in range(first, first + images_per_split[name]):
                    shape = (20 + label % 7, 30 - index % 5, 3)
                    colour = np.array([label, index, 7], np.uint8)
                    yield {"image": np.broadcast_to(colour, shape).copy(),
                           "label": np.int64(label)}

        return tf.data.Dataset.from_generator(generate, output_signature={
            "image": tf.TensorSpec([None, None, 3], tf.uint8),
            "label": tf.TensorSpec([], tf.int64),
        })

    return as_dataset


def check_episodes(dataset, *, ways, shots, queries, meta_batch_size, image_size, decode,
                   split_classes_allowed, batches=2) -> set:
    """Checks the episode contract on `batches` meta-batches; returns the classes seen.

    `decode` maps one image `[H, W, 3]` in [0, 1] to `(class, image)`.
    """
    b, n = meta_batch_size, ways
    spec_inputs, spec_y = dataset.element_spec
    assert spec_inputs["support_x"].shape == (b, n * shots, image_size, image_size, 3)
    assert spec_inputs["query_x"].shape == (b, n * queries, image_size, image_size, 3)
    assert spec_inputs["support_y"].shape == (b, n * shots) and spec_y.shape == (b, n * queries)
    assert spec_inputs["support_x"].dtype == tf.float32 and spec_y.dtype == tf.int32
    seen = set()
    for inputs, query_y in dataset.take(batches).as_numpy_iterator():
        for e in range(b):
            support = [decode(x) for x in inputs["support_x"][e]]
            query = [decode(x) for x in inputs["query_x"][e]]
            for x in (inputs["support_x"][e], inputs["query_x"][e]):
                assert 0.0 <= x.min() and x.max() <= 1.0
            s_y, q_y = inputs["support_y"][e], query_y[e]
            assert sorted(s_y.tolist()) == sorted(list(range(n)) * shots)
            assert sorted(q_y.tolist()) == sorted(list(range(n)) * queries)
            label_class = {}
            for (klass, _), label in zip(support + query, list(s_y) + list(q_y)):
                assert label_class.setdefault(int(label), klass) == klass
            assert len(set(label_class.values())) == n
            assert set(label_class.values()) <= set(split_classes_allowed)
            assert len(set(support)) == len(support) and len(set(query)) == len(query)
            assert not set(support) & set(query)
            seen |= set(label_class.values())
    return seen
