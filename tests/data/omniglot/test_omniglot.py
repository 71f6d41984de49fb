"""Omniglot loading and episodes on a tiny fake data tree (the real layout, 8 characters)."""

import importlib
import warnings
import zipfile

import numpy as np
import pytest
import tensorflow as tf
from fake_omniglot import FAKE_SIZE, fake_drawing, fake_tree, write_fake_omniglot

from tfmeta.data import load_omniglot, omniglot

omniglot_module = importlib.import_module("tfmeta.data.omniglot.omniglot")
omniglot_source = importlib.import_module("tfmeta.data.omniglot.source")

FAKE_CHARACTERS = [
    "Alpha/character01",
    "Alpha/character02",
    "Alpha/character03",
    "Beta_(Greek)/character01",
    "Beta_(Greek)/character02",
    "Gamma/character01",
    "Gamma/character02",
    "Gamma/character03",
]


def expected_ink():
    drawings = [[fake_drawing(c, d) for d in range(20)] for c in range(8)]
    return 1.0 - np.array(drawings, np.float32) / 255.0


@pytest.mark.parametrize("layout", ["omniglot_zip", "images_zip", "folders"])
def test_loads_every_layout_with_ink_on_one(tmp_path, fake_counts, layout):
    root = write_fake_omniglot(tmp_path / "data", layout)
    data = load_omniglot(root, image_size=FAKE_SIZE)
    assert data.images.shape == (8, 20, FAKE_SIZE, FAKE_SIZE, 1)
    assert data.images.dtype == np.float32
    assert data.characters == tuple(FAKE_CHARACTERS) and data.num_background == 5
    np.testing.assert_array_equal(data.images, expected_ink())


def test_root_may_be_the_omniglot_folder_itself_and_env_var_is_used(fake_root, monkeypatch):
    assert load_omniglot(fake_root / "omniglot", FAKE_SIZE).images.shape[0] == 8
    monkeypatch.setenv("TFMETA_DATA_DIR", str(fake_root))
    assert load_omniglot(image_size=FAKE_SIZE).characters == tuple(FAKE_CHARACTERS)


def test_resize_uses_area_and_uint8_option(fake_root):
    data = load_omniglot(fake_root, image_size=6)
    assert data.images.shape == (8, 20, 6, 6, 1)
    assert 0.0 <= data.images.min() and data.images.max() <= 1.0
    area = expected_ink().reshape(8, 20, 6, 2, 6, 2, 1).mean(axis=(3, 5))
    np.testing.assert_allclose(data.images, area, atol=1 / 255)
    raw = load_omniglot(fake_root, image_size=6, dtype="uint8").images
    assert raw.dtype == np.uint8 and raw.max() <= 255


def test_disk_cache_is_used_on_the_second_load(fake_root, private_cache_dir, monkeypatch):
    first = load_omniglot(fake_root, FAKE_SIZE)
    assert list((private_cache_dir / "omniglot").glob("omniglot-12px-*.npz"))
    omniglot_module.clear_memory_cache()

    def fail(*args, **kwargs):
        raise AssertionError("the source was read again")

    monkeypatch.setattr(omniglot_source, "read_source", fail)
    second = load_omniglot(fake_root, FAKE_SIZE)
    np.testing.assert_array_equal(first.images, second.images)
    assert second.characters == first.characters


def test_unwritable_cache_warns_and_still_loads(fake_root, tmp_path):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("")
    with pytest.warns(UserWarning, match="Could not write the cache file"):
        data = load_omniglot(fake_root, FAKE_SIZE, cache_dir=blocker)
    assert data.images.shape[0] == 8


def test_corrupt_cache_file_is_rebuilt(fake_root, private_cache_dir):
    load_omniglot(fake_root, FAKE_SIZE)
    omniglot_module.clear_memory_cache()
    (entry,) = (private_cache_dir / "omniglot").glob("*.npz")
    entry.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="unreadable cache file"):
        data = load_omniglot(fake_root, FAKE_SIZE)
    np.testing.assert_array_equal(data.images, expected_ink())


def test_missing_data_names_the_folder_and_the_variable(tmp_path, no_tfds, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(
        FileNotFoundError, match=rf"No Omniglot was found in {empty}.*TFMETA_DATA_DIR"
    ):
        load_omniglot(empty)
    monkeypatch.delenv("TFMETA_DATA_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match=r"No data directory was given.*TFMETA_DATA_DIR"):
        omniglot()


def test_missing_half_names_the_missing_file(fake_root):
    (fake_root / "omniglot" / "omniglot_evaluation.zip").unlink()
    with pytest.raises(
        FileNotFoundError, match=r"omniglot_background.zip but no .*images_evaluation.zip"
    ):
        load_omniglot(fake_root)


def test_garbage_archive_names_the_file(fake_root):
    archive = fake_root / "omniglot" / "omniglot_background.zip"
    archive.write_bytes(b"this is not a zip")
    with pytest.raises(ValueError, match=rf"archive {archive} is corrupt"):
        load_omniglot(fake_root)


def test_truncated_archive_names_the_file(fake_root):
    archive = fake_root / "omniglot" / "omniglot_evaluation.zip"
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(ValueError, match=rf"archive {archive} is corrupt"):
        load_omniglot(fake_root)


def test_flipped_bytes_in_a_member_are_caught(fake_root):
    archive = fake_root / "omniglot" / "omniglot_background.zip"
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as z:
        info = z.infolist()[0]
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 20
    data[start] ^= 0xFF
    archive.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=rf"{archive}"):
        load_omniglot(fake_root)


def test_missing_drawing_is_an_error_not_a_partial_dataset(tmp_path, fake_counts):
    tree = fake_tree()
    del tree["evaluation"][next(name for name in tree["evaluation"] if "Gamma/character02" in name)]
    root = write_fake_omniglot(tmp_path / "data", tree=tree)
    with pytest.raises(
        ValueError, match=r"character Gamma/character02 in .* has 19 drawings, expected 20"
    ):
        load_omniglot(root)


def test_missing_character_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(omniglot_source, "EXPECTED_CHARACTERS", {"background": 6, "evaluation": 3})
    root = write_fake_omniglot(tmp_path / "data")
    with pytest.raises(ValueError, match=r"background set in .* has 5 characters, expected 6"):
        load_omniglot(root)


def test_real_counts_are_expected_by_default(tmp_path):
    root = write_fake_omniglot(tmp_path / "data")
    with pytest.raises(ValueError, match="has 5 characters, expected 964"):
        load_omniglot(root)


def test_non_png_member_is_named(tmp_path, fake_counts):
    tree = fake_tree()
    name = next(iter(tree["background"]))
    tree["background"][name] = b"GIF89a..."
    root = write_fake_omniglot(tmp_path / "data", tree=tree)
    with pytest.raises(ValueError, match=rf"{name} in .* is not a PNG image"):
        load_omniglot(root)


def test_tfds_fallback_when_no_folder(tmp_path, fake_counts, monkeypatch):
    tree = fake_tree()

    def fake_tfds(split):
        half = {"train": "background", "test": "evaluation"}[split]
        for name, png in tree[half].items():
            _, alphabet, character, _ = name.split("/")
            yield alphabet, int(character[-2:]) - 1, png

    monkeypatch.setattr(omniglot_source, "_tfds_examples", fake_tfds)
    # A TFDS that works (this install may lack what its downloads need).
    monkeypatch.setattr("tfmeta.data.tfds_fallback.tfds_unavailable_reason", lambda: None)
    monkeypatch.delenv("TFMETA_DATA_DIR", raising=False)
    data = load_omniglot(image_size=FAKE_SIZE, cache_dir=tmp_path / "c")
    assert data.characters == tuple(FAKE_CHARACTERS) and data.num_background == 5
    np.testing.assert_array_equal(data.images, expected_ink())


def test_lake_episodes_contract_and_determinism(fake_root):
    dataset = omniglot(
        "train",
        ways=3,
        shots=2,
        queries=4,
        meta_batch_size=5,
        image_size=FAKE_SIZE,
        scheme="lake",
        data_dir=fake_root,
    )
    inputs_spec, query_y_spec = dataset.element_spec
    assert inputs_spec["support_x"] == tf.TensorSpec([5, 6, FAKE_SIZE, FAKE_SIZE, 1], tf.float32)
    assert inputs_spec["support_y"] == tf.TensorSpec([5, 6], tf.int32)
    assert inputs_spec["query_x"] == tf.TensorSpec([5, 12, FAKE_SIZE, FAKE_SIZE, 1], tf.float32)
    assert query_y_spec == tf.TensorSpec([5, 12], tf.int32)
    inputs, query_y = next(iter(dataset))
    again, _ = next(iter(omniglot("train", 3, 2, 4, 5, FAKE_SIZE, "lake", data_dir=fake_root)))
    np.testing.assert_array_equal(inputs["support_x"], again["support_x"])
    # Lake train = background = the first 5 characters; the marker row identifies them.
    rows = np.argmax(inputs["query_x"].numpy()[:, :, 2:, :, 0].max(axis=3), axis=2)
    assert set(rows.ravel()) <= {0, 1, 2, 3, 4}
    with pytest.raises(
        ValueError, match=r"between 1 and 3 \(the number of classes in split 'test'\)"
    ):
        omniglot("test", ways=4, image_size=FAKE_SIZE, scheme="lake", data_dir=fake_root)


def test_vinyals_split_files_with_rotations(fake_root):
    splits = fake_root / "omniglot" / "splits" / "vinyals"
    splits.mkdir(parents=True)
    (splits / "train.txt").write_text(
        "Alpha/character01/rot000\nAlpha/character01/rot090\n"
        "Gamma/character03/rot180\nGamma/character03/rot270\n"
    )
    dataset = omniglot(
        "train",
        ways=4,
        shots=1,
        queries=1,
        meta_batch_size=2,
        image_size=FAKE_SIZE,
        data_dir=fake_root,
    )
    inputs, _ = next(iter(dataset))
    corners = set()
    for image in inputs["support_x"].numpy().reshape(-1, FAKE_SIZE, FAKE_SIZE):
        # The fake stroke in the top-left corner moves with the rotation (counter-clockwise).
        corners.add(next(k for k in range(4) if np.rot90(image, -k)[0, 0] == 1.0))
    assert corners == {0, 1, 2, 3}
    with pytest.raises(
        ValueError, match=r"between 1 and 1 \(the number of classes in split 'train'\)"
    ):
        omniglot("train", ways=3, image_size=FAKE_SIZE, data_dir=fake_root, rotations=False)


def test_bad_split_file_line_is_named(fake_root):
    splits = fake_root / "omniglot" / "splits" / "vinyals"
    splits.mkdir(parents=True)
    (splits / "val.txt").write_text("Alpha/character01/rot000\nZeta/character09/rot000\n")
    with pytest.raises(ValueError, match=r"Line 2 of the split file .*val.txt.*Zeta/character09"):
        omniglot("val", image_size=FAKE_SIZE, data_dir=fake_root)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (
            {"split": "training"},
            r"`split`: expected one of 'train', 'validation', 'test'. Received: split='training'",
        ),
        (
            {"scheme": "finn"},
            r"`scheme`: expected one of 'vinyals', 'maml', 'lake'. Received: scheme='finn'",
        ),
        ({"scheme": "lake", "split": "validation"}, r"scheme 'lake' has no validation split"),
        ({"ways": 0}, r"`ways`: expected a positive integer. Received: ways=0"),
        ({"shots": -1}, r"`shots`: expected a positive integer"),
        ({"queries": 0}, r"`queries`: expected a positive integer"),
        ({"meta_batch_size": 0}, r"`meta_batch_size`: expected a positive integer"),
        ({"image_size": 0}, r"`image_size`: expected an integer between 1 and 1024"),
        (
            {"shots": 5, "queries": 16},
            r"at most 20 \(the drawings per character\).*shots=5, queries=16",
        ),
        ({"rotations": "yes"}, r"`rotations`: expected True, False or None"),
        ({"seed": 1.5}, r"`seed`: expected an integer"),
    ],
)
def test_bad_arguments_raise_before_any_loading(kwargs, match, monkeypatch):
    def fail(root):
        raise AssertionError("data was looked up before the arguments were checked")

    monkeypatch.setattr(omniglot_source, "find_source", fail)
    with pytest.raises(ValueError, match=match):
        omniglot(**kwargs)


def test_bad_load_arguments():
    with pytest.raises(ValueError, match="`image_size`: expected an integer between 1 and 1024"):
        load_omniglot(image_size=-3)
    with pytest.raises(ValueError, match="`dtype`: expected 'float32' or 'uint8'"):
        load_omniglot(dtype="float16")


def test_no_warnings_on_a_clean_load(fake_root):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_omniglot(fake_root, FAKE_SIZE)
