"""CIFAR-FS and FC100: TFDS' own `cifar100` builder prepared from a fake CIFAR-100 archive
(the extracted `cifar-100-binary/` format, no network), then the entry points' episodes."""

import types

import numpy as np
import pytest
import tensorflow_datasets as tfds
from fake_benchmarks import check_episodes, prepare_fake_cifar100

from tfmeta import data
from tfmeta.data.benchmarks import tfds_source
from tfmeta.data.benchmarks.benchmark_splits import cifar100_classes
from tfmeta.data.benchmarks.cifar100_source import fine_label_names

FINE = [name for _, name in cifar100_classes()]
IMAGES_PER_CLASS = 5  # 3 training + 2 test images


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar_root")
    with pytest.MonkeyPatch.context() as monkeypatch:
        prepare_fake_cifar100(root / "tensorflow_datasets", monkeypatch)
    return root


def decode(pixels):
    red, green, _ = np.round(pixels.reshape(-1, 3).mean(axis=0) * 255.0)
    return int(red), int(green)


def split_ids(benchmark, split):
    return [FINE.index(name) for name in data.benchmark_classes(benchmark, split)]


def test_the_prepared_data_has_cifar100s_names(fake_root):
    builder = tfds.builder("cifar100", data_dir=str(fake_root / "tensorflow_datasets"))
    assert builder.is_prepared()
    assert fine_label_names(builder) == tuple(FINE)


@pytest.mark.parametrize("benchmark", ["cifar_fs", "fc100"])
@pytest.mark.parametrize("split", ["train", "validation", "test"])
def test_episode_contract(fake_root, benchmark, split):
    entry = getattr(data, benchmark)
    dataset = entry(split, ways=5, shots=2, queries=3, meta_batch_size=2, seed=1,
                    data_dir=fake_root)
    allowed = split_ids(benchmark, split)
    seen = check_episodes(dataset, ways=5, shots=2, queries=3, meta_batch_size=2,
                          image_size=32, decode=decode, split_classes_allowed=allowed)
    assert len(seen) >= 5


def test_training_and_test_images_are_pooled(fake_root):
    dataset = data.cifar_fs("test", ways=20, shots=2, queries=3, meta_batch_size=1,
                            data_dir=fake_root)
    inputs, _ = next(iter(dataset))
    images = np.concatenate([inputs["support_x"][0], inputs["query_x"][0]])
    assert {decode(x) for x in images} == {  # images 3 and 4 of each class are TFDS' "test"
        (klass, index) for klass in split_ids("cifar_fs", "test")
        for index in range(IMAGES_PER_CLASS)}


def test_resize_and_determinism(fake_root):
    def first(seed):
        dataset = data.fc100("train", ways=3, shots=1, queries=1, meta_batch_size=2,
                             image_size=20, seed=seed, data_dir=fake_root)
        return next(iter(dataset))[0]["support_x"].numpy()

    assert first(0).shape == (2, 3, 20, 20, 3)
    assert np.array_equal(first(0), first(0)) and not np.array_equal(first(0), first(1))


def test_registry_entries(fake_root):
    for name, default in (("cifar_fs", 32), ("fc100", 32)):
        spec = data.get_dataset(name)
        assert name in data.list_datasets() and spec.options == ("image_size",)
        assert spec.example_shape({}) == (default, default, 3)
        dataset = spec.episodes("test", ways=2, shots=1, queries=1, meta_batch_size=1,
                                data_dir=fake_root, image_size=32)
        assert dataset.element_spec[1].shape == (1, 2)


def test_label_names_fall_back_to_cifar100s_list():
    numeric = types.SimpleNamespace(
        name="cifar100", data_dir="/x",
        info=types.SimpleNamespace(features={"label": types.SimpleNamespace(
            names=[str(i) for i in range(100)])}))
    assert fine_label_names(numeric) == tuple(FINE)
    numeric.info.features["label"].names = ["cat", "dog"]
    with pytest.raises(ValueError, match="does not have CIFAR-100's 100 fine classes"):
        fine_label_names(numeric)


# === Bad input ===


def test_unprepared_and_offline_is_one_line(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("no network (test)")

    # Offline: the reachability check fails at once; downloads would fail too.
    monkeypatch.setattr(tfds_source.socket, "create_connection", offline)

    monkeypatch.setattr(tfds.download.DownloadManager, "download_and_extract", offline)
    (tmp_path / "tensorflow_datasets").mkdir()
    with pytest.raises(FileNotFoundError) as error:
        data.cifar_fs("train", data_dir=tmp_path)
    message = str(error.value)
    assert "\n" not in message and "no network (test)" in message
    assert (f"tfds.builder('cifar100', data_dir='{tmp_path / 'tensorflow_datasets'}')"
            ".download_and_prepare()" in message)


def test_bad_arguments(fake_root):
    with pytest.raises(ValueError, match=r"`ways`.*between 1 and 20.*'test'"):
        data.fc100("test", ways=21, data_dir=fake_root)
    with pytest.raises(ValueError, match=r"shots \+ queries to be at most 5"):
        data.cifar_fs("train", shots=5, queries=1, data_dir=fake_root)
    with pytest.raises(ValueError, match=r"`seed`.*Received: seed=1.5"):
        data.cifar_fs("train", seed=1.5, data_dir=fake_root)
