"""Keras' image batch norm in a user's model runs as tfmeta's fused layer on the same weights."""

import warnings

import keras
import numpy as np
import pytest
from episode_fixtures import classification_episodes, meta_gradients

import tfmeta

FUSED_WARNING = "run as tfmeta.layers.BatchNormalization on the same variables"
SPARSE_CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def keras_conv(bn_class=keras.layers.BatchNormalization, functional=False, seed=0, **bn_kwargs):
    """A user's plain Keras conv model; batch norm with non-trivial weights and statistics."""
    keras.utils.set_random_seed(seed)
    layers = [keras.layers.Conv2D(4, 3, padding="same"), bn_class(momentum=0.9, **bn_kwargs),
              keras.layers.ReLU(), keras.layers.MaxPooling2D(2), keras.layers.Flatten(),
              keras.layers.Dense(3)]
    if functional:
        inputs = keras.Input((6, 6, 1))
        x = inputs
        for layer in layers:
            x = layer(x)
        model = keras.Model(inputs, x)
    else:
        model = keras.Sequential([keras.Input((6, 6, 1)), *layers])
    rng = np.random.default_rng(seed)
    bn = model.layers[1] if not functional else model.layers[2]
    size = bn.gamma.shape
    bn.gamma.assign(1.0 + 0.3 * rng.normal(size=size))
    bn.beta.assign(0.2 * rng.normal(size=size))
    bn.moving_mean.assign(0.1 * rng.normal(size=size))
    bn.moving_variance.assign(1.0 + 0.2 * rng.random(size))
    return model


def fused_learner(model, learner_class=tfmeta.MAML, **kwargs):
    with pytest.warns(UserWarning, match=FUSED_WARNING):
        learner = learner_class(model, **kwargs)
    learner.compile(optimizer=keras.optimizers.SGD(0.1), loss=SPARSE_CE)
    return learner


def batch_norms(model):
    return [layer for layer in model._flatten_layers(include_self=False)
            if "BatchNormalization" in type(layer).__name__]


@pytest.mark.parametrize("functional", [False, True])
@pytest.mark.parametrize("learner_class", [tfmeta.MAML, tfmeta.Reptile])
def test_learner_runs_tfmeta_batch_norm_on_the_users_variables(learner_class, functional):
    model = keras_conv(functional=functional)
    learner = fused_learner(model, learner_class, inner_steps=2, inner_learning_rate=0.3)

    (bn,) = batch_norms(learner.model)
    assert type(bn) is tfmeta.layers.BatchNormalization
    assert type(batch_norms(model)[0]) is keras.layers.BatchNormalization
    assert len(learner.model.weights) == len(model.weights)
    assert all(a is b for a, b in zip(learner.model.weights, model.weights))

    before = [v.numpy().copy() for v in model.trainable_variables]
    inputs, query_y = classification_episodes(shape=(6, 6, 1))
    learner.train_on_batch(inputs, query_y)
    after = model.get_weights()
    # Training moved the user's own weights (all but the conv bias, which batch norm cancels).
    moved = [not np.allclose(a, v.numpy()) for a, v in zip(before, model.trainable_variables)]
    assert [moved[i] for i in (0, 2, 3, 4, 5)] == [True] * 5
    for got, want in zip(learner.model.get_weights(), after):
        np.testing.assert_array_equal(got, want)


def test_fused_step_equals_keras_batch_norm_step_first_order():
    """Keras' layer is exact to first order: FOMAML steps agree with and without the swap."""
    inputs, query_y = classification_episodes(shape=(6, 6, 1))

    def step(fuse):
        model = keras_conv()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            learner = tfmeta.MAML(model, inner_steps=2, inner_learning_rate=0.3,
                                  first_order=True, fuse_batch_norm=fuse)
        learner.compile(optimizer=keras.optimizers.SGD(0.1), loss=SPARSE_CE)
        loss, gradients = meta_gradients(learner, inputs, query_y)
        learner.train_on_batch(inputs, query_y)
        return loss, gradients, model.get_weights()

    fused, kept = step(True), step(False)
    assert fused[0] == pytest.approx(kept[0], rel=1e-5)
    for a, b in zip(fused[1] + fused[2], kept[1] + kept[2]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_fused_second_order_meta_gradient_matches_exact_float64():
    """With the swap, second-order MAML through a Keras-BN model is exact (float64 formula)."""
    inputs, query_y = classification_episodes(tasks=2, ways=3, shots=2, queries=2,
                                              shape=(6, 6, 1))
    weights = keras_conv().get_weights()

    def gradients(bn_class, dtype, fuse=True):
        keras.config.set_dtype_policy(dtype)
        try:
            model = keras_conv(bn_class)
        finally:
            keras.config.set_dtype_policy("float32")
        model.set_weights([w.astype(dtype) for w in weights])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            learner = tfmeta.MAML(model, inner_steps=2, inner_learning_rate=0.4,
                                  fuse_batch_norm=fuse)
        learner.compile(optimizer="sgd", loss=SPARSE_CE)
        cast = {k: (v.astype(dtype) if v.dtype.kind == "f" else v) for k, v in inputs.items()}
        return [g.astype("float64") for g in meta_gradients(learner, cast, query_y)[1]]

    exact = gradients(tfmeta.layers.BatchNormalization, "float64")
    for got, want in zip(gradients(keras.layers.BatchNormalization, "float32"), exact):
        np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-5)
    # Without the swap, Keras' layer drops a second-derivative term: visibly different.
    kept = gradients(keras.layers.BatchNormalization, "float32", fuse=False)
    assert max(np.abs(k - w).max() for k, w in zip(kept, exact)) > 1e-3


def test_protonet_and_baseline_fuse_their_encoders():
    keras.utils.set_random_seed(0)
    encoder = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Conv2D(4, 3),
                                keras.layers.BatchNormalization(), keras.layers.Flatten()])
    with pytest.warns(UserWarning, match=FUSED_WARNING):
        protonet = tfmeta.ProtoNet(encoder)
    with pytest.warns(UserWarning, match=FUSED_WARNING):
        baseline = tfmeta.Baseline(encoder, num_classes=4, ways=3)
    for learner in (protonet, baseline):
        assert type(batch_norms(learner.encoder)[0]) is tfmeta.layers.BatchNormalization
        assert all(a is b for a, b in zip(learner.encoder.weights, encoder.weights))


def test_fuse_batch_norm_false_keeps_keras_layer():
    model = keras_conv()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        learner = tfmeta.MAML(model, first_order=True, fuse_batch_norm=False)
    assert learner.model is model
    assert learner.get_config()["fuse_batch_norm"] is False
    with pytest.warns(UserWarning, match="second derivative on TensorFlow drops a term"):
        tfmeta.MAML(model, fuse_batch_norm=False)


@pytest.mark.parametrize("case", ["dense_inputs", "axis_1", "regularized", "frozen", "subclassed"])
def test_layers_that_cannot_be_fused_are_kept(case):
    keras.utils.set_random_seed(0)
    if case == "dense_inputs":
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3),
                                  keras.layers.BatchNormalization(), keras.layers.Dense(2)])
    elif case == "subclassed":
        class Net(keras.Model):
            def __init__(self):
                super().__init__()
                self.conv = keras.layers.Conv2D(2, 3)
                self.bn = keras.layers.BatchNormalization()
                self.flat = keras.layers.Flatten()

            def call(self, x, training=None):
                return self.flat(self.bn(self.conv(x), training=training))

        model = Net()
        model(np.zeros((1, 6, 6, 1), "float32"))
    else:
        kwargs = {"axis_1": {"axis": 1},
                  "regularized": {"gamma_regularizer": "l2"}}.get(case, {})
        model = keras_conv(**kwargs)
        if case == "frozen":
            model.layers[1].trainable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        learner = tfmeta.MAML(model, first_order=True)
    assert learner.model is model


def test_saved_learner_reloads_with_tfmeta_batch_norm(tmp_path):
    model = keras_conv()
    learner = fused_learner(model, inner_steps=1, inner_learning_rate=0.3)
    inputs, query_y = classification_episodes(shape=(6, 6, 1))
    learner.train_on_batch(inputs, query_y)
    learner.save(tmp_path / "learner.keras")
    restored = keras.saving.load_model(tmp_path / "learner.keras")
    assert type(batch_norms(restored.model)[0]) is tfmeta.layers.BatchNormalization
    np.testing.assert_allclose(restored.predict(inputs, verbose=0),
                               learner.predict(inputs, verbose=0), rtol=1e-5, atol=1e-6)


def test_bad_fuse_batch_norm_is_refused():
    with pytest.raises(ValueError, match="fuse_batch_norm"):
        tfmeta.MAML(keras_conv(), fuse_batch_norm="yes")


def test_tfmeta_batch_norm_refuses_a_mask():
    layer = tfmeta.layers.BatchNormalization()
    with pytest.raises(ValueError, match="`mask`"):
        layer(np.ones((2, 3), "float32"), mask=np.ones((2,), bool))
