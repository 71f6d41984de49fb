"""DropBlock: identity outside training, square blocks, the expected drop rate and scale."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmeta.layers import DropBlock


def test_identity_outside_training_and_at_rate_zero():
    x = tf.random.uniform([2, 9, 9, 3])
    np.testing.assert_array_equal(DropBlock(0.3, 3)(x, training=False), x)
    np.testing.assert_array_equal(DropBlock(0.0, 3)(x, training=True), x)


def test_drops_square_blocks_at_about_the_rate_and_rescales():
    layer = DropBlock(rate=0.2, block_size=3, seed=1)
    x = tf.ones([64, 12, 12, 8])
    y = layer(x, training=True).numpy()
    dropped = y == 0
    assert 0.12 < dropped.mean() < 0.28  # about `rate` (blocks overlap a little)
    kept = y[~dropped]
    np.testing.assert_allclose(kept, 1.0 / (1.0 - dropped.mean()), rtol=1e-5)
    np.testing.assert_allclose(y.mean(), 1.0, rtol=1e-5)  # the expected sum is kept
    # A lone dropped pixel never happens: every dropped pixel lies in a dropped 3x3 square.
    mask = dropped.transpose(0, 3, 1, 2).reshape([-1, 12, 12])
    for image in mask[:50]:
        covered = np.zeros_like(image)
        for i in range(10):
            for j in range(10):
                if image[i:i + 3, j:j + 3].all():
                    covered[i:i + 3, j:j + 3] = True
        assert (covered == image).all()


def test_block_larger_than_the_feature_map_and_config():
    layer = DropBlock(rate=0.5, block_size=7)
    assert layer(tf.ones([2, 3, 3, 4]), training=True).shape == (2, 3, 3, 4)
    clone = DropBlock.from_config(layer.get_config())
    assert (clone.rate, clone.block_size) == (0.5, 7)
    assert keras.saving.get_registered_object("tfmeta>DropBlock") is DropBlock


@pytest.mark.parametrize("kwargs, match", [({"rate": -0.1}, "`rate`"),
                                           ({"block_size": 0}, "`block_size`")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DropBlock(**kwargs)
