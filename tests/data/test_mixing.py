"""tfmeta.data.mix: one source per episode, sources brought to one element shape."""

import numpy as np
import pytest
import tensorflow as tf

from tfmeta.data import episodes, mix


def source(value, side=8, channels=1, ways=2, shots=1, queries=1, batch=2, classes=6):
    """Episodes whose every pixel is `value` (so each element names its source)."""
    images = np.full([classes, 4, side, side, channels], value, "float32")
    return episodes(images, ways, shots, queries, batch)


def sources_of(dataset, count):
    return [float(inputs["support_x"].numpy()[0, 0, 0, 0, 0])
            for inputs, _ in dataset.take(count)]


def test_weights_choose_sources_in_proportion():
    mixed = mix([source(1.0), source(2.0)], weights=[1, 3], seed=0)
    chosen = np.array(sources_of(mixed, 240))
    share = (chosen == 2.0).mean()
    # Binomial(240, 0.75): standard deviation 0.028; 4 of them either side.
    assert abs(share - 0.75) < 0.112
    assert sources_of(mix([source(1.0), source(2.0)], seed=0), 40) == sources_of(
        mix([source(1.0), source(2.0)], seed=0), 40)
    uniform = np.array(sources_of(mix([source(1.0), source(2.0), source(3.0)], seed=1), 300))
    counts = np.array([(uniform == v).sum() for v in (1.0, 2.0, 3.0)])
    assert ((counts - 100) ** 2 / 100).sum() < 13.82  # chi-square(2) at p = 0.001


def test_images_resized_greyscale_to_rgb_and_sets_padded():
    grey = source(0.5, side=8, channels=1, ways=2, shots=1, queries=1)
    rgb = source(0.25, side=16, channels=3, ways=3, shots=2, queries=1)
    mixed = mix([grey, rgb], weights=[1, 0])  # Only the greyscale source.
    inputs_spec, query_spec = mixed.element_spec
    assert inputs_spec["support_x"] == tf.TensorSpec([2, 6, 16, 16, 3], tf.float32)
    assert query_spec == tf.TensorSpec([2, 3], tf.int32)
    inputs, query_y = next(iter(mixed))
    support_x, support_y = inputs["support_x"].numpy(), inputs["support_y"].numpy()
    np.testing.assert_allclose(support_x[:, :2], 0.5)  # Resized, grey channel repeated.
    np.testing.assert_array_equal(support_y[:, 2:], -1)  # Padded to the RGB source's 6.
    np.testing.assert_array_equal(query_y.numpy()[:, 2:], -1)
    assert mix([grey, rgb], image_size=12).element_spec[0]["query_x"].shape == (2, 3, 12, 12, 3)


def test_bad_input_fails_in_one_line():
    text = episodes([np.array([f"s{c}{i}" for i in range(4)], object) for c in range(4)],
                    2, 1, 1, 2)
    cases = [
        (lambda: mix([source(1.0), text]), r"`datasets`: expected sources of one kind.*text"),
        (lambda: mix([source(1.0), source(2.0)], weights=[1, -1]), r"`weights`: expected 2 non"),
        (lambda: mix([source(1.0), source(2.0)], weights=[1]), r"`weights`: .*weights=\[1\]"),
        (lambda: mix([source(1.0), source(2.0)], weights=[0, 0]), r"`weights`: .*not all zero"),
        (lambda: mix([source(1.0)]), r"`datasets`: expected a sequence of two or more"),
        (lambda: mix([source(1.0), source(2.0, batch=3)]), r"one static meta-batch size"),
    ]
    for make, message in cases:
        with pytest.raises(ValueError, match=message) as error:
            make()
        assert "\n" not in str(error.value)


@pytest.mark.slow
def test_real_tiny_imagenet_and_omniglot(real_root, tmp_path_factory):
    if not (real_root / "tiny_imagenet").is_dir():
        pytest.skip(f"real mixing test: no tiny_imagenet/ in {real_root}")
    from tfmeta.data import omniglot, tiny_imagenet

    cache = tmp_path_factory.mktemp("mix_cache")
    letters = omniglot("test", 5, 1, 3, meta_batch_size=2, data_dir=real_root, cache_dir=cache)
    photos = tiny_imagenet("test", 5, 1, 3, meta_batch_size=2, image_size=32, data_dir=real_root,
                           cache_dir=cache)
    mixed = mix([letters, photos], seed=3)
    assert mixed.element_spec[0]["support_x"].shape == (2, 5, 32, 32, 3)
    kinds = set()
    for inputs, query_y in mixed.take(8):
        x = inputs["support_x"].numpy()
        assert 0.0 <= x.min() and x.max() <= 1.0 and query_y.shape == (2, 15)
        kinds.add("grey" if np.array_equal(x[..., 0], x[..., 2]) else "colour")
    assert kinds == {"grey", "colour"}
