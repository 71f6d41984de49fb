"""CUB: `tfds.testing.mock_data` serves TFDS' `caltech_birds2011` with images of varying sizes
(its prepared format's features); the entry point's episodes, registry entry and errors."""

import types

import numpy as np
import pytest
import tensorflow_datasets as tfds
from fake_benchmarks import check_episodes, cub_as_dataset

from tfmeta import data
from tfmeta.data.benchmarks import tfds_source
from tfmeta.data.benchmarks.cub import class_label

PER_SPLIT = {"train": 3, "test": 2}


@pytest.fixture
def mocked_cub(monkeypatch):
    """TFDS mocked (preparing is a no-op), and no connection attempt leaves the test."""

    def no_network(*args, **kwargs):
        return types.SimpleNamespace(close=lambda: None)

    monkeypatch.setattr(tfds_source.socket, "create_connection", no_network)
    with tfds.testing.mock_data(as_dataset_fn=cub_as_dataset(PER_SPLIT)):
        yield


def decode(pixels):
    red, green, _ = np.round(pixels.reshape(-1, 3).mean(axis=0) * 255.0)
    return int(red), int(green)


def split_ids(split):
    return [class_label(name) for name in data.benchmark_classes("cub", split)]


@pytest.mark.parametrize("split", ["train", "validation", "test"])
def test_episode_contract(mocked_cub, tmp_path, split):
    dataset = data.cub(split, ways=5, shots=2, queries=3, meta_batch_size=2, image_size=24,
                       seed=2, data_dir=tmp_path)
    seen = check_episodes(dataset, ways=5, shots=2, queries=3, meta_batch_size=2,
                          image_size=24, decode=decode, split_classes_allowed=split_ids(split))
    assert len(seen) >= 5


def test_class_names_map_to_tfds_labels():
    assert class_label("001.Black_footed_Albatross") == 0
    assert class_label("200.Common_Yellowthroat") == 199
    assert sorted(class_label(n) for s in ("train", "val", "test")
                  for n in data.benchmark_classes("cub", s)) == list(range(200))


def test_pools_tfds_splits_and_is_deterministic(mocked_cub, tmp_path):
    def first(seed):
        dataset = data.cub("test", ways=50, shots=2, queries=3, meta_batch_size=1,
                           image_size=8, seed=seed, data_dir=tmp_path)
        inputs, _ = next(iter(dataset))
        return np.concatenate([inputs["support_x"][0], inputs["query_x"][0]])

    images = first(4)
    assert {decode(x) for x in images} == {
        (klass, index) for klass in split_ids("test") for index in range(5)}
    assert np.array_equal(images, first(4)) and not np.array_equal(images, first(5))


def test_registry_entry(mocked_cub, tmp_path):
    spec = data.get_dataset("cub")
    assert spec.options == ("image_size",) and spec.example_shape({}) == (84, 84, 3)
    dataset = spec.episodes("val", ways=3, shots=1, queries=2, meta_batch_size=2,
                            data_dir=tmp_path, image_size=16)
    assert dataset.element_spec[0]["query_x"].shape == (2, 6, 16, 16, 3)


# === Bad input ===


def test_unprepared_and_offline_is_one_line(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("no network (test)")

    # Offline: the reachability check fails at once; downloads would fail too.
    monkeypatch.setattr(tfds_source.socket, "create_connection", offline)

    for method in ("download", "download_and_extract"):
        monkeypatch.setattr(tfds.download.DownloadManager, method, offline)
    (tmp_path / "tensorflow_datasets").mkdir()
    with pytest.raises(FileNotFoundError) as error:
        data.cub("train", data_dir=tmp_path)
    message = str(error.value)
    assert "\n" not in message and "no network (test)" in message
    assert "tfds.builder('caltech_birds2011', data_dir=" in message and "opencv" in message


def test_too_few_images_per_class(mocked_cub, tmp_path):
    with pytest.raises(ValueError, match=r"at most 5 \(the images of the smallest class"):
        data.cub("train", shots=5, queries=1, image_size=8, data_dir=tmp_path)
