"""The shared argument checks and the seed range (issue 17, items 8, 11, 12)."""

import math

import numpy as np
import pytest

import tfmeta
from tfmeta import data
from tfmeta.data.arguments import SEED_RANGE, check_bool, check_float, check_seed


@pytest.mark.parametrize("value", [float("nan"), math.inf, -1.0, 0.0, True, "1", None])
def test_check_float_refuses(value):
    with pytest.raises(ValueError, match="Invalid value for argument `rate`"):
        check_float("rate", value)


def test_check_float_accepts_numpy_and_inclusive_bounds():
    assert check_float("rate", np.float32(0.25)) == 0.25
    assert check_float("rate", 0, inclusive=True) == 0.0


@pytest.mark.parametrize("value", ["no", "False", 0, 1, None])
def test_check_bool_refuses_what_is_not_a_boolean(value):
    with pytest.raises(ValueError, match="`flag`"):
        check_bool("flag", value)


@pytest.mark.parametrize("seed", [2**63, 2**64, 2**64 + 5, -(2**63) - 1, 1.0, True])
def test_seeds_outside_int64_are_refused_by_every_entry_point(seed):
    images = np.zeros([4, 3, 2], "float32")
    for build in (lambda: tfmeta.data.episodes(images, 2, 1, 1, 1, seed=seed),
                  lambda: tfmeta.data.sinusoid(seed=seed),
                  lambda: check_seed(seed)):
        with pytest.raises(ValueError, match="`seed`") as info:
            build()
        assert str(SEED_RANGE[1]) in str(info.value) or "integer" in str(info.value)


def test_the_extreme_seeds_work():
    images = np.arange(24, dtype="float32").reshape([4, 3, 2])
    for seed in SEED_RANGE:
        next(iter(tfmeta.data.episodes(images, 2, 1, 1, 1, seed=seed)))


@pytest.mark.parametrize("name", ["amplitude_range", "phase_range", "input_range"])
@pytest.mark.parametrize("bounds", [(0.0, math.inf), (-math.inf, 1.0), (0.0, math.nan)])
def test_sinusoid_refuses_infinite_ranges(name, bounds):
    with pytest.raises(ValueError, match=f"`{name}`"):
        tfmeta.data.sinusoid(**{name: bounds})


def test_a_meta_batch_that_cannot_fit_in_memory_is_refused_with_its_size():
    images = np.zeros([10, 20, 28, 28, 1], "uint8")
    with pytest.raises(ValueError, match=r"`meta_batch_size`.* GiB") as info:
        tfmeta.data.episodes(images, 5, 1, 15, meta_batch_size=10**9)
    assert "meta_batch_size=1000000000" in str(info.value)
    with pytest.raises(ValueError, match=r"`meta_batch_size`.* GiB"):
        tfmeta.data.sinusoid(meta_batch_size=10**12)
    tfmeta.data.episodes(images, 5, 1, 15, meta_batch_size=64)


@pytest.mark.parametrize("value, fragment", [(np.nan, "NaN"), (np.inf, "NaN"), (1j, "complex")])
def test_non_finite_and_complex_examples_are_refused(value, fragment):
    images = np.zeros([4, 3, 2], "complex64" if fragment == "complex" else "float32")
    images[1, 2, 0] = value
    with pytest.raises(ValueError, match="`class_examples`") as info:
        tfmeta.data.episodes(images, 2, 1, 1, 1)
    assert fragment in str(info.value)


def test_string_examples_are_still_accepted():
    text = np.array([[f"class {c} example {e}" for e in range(3)] for c in range(4)])
    tfmeta.data.episodes(text, 2, 1, 1, 2)  # built; the sampler's text support is separate


IMAGE_DATASETS = sorted(name for name in data.list_datasets()
                        if "image_size" in data.get_dataset(name).options)


@pytest.mark.parametrize("name", IMAGE_DATASETS)
def test_every_image_dataset_bounds_image_size_before_reading_data(name, tmp_path):
    """Issue 25, item 8: `--image_size=4096` died in a 55-line ResourceExhaustedError after
    trying to allocate 5.6 GB; every image dataset now refuses it in one line, first."""
    options = {"image_folder": str(tmp_path)} if name == "image_folder" else {}
    with pytest.raises(ValueError) as raised:
        data.get_dataset(name).episodes("train", ways=2, shots=1, queries=1,
                                        meta_batch_size=1, image_size=4096,
                                        data_dir=tmp_path, **options)
    message = str(raised.value)
    assert "`image_size`" in message and "between 1 and 1024" in message
    assert "\n" not in message
