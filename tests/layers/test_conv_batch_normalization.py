"""tfmeta.layers.ConvBatchNormalization: the folded layer computes what conv then batch norm do."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmeta.layers import BatchNormalization, ConvBatchNormalization


def make_layer(channels_in, kernel_size=3, padding="same", use_bias=True, dtype="float64",
               seed=0):
    layer = ConvBatchNormalization(
        keras.layers.Conv2D(5, kernel_size, padding=padding, use_bias=use_bias, dtype=dtype,
                            bias_initializer="random_normal"),
        BatchNormalization(momentum=0.5, dtype=dtype, gamma_initializer="random_uniform",
                           beta_initializer="random_normal"),
        dtype=dtype,
    )
    layer.build((None, 7, 6, channels_in))
    rng = np.random.default_rng(seed)
    for variable in layer.weights:  # Weights away from their initial values.
        if variable.trainable:
            variable.assign(rng.normal(size=variable.shape) + (1.0 if "gamma" in variable.path
                                                               else 0.0))
    return layer


def separate(layer, x, training=True):
    """The reference: the layer's own convolution, then its batch norm, unfolded."""
    return layer.batch_norm(layer.conv(x), training=training)


def derivatives(forward, layer, x):
    """Output, first derivatives and a Hessian-vector product, over the trainable weights."""
    weights = layer.trainable_weights
    directions = [tf.cast(tf.sin(tf.range(tf.size(w), dtype=tf.float64) + 1.0), w.dtype)
                  for w in weights]
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            y = forward(x)
            loss = tf.reduce_sum(tf.sin(y) * tf.range(1, 1 + y.shape[-1], dtype=y.dtype))
        gradients = inner.gradient(loss, weights)
        directional = tf.add_n([tf.reduce_sum(tf.reshape(g, [-1]) * d)
                                for g, d in zip(gradients, directions)])
    hessian_vector = outer.gradient(directional, weights,
                                    unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return [y.numpy()] + [g.numpy() for g in gradients] + [h.numpy() for h in hessian_vector]


@pytest.mark.parametrize("channels_in,kernel_size,padding,use_bias", [
    (1, 3, "same", True), (3, 3, "same", False), (3, 3, "valid", True), (2, 1, "same", True),
    (3, 2, "same", True), (1, 5, "same", False),  # Even kernels pad after; 5x5 taps 25 values.
])
def test_folded_training_pass_equals_conv_then_batch_norm(channels_in, kernel_size, padding,
                                                          use_bias):
    x = np.random.default_rng(1).normal(size=(4, 7, 6, channels_in)) * 2.0 + 0.5
    folded, reference = make_layer(channels_in, kernel_size, padding, use_bias), \
        make_layer(channels_in, kernel_size, padding, use_bias)
    assert folded._folds(tf.constant(x))
    ours = derivatives(lambda t: folded(t, training=True), folded, x)
    theirs = derivatives(lambda t: separate(reference, t), reference, x)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)
    for a, b in zip(folded.non_trainable_weights, reference.non_trainable_weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12)  # Moving statistics.


def test_inference_and_unfolded_shapes_run_conv_then_batch_norm():
    x = np.random.default_rng(2).normal(size=(3, 7, 6, 4))  # 3x3x4 = 36 values a patch.
    layer = make_layer(4)
    assert not layer._folds(tf.constant(x))
    for training in (True, False):
        np.testing.assert_allclose(layer(x, training=training),
                                   separate(layer, x, training), rtol=1e-12)


def test_float32_fold_is_as_close_to_float64_as_the_separate_layers():
    x = np.random.default_rng(3).uniform(size=(16, 7, 6, 1))
    exact = make_layer(1)
    reference = derivatives(lambda t: separate(exact, t), exact, x)
    errors = {}
    for name, forward in (("folded", lambda layer, t: layer(t, training=True)),
                          ("separate", separate)):
        layer = make_layer(1, dtype="float32")
        for variable, value in zip(layer.weights, exact.weights):
            variable.assign(tf.cast(value, tf.float32))
        ours = derivatives(lambda t, layer=layer, forward=forward: forward(layer, t), layer,
                           tf.constant(x, tf.float32))
        errors[name] = [np.max(np.abs(a - b)) / np.max(np.abs(b))
                        for a, b in zip(ours[:5], reference[:5]) if np.max(np.abs(b)) > 1e-6]
    assert max(errors["folded"]) < 1e-4
    assert max(errors["folded"]) < 10 * max(errors["separate"])


def test_mixed_bfloat16_policy_runs_close_to_float32():
    x = np.random.default_rng(4).uniform(size=(8, 7, 6, 3)).astype("float32")
    full = make_layer(3, dtype="float32")
    low = make_layer(3, dtype="mixed_bfloat16")
    for variable, value in zip(low.weights, full.weights):
        variable.assign(value)
    y = low(x, training=True)
    assert y.dtype == tf.bfloat16
    np.testing.assert_allclose(tf.cast(y, tf.float32), full(x, training=True), atol=0.1)


def test_config_round_trip_and_saving(tmp_path):
    inputs = keras.Input((7, 6, 1))
    outputs = make_layer(1, dtype="float32")(inputs)
    model = keras.Model(inputs, outputs)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    x = np.random.default_rng(5).normal(size=(2, 7, 6, 1)).astype("float32")
    np.testing.assert_allclose(loaded(x, training=False), model(x, training=False), rtol=1e-6)
    assert [w.path for w in loaded.weights] == [w.path for w in model.weights]


@pytest.mark.parametrize("conv,batch_norm,argument", [
    ("conv", BatchNormalization(), "conv"),
    (keras.layers.Conv2D(2, 3), keras.layers.BatchNormalization(), "batch_norm"),
    (keras.layers.Conv2D(2, 3, data_format="channels_first"), BatchNormalization(), "conv"),
])
def test_bad_arguments_are_refused_by_name(conv, batch_norm, argument):
    with pytest.raises(ValueError, match=f"argument `{argument}`"):
        ConvBatchNormalization(conv, batch_norm)
