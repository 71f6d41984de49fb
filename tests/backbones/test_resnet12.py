"""ResNet-12: shapes, the published parameter count, configs, ProtoNet and MAML on it;
conv4 on RGB; the image-size check of both backbones."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfmeta


def expected_resnet12_parameters(channels, widths=(64, 160, 320, 640)):
    """Counted from the architecture: per block three 3x3 convolutions and a 1x1
    shortcut, all without bias, and four batch norms (gamma, beta trainable; moving mean
    and variance not)."""
    trainable = non_trainable = 0
    previous = channels
    for width in widths:
        trainable += 3 * 3 * previous * width + 2 * (3 * 3 * width * width)  # convolutions
        trainable += previous * width  # 1x1 shortcut
        trainable += 4 * 2 * width  # four batch norms' gamma and beta
        non_trainable += 4 * 2 * width
        previous = width
    return trainable, non_trainable


def test_resnet12_parameter_count_is_the_published_12_4_million():
    model = tfmeta.backbones.resnet12((84, 84, 3))
    trainable, non_trainable = expected_resnet12_parameters(3)
    counted = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert counted == trainable == 12_424_320
    assert model.count_params() == trainable + non_trainable
    assert round(trainable / 1e6, 1) == 12.4


@pytest.mark.parametrize("size, pooling, features", [
    (84, "avg", 640), (32, "avg", 640), (84, "flatten", 5 * 5 * 640), (64, "flatten", 4 * 4 * 640),
])
def test_resnet12_output_shapes(size, pooling, features):
    model = tfmeta.backbones.resnet12((size, size, 3), filters=(4, 4, 4, 640), pooling=pooling)
    assert model.output_shape == (None, features)
    assert model(tf.zeros([2, size, size, 3])).shape == (2, features)


def test_resnet12_blocks():
    model = tfmeta.backbones.resnet12((32, 32, 3), drop_rate=0.1)
    names = [layer.name for layer in model.layers]
    assert sum(name.endswith("_add") for name in names) == 4
    assert sum(isinstance(layer, tfmeta.layers.BatchNormalization) for layer in model.layers) == 16
    assert all(not layer.use_bias for layer in model.layers
               if isinstance(layer, keras.layers.Conv2D))
    slopes = {layer.negative_slope for layer in model.layers
              if isinstance(layer, keras.layers.LeakyReLU)}
    assert len(slopes) == 1 and slopes.pop() == pytest.approx(0.1)
    drop_blocks = [layer.name for layer in model.layers
                   if isinstance(layer, tfmeta.layers.DropBlock)]
    assert drop_blocks == ["block2_dropblock", "block3_dropblock"]
    assert tfmeta.backbones.resnet12((32, 32, 3), num_classes=5).output_shape == (None, 5)


def test_resnet12_round_trips_through_config_and_saving(tmp_path):
    model = tfmeta.backbones.resnet12((16, 16, 3), filters=(4, 8, 8, 16), drop_rate=0.2,
                                      num_classes=3)
    clone = keras.Model.from_config(model.get_config())
    assert clone.count_params() == model.count_params()
    path = tmp_path / "resnet12.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = tf.random.uniform([2, 16, 16, 3])
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-5, atol=1e-5)


def small_resnet12(**kwargs):
    return tfmeta.backbones.resnet12((16, 16, 3), filters=(4, 8, 8, 8), **kwargs)


def rgb_episodes(ways=3, shots=2, queries=2, size=16):
    rng = np.random.default_rng(0)
    support_y = np.tile(np.arange(ways, dtype=np.int32), shots)[None]
    query_y = np.tile(np.arange(ways, dtype=np.int32), queries)[None]
    inputs = {
        "support_x": rng.random([1, ways * shots, size, size, 3], dtype=np.float32),
        "support_y": support_y,
        "query_x": rng.random([1, ways * queries, size, size, 3], dtype=np.float32),
    }
    return inputs, query_y


@pytest.mark.parametrize("learner", [
    "protonet",
    # One second-order MAML step through 12 convolutions and 16 batch norms: 7 s on an idle
    # 2-core machine, 30-60 s on a busy one.
    pytest.param("maml", marks=pytest.mark.slow),
])
def test_resnet12_trains_under_protonet_and_maml(learner):
    inputs, query_y = rgb_episodes()
    if learner == "protonet":
        meta_learner = tfmeta.ProtoNet(small_resnet12(drop_rate=0.1))
    else:
        meta_learner = tfmeta.MAML(small_resnet12(num_classes=3, drop_rate=0.1), inner_steps=1)
    meta_learner.compile(optimizer=keras.optimizers.Adam(1e-3),
                         loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                         metrics=["accuracy"], run_eagerly=True)  # one step: skip tracing
    before = [w.numpy().copy() for w in meta_learner.trainable_weights]
    logs = meta_learner.train_on_batch(inputs, query_y, return_dict=True)
    assert np.isfinite(logs["loss"])
    after = [w.numpy() for w in meta_learner.trainable_weights]
    assert any(not np.allclose(a, b) for a, b in zip(before, after, strict=True))
    assert meta_learner.predict_on_batch(inputs).shape == (1, 6, 3)


@pytest.mark.parametrize("size, features", [(32, 2 * 2 * 64), (64, 4 * 4 * 64), (84, 5 * 5 * 64)])
def test_conv4_on_rgb(size, features):
    encoder = tfmeta.backbones.conv4((size, size, 3))
    assert encoder.output_shape == (None, features)
    assert encoder(tf.zeros([2, size, size, 3])).shape == (2, features)
    # Only the first convolution sees the three channels.
    assert encoder.get_layer("block0_conv_bn").conv.kernel.shape == (3, 3, 3, 64)


@pytest.mark.parametrize("backbone", [tfmeta.backbones.conv4, tfmeta.backbones.resnet12])
@pytest.mark.parametrize("size", [8, 15])
def test_image_too_small_for_the_backbone(backbone, size):
    with pytest.raises(ValueError, match=r"`input_shape`: .* needs images of at least 16x16 "
                                         r"pixels .*Received: input_shape=\("):
        backbone((size, size, 3))
    backbone((16, 16, 3))


@pytest.mark.parametrize("kwargs, match", [
    ({"filters": (64, 160, 320)}, "`filters`"),
    ({"pooling": "max"}, "`pooling`"),
    ({"num_classes": 0}, "`num_classes`"),
    ({"drop_rate": 1.0}, "`rate`"),
])
def test_resnet12_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tfmeta.backbones.resnet12((32, 32, 3), **kwargs)
