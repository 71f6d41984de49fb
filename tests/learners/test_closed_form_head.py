"""The closed-form head gradient: equal to finite differences and to the tape's inner loop."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfmeta
from tests.learners.reference import finite_difference
from tfmeta.learners.closed_form_head import (
    cosine_head_gradients,
    dense_head_gradients,
    head_gradient_function,
)

FEATURES, WAYS = 5, 3
SCCE = keras.losses.SparseCategoricalCrossentropy


def softmax_loss(logits, labels):
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -np.mean(log_p[np.arange(len(labels)), labels])


def cosine_logits(kernel, features, scale, epsilon):
    unit = features / (np.linalg.norm(features, axis=1, keepdims=True) + epsilon)
    return scale * unit @ (kernel / (np.linalg.norm(kernel, axis=0, keepdims=True) + epsilon))


def problem(seed=0, size=7):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(FEATURES, WAYS)), rng.normal(size=WAYS),
            rng.normal(size=(size, FEATURES)), rng.integers(0, WAYS, size))


def test_dense_gradient_equals_finite_differences():
    kernel, bias, features, labels = problem()
    expected = finite_difference(lambda: softmax_loss(features @ kernel + bias, labels),
                                 [kernel, bias])
    weights = tf.fill([len(labels)], np.float64(1 / len(labels)))
    got = dense_head_gradients(tf.constant(kernel), tf.constant(bias), tf.constant(features),
                               tf.constant(labels), weights)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g.numpy(), e, atol=1e-8)


def test_cosine_gradient_equals_finite_differences():
    kernel, _, features, labels = problem(seed=1)
    scale, epsilon = 4.0, 1e-3  # a large epsilon, so its terms are checked too
    expected = finite_difference(
        lambda: softmax_loss(cosine_logits(kernel, features, scale, epsilon), labels), [kernel])
    (got,) = cosine_head_gradients(tf.constant(kernel), tf.constant(features),
                                   tf.constant(labels), tf.fill([len(labels)], np.float64(1 / 7)),
                                   scale, epsilon)
    np.testing.assert_allclose(got.numpy(), expected[0], atol=1e-8)


def head_model(head="dense", batch_norm=False, seed=0):
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((4,)), keras.layers.Dense(FEATURES, activation="tanh", name="body")]
    if batch_norm:
        layers.append(tfmeta.layers.BatchNormalization(name="norm"))
    layers.append(keras.layers.Dense(WAYS, name="head") if head == "dense"
                  else tfmeta.layers.CosineClassifier(WAYS, scale=3.0, name="head"))
    return keras.Sequential(layers)


def anil(model, loss=None, **kwargs):
    learner = tfmeta.MAML(model, adapt_layers=["head"], fuse_batch_norm=False, **kwargs)
    learner.compile(optimizer="sgd", loss=loss or SCCE(from_logits=True))
    return learner


def support(size=8, seed=3, padded=0):
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(size) % WAYS)
    labels[size - padded:] = -1
    return tf.constant(rng.normal(size=(size, 4)), tf.float32), tf.constant(labels, tf.int32)


def both_adaptations(learner, support_x, support_y, steps, training):
    weights = [v.value for v in learner.model.trainable_variables]
    non_trainable = [v.value for v in learner.model.non_trainable_variables]
    taped = learner.adapt(weights, non_trainable, support_x, support_y, steps, True, training)
    closed = learner.adapt(weights, non_trainable, support_x, support_y, steps, True, training,
                           gradient_function=head_gradient_function(learner))
    return taped, closed


def assert_same(taped, closed):
    assert len(taped) == len(closed)
    for t, c in zip(taped, closed):
        np.testing.assert_allclose(c.numpy(), t.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("head", ["dense", "cosine"])
@pytest.mark.parametrize("options", [
    {},
    {"learn_inner_learning_rate": "per_parameter"},
    {"learn_inner_learning_rate": "per_step", "inner_steps": 3},
    {"inner_batch_size": 3},
    {"inner_optimizer": keras.optimizers.SGD(0.05, momentum=0.9)},
    {"inner_optimizer": keras.optimizers.Adam(0.05), "first_order": True},
])
def test_anil_inner_loop_equals_the_tape(head, options):
    learner = anil(head_model(head), inner_learning_rate=0.5, **options)
    if learner._inner_rates is not None:  # distinct learned rates, so a mix-up would show
        for i, rate in enumerate(learner._inner_rates):
            rate.assign(np.random.default_rng(i).uniform(0.1, 1.0, rate.shape))
    taped, closed = both_adaptations(learner, *support(), steps=4, training=False)
    assert_same(taped, closed)
    assert not np.allclose(taped[-1].numpy(), learner.model.trainable_variables[-1].numpy())


@pytest.mark.parametrize("loss", [SCCE(from_logits=True), SCCE(from_logits=True,
                                                                ignore_class=-1)])
@pytest.mark.parametrize("batch_norm", [False, True])
def test_padding_is_treated_as_the_inner_loss_treats_it(loss, batch_norm):
    # Padded examples weigh nothing; the padded episode lacks class 2 (-inf logits); with
    # transductive batch norm the body sees the real examples only.
    learner = anil(head_model(batch_norm=batch_norm), loss=loss, inner_learning_rate=0.5)
    support_x, support_y = support(padded=3)
    support_y = tf.where(support_y == 2, 0, support_y)
    for inner_batch_size in (None, 3):
        learner.inner_batch_size = inner_batch_size
        assert_same(*both_adaptations(learner, support_x, support_y, steps=3,
                                      training=batch_norm))


@pytest.mark.parametrize("inner_batch_size", [None, 4])
def test_transductive_batch_norm_in_the_body(inner_batch_size):
    learner = anil(head_model(batch_norm=True), inner_learning_rate=0.5,
                   inner_batch_size=inner_batch_size)
    assert_same(*both_adaptations(learner, *support(), steps=3, training=True))


def test_per_step_batch_norm_body():
    learner = anil(head_model(batch_norm=True), inner_learning_rate=0.5, inner_steps=2,
                   per_step_batch_norm=True)
    for copies in learner._per_step_batch_norm.weights:
        copies.assign(np.random.default_rng(0).uniform(0.5, 1.5, copies.shape))
    assert_same(*both_adaptations(learner, *support(), steps=2, training=True))


@pytest.mark.parametrize("head", ["linear", "cosine"])
def test_baseline_fine_tuning_equals_the_tape(head):
    keras.utils.set_random_seed(0)
    encoder = keras.Sequential([keras.Input((4,)), keras.layers.Dense(FEATURES)])
    learner = tfmeta.Baseline(encoder, num_classes=6, head=head, ways=WAYS, fine_tune_steps=7)
    tuner = learner._fine_tuner  # SGD with momentum 0.9 on mini-batches of 4 (the paper's)
    features = tf.constant(np.random.default_rng(2).normal(size=(9, FEATURES)), tf.float32)
    labels = tf.constant(np.arange(9) % WAYS, tf.int32)
    assert_same(*both_adaptations(tuner, features, labels, steps=7, training=False))


@pytest.mark.parametrize("make, message", [
    (lambda: tfmeta.MAML(head_model()), "not exactly the output layer 'head'"),
    (lambda: tfmeta.MAML(head_model(), adapt_layers=["body"]), "not exactly the output layer"),
    (lambda: tfmeta.MAML(keras.Sequential([keras.Input((4,)), keras.layers.Dense(
        WAYS, activation="softmax", name="head")]), adapt_layers=["head"]), "activation 'softmax'"),
    (lambda: tfmeta.MAML(keras.Sequential([keras.Input((4,)), keras.layers.Dense(
        WAYS, kernel_regularizer="l2", name="head")]), adapt_layers=["head"]), "regularisers"),
])
def test_refusals_name_the_reason(make, message):
    learner = make()
    learner.compile(optimizer="sgd", loss=SCCE(from_logits=True))
    with pytest.raises(ValueError, match=message):
        head_gradient_function(learner)


@pytest.mark.parametrize("loss", ["mse", SCCE(), SCCE(from_logits=True, ignore_class=0)])
def test_losses_without_the_closed_form_are_refused(loss):
    learner = anil(head_model(), loss=loss)
    with pytest.raises(ValueError, match="builtin ops only"):
        head_gradient_function(learner)
