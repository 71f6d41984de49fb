"""mini-ImageNet: the TFDS builder on a fake manual folder in the release's layout, and the
entry point's episode contract, registry entry and errors."""

import importlib

import numpy as np
import pytest
import tensorflow_datasets as tfds
from fake_benchmarks import (
    check_episodes,
    decode_mini_imagenet,
    mini_imagenet_wnids,
    write_fake_mini_imagenet,
)

from tfmeta import data
from tfmeta.data.benchmarks.mini_imagenet_builder import MiniImagenet, find_images

mini_imagenet_module = importlib.import_module("tfmeta.data.benchmarks.mini_imagenet")

IMAGES_PER_CLASS = 6


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory):
    """A data root with `mini_imagenet/images/*.jpg` + CSVs and `tensorflow_datasets/`."""
    root = tmp_path_factory.mktemp("mini_root")
    write_fake_mini_imagenet(root / "mini_imagenet", IMAGES_PER_CLASS)
    (root / "tensorflow_datasets").mkdir()
    return root


def split_ids(split):
    wnids = mini_imagenet_wnids()
    return [wnids.index(w) for w in data.benchmark_classes("mini_imagenet", split)]


def test_builder_prepares_the_three_class_splits(fake_root):
    builder = data.prepared_mini_imagenet(fake_root)
    assert builder.is_prepared()
    assert builder.data_dir.startswith(str(fake_root / "tensorflow_datasets" / "mini_imagenet"))
    assert builder.info.features["label"].names == mini_imagenet_wnids()
    for split, classes in (("train", 64), ("validation", 16), ("test", 20)):
        assert builder.info.splits[split].num_examples == classes * IMAGES_PER_CLASS
        labels = {int(x["label"]) for x in tfds.as_numpy(builder.as_dataset(split=split))}
        assert labels == set(split_ids(split))
    example = next(iter(tfds.as_numpy(builder.as_dataset(split="test"))))
    assert example["image"].shape == (12, 16, 3) and example["image"].dtype == np.uint8
    assert example["image/filename"].decode().endswith(".jpg")


@pytest.mark.parametrize("split", ["train", "validation", "test"])
def test_episode_contract(fake_root, split):
    dataset = data.mini_imagenet(split, ways=5, shots=2, queries=3, meta_batch_size=2,
                                 image_size=20, seed=3, data_dir=fake_root)
    seen = check_episodes(dataset, ways=5, shots=2, queries=3, meta_batch_size=2,
                          image_size=20, decode=decode_mini_imagenet,
                          split_classes_allowed=split_ids(split))
    assert len(seen) >= 5


def test_episodes_are_a_function_of_the_seed(fake_root):
    def first(seed):
        dataset = data.mini_imagenet("train", ways=3, shots=1, queries=2, meta_batch_size=2,
                                     image_size=8, seed=seed, data_dir=fake_root)
        return next(iter(dataset))[0]["support_x"].numpy()

    assert np.array_equal(first(5), first(5))
    assert not np.array_equal(first(5), first(6))


def test_default_image_size_is_84_and_cached(fake_root, private_cache_dir):
    dataset = data.mini_imagenet("test", ways=2, shots=1, queries=1, meta_batch_size=1,
                                 data_dir=fake_root)
    assert dataset.element_spec[0]["support_x"].shape == (1, 2, 84, 84, 3)
    cached = list((private_cache_dir / "mini_imagenet").glob("mini_imagenet-test-84px-*.npz"))
    assert len(cached) == 1


def test_class_folder_layout(tmp_path):
    manual = write_fake_mini_imagenet(tmp_path / "manual", images_per_class=2, layout="folders")
    found = find_images(manual)
    assert len(found) == 100 and all(len(paths) == 2 for paths in found.values())
    builder = MiniImagenet(data_dir=str(tmp_path / "tfds"))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
    assert builder.info.splits["validation"].num_examples == 32


def test_registry_entry():
    spec = data.get_dataset("mini_imagenet")
    assert "mini_imagenet" in data.list_datasets()
    assert spec.options == ("image_size",) and spec.example == "image"
    assert spec.example_shape({"image_size": 84}) == (84, 84, 3)
    assert spec.example_shape({}) == (84, 84, 3)


def test_registry_builds_episodes(fake_root):
    dataset = data.get_dataset("mini_imagenet").episodes(
        "val", ways=4, shots=1, queries=1, meta_batch_size=3, data_dir=fake_root, image_size=10)
    assert dataset.element_spec[0]["query_x"].shape == (3, 4, 10, 10, 3)


# === Bad input ===


def test_missing_manual_folder_is_one_line(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        data.mini_imagenet("train", data_dir=tmp_path)
    message = str(error.value)
    assert "\n" not in message
    assert str(tmp_path / "mini_imagenet") in message and "images/" in message


def test_without_a_root_names_the_tfds_manual_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("TFMETA_DATA_DIR", raising=False)
    monkeypatch.setattr(mini_imagenet_module, "tfds_data_dir", lambda data_dir: str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"downloads/manual.*TFMETA_DATA_DIR") as error:
        data.mini_imagenet("train")
    assert "\n" not in str(error.value)


def test_missing_class_is_named(tmp_path):
    manual = write_fake_mini_imagenet(tmp_path / "mini_imagenet", 1)
    lost = mini_imagenet_wnids()[7]
    (manual / "images" / f"{lost}00000001.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=f"lacks 1 of its 100 classes.*{lost}"):
        data.mini_imagenet("train", data_dir=tmp_path)


def test_stray_image_is_named(tmp_path):
    manual = write_fake_mini_imagenet(tmp_path / "mini_imagenet", 1)
    (manual / "images" / "holiday.jpg").write_bytes(b"")
    with pytest.raises(ValueError, match=r"holiday.jpg is not an image of a mini-ImageNet class"):
        find_images(manual)


def test_bad_episode_arguments(fake_root):
    with pytest.raises(ValueError, match=r"`ways`.*between 1 and 16.*'validation'"):
        data.mini_imagenet("validation", ways=17, data_dir=fake_root, image_size=8)
    with pytest.raises(ValueError, match=r"shots \+ queries to be at most 6"):
        data.mini_imagenet("train", shots=5, queries=2, data_dir=fake_root, image_size=8)
    with pytest.raises(ValueError, match=r"`split`.*Received: split='dev'"):
        data.mini_imagenet("dev", data_dir=fake_root)
    with pytest.raises(ValueError, match=r"`image_size`.*Received: image_size=0"):
        data.mini_imagenet("train", image_size=0, data_dir=fake_root)


# === Command line ===


def run_train(argv):
    from absl import flags

    from tfmeta.cli import train

    flag_values = flags.FlagValues()
    train.define_flags(flag_values)
    train.main(flag_values([train.PROGRAM, *argv]), flag_values=flag_values)


def test_tfmeta_train_takes_the_dataset(fake_root, tmp_path):
    model_dir = tmp_path / "run"
    run_train([f"--model_dir={model_dir}", "--dataset=mini_imagenet", f"--data_dir={fake_root}",
               "--learner=protonet", "--image_size=16", "--filters=8", "--ways=3", "--shots=1",
               "--queries=2", "--meta_batch_size=1", "--train_steps=2", "--steps_per_epoch=2",
               "--verbose=0"])
    assert '"dataset": "mini_imagenet"' in (model_dir / "experiment.json").read_text()


def test_tfmeta_train_without_the_files_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_train([f"--model_dir={tmp_path / 'run'}", "--dataset=mini_imagenet",
                   f"--data_dir={tmp_path}", "--image_size=84"])
    error = capsys.readouterr().err
    assert error.startswith("tfmeta-train: error: ") and error.count("\n") == 1
    assert str(tmp_path / "mini_imagenet") in error


def test_a_second_load_reads_the_disk_cache(fake_root, monkeypatch):
    from tfmeta.data.benchmarks import tfds_source

    def first_query():
        dataset = data.mini_imagenet("test", ways=2, shots=1, queries=1, meta_batch_size=1,
                                     image_size=12, data_dir=fake_root)
        return next(iter(dataset))[1].numpy()

    cold = first_query()
    tfds_source.clear_memory_cache()
    monkeypatch.setattr(tfds_source, "_decode", lambda *args: pytest.fail("decoded again"))
    assert np.array_equal(first_query(), cold)


@pytest.mark.parametrize("corrupt", ["float64", "too few rows"])
def test_a_wrong_disk_cache_entry_is_rebuilt_with_one_warning(fake_root, private_cache_dir,
                                                              corrupt):
    """The TFDS benchmarks' cache is the one keyed, checked format (issue 25, item 5)."""
    import warnings

    from tfmeta.data.benchmarks import tfds_source

    def first_query():
        dataset = data.mini_imagenet("test", ways=2, shots=1, queries=1, meta_batch_size=1,
                                     image_size=12, data_dir=fake_root)
        return next(iter(dataset))[0]["query_x"].numpy()

    tfds_source.clear_memory_cache()
    good = first_query()
    (entry,) = (private_cache_dir / "mini_imagenet").glob("*-12px-*.npz")
    with np.load(entry) as arrays:
        images, labels = arrays["images"], arrays["labels"]
    if corrupt == "float64":
        images = images.astype(np.float64) * 15.38
    else:
        images, labels = images[:-2], labels[:-2]
    np.savez(entry, images=images, labels=labels)  # an entry as the unkeyed cache wrote them
    tfds_source.clear_memory_cache()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        again = first_query()
    messages = [str(w.message) for w in record if "cache file" in str(w.message)]
    assert len(messages) == 1 and messages[0].startswith("Rebuilding the cache file")
    np.testing.assert_array_equal(again, good)
