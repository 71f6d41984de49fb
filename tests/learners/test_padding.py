"""Padding never changes a result: every learner on padded episodes equals the unpadded ones.

A padded episode here hides random garbage examples (not zeros) with the label -1 at random
positions of the support and query sets, so any leak of padding into a prototype, a loss,
a gradient, batch statistics or a metric shows.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfmeta
from tfmeta.learners.padding import QUERY_MASK, loss_arguments

FEATURES, WAYS = 6, 3


def episodes(tasks=2, ways=WAYS, shots=2, queries=3, seed=0):
    rng = np.random.default_rng(seed)
    support_y = np.stack([rng.permutation(np.repeat(np.arange(ways), shots)) for _ in range(tasks)])
    query_y = np.stack([rng.permutation(np.repeat(np.arange(ways), queries)) for _ in range(tasks)])
    inputs = {"support_x": rng.normal(size=(tasks, ways * shots, FEATURES)).astype("float32"),
              "support_y": support_y.astype("int32"),
              "query_x": rng.normal(size=(tasks, ways * queries, FEATURES)).astype("float32")}
    return inputs, query_y.astype("int32")


def insert_padding(x, y, extra, rng):
    """x [B, M, F], y [B, M] with `extra` garbage entries (label -1) at random places."""
    tasks, size = y.shape
    out_x = np.empty((tasks, size + extra, *x.shape[2:]), x.dtype)
    out_y = np.full((tasks, size + extra), -1, y.dtype)
    for b in range(tasks):
        real = np.sort(rng.choice(size + extra, size, replace=False))
        out_x[b] = rng.normal(size=out_x.shape[1:]) * 50.0
        out_x[b, real], out_y[b, real] = x[b], y[b]
    return out_x, out_y


def padded(inputs, query_y, support_extra=4, query_extra=5, seed=1):
    rng = np.random.default_rng(seed)
    support_x, support_y = insert_padding(inputs["support_x"], inputs["support_y"],
                                          support_extra, rng)
    query_x, padded_query_y = insert_padding(inputs["query_x"], query_y, query_extra, rng)
    return {"support_x": support_x, "support_y": support_y, "query_x": query_x}, padded_query_y


def mlp(batch_norm, units=WAYS, seed=0):
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((FEATURES,)), keras.layers.Dense(8, name="hidden")]
    if batch_norm:
        layers.append(keras.layers.BatchNormalization(name="norm"))
    layers += [keras.layers.Activation("relu"), keras.layers.Dense(units, name="head")]
    return keras.Sequential(layers)


def compiled(learner):
    learner.compile(optimizer=keras.optimizers.SGD(0.1),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                    metrics=["accuracy"])
    return learner


def real_queries(predictions, query_y):
    """The predictions of the real queries, task by task, in order."""
    return [p[y >= 0] for p, y in zip(np.asarray(predictions), query_y)]


def state(learner):
    return [np.array(v) for v in learner.weights]


def assert_same_training_step(make_learner, inputs, query_y):
    """One train_on_batch and one test_on_batch, padded against unpadded."""
    plain, pad = compiled(make_learner()), compiled(make_learner())
    pad_inputs, pad_query_y = padded(inputs, query_y)
    for a, b in zip(state(plain), state(pad)):
        np.testing.assert_array_equal(a, b)
    plain_logs = plain.train_on_batch(inputs, query_y, return_dict=True)
    pad_logs = pad.train_on_batch(pad_inputs, pad_query_y, return_dict=True)
    np.testing.assert_allclose(pad_logs["loss"], plain_logs["loss"], rtol=1e-5)
    for a, b in zip(state(plain), state(pad)):  # Weights, batch-norm statistics, rates.
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)
    plain_logs = plain.test_on_batch(inputs, query_y, return_dict=True)
    pad_logs = pad.test_on_batch(pad_inputs, pad_query_y, return_dict=True)
    for key in ("loss", "accuracy", "accuracy_ci95"):
        np.testing.assert_allclose(pad_logs[key], plain_logs[key], rtol=1e-5, atol=1e-7)
    # Predictions on real queries (the query mask is what evaluate passes).
    plain_predictions = plain.predict_on_batch(inputs)
    pad_predictions = pad.predict_on_batch({**pad_inputs, QUERY_MASK: pad_query_y >= 0})
    for a, b in zip(real_queries(plain_predictions, query_y),
                    real_queries(pad_predictions, pad_query_y)):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)


def test_loss_arguments_give_the_mean_over_real_entries_like_ignore_class():
    y = np.array([[0, -1, 2], [1, 1, -1]], "int32")
    logits = np.random.default_rng(0).normal(size=(2, 3, 3)).astype("float32")
    entries = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)(
        np.maximum(y, 0), logits).numpy()
    expected = entries[y >= 0].mean()
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    np.testing.assert_allclose(loss(*loss_arguments(y)[:1], logits,
                                    sample_weight=loss_arguments(y)[1]), expected, rtol=1e-6)
    # Keras' ignore_class also averages over the unmasked entries only (Keras 3.15).
    ignoring = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1)
    np.testing.assert_allclose(ignoring(y, logits), expected, rtol=1e-6)


@pytest.mark.parametrize("batch_norm", [True, False])
def test_protonet(batch_norm):
    inputs, query_y = episodes()
    assert_same_training_step(
        lambda: tfmeta.ProtoNet(mlp(batch_norm, units=4), fuse_batch_norm=False),
        inputs, query_y)


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("maml", lambda model: tfmeta.MAML(model, inner_steps=2, inner_learning_rate=0.3)),
        ("fomaml", lambda model: tfmeta.MAML(model, inner_steps=2, inner_learning_rate=0.3,
                                             first_order=True)),
        ("meta_sgd", lambda model: tfmeta.MAML(model, inner_learning_rate=0.3,
                                               learn_inner_learning_rate="per_parameter")),
        ("anil", lambda model: tfmeta.MAML(model, inner_learning_rate=0.3,
                                           adapt_layers=["head"])),
        ("fo_proto_maml", lambda model: tfmeta.MAML(model, inner_steps=2, inner_learning_rate=0.3,
                                                    first_order=True, head_init="prototypes")),
        ("reptile", lambda model: tfmeta.Reptile(model, inner_steps=2,
                                                 inner_learning_rate=0.3)),
    ],
)
def test_gradient_learners_with_batch_norm(name, make):
    inputs, query_y = episodes()
    assert_same_training_step(lambda: make(mlp(batch_norm=True)), inputs, query_y)


def test_maml_without_batch_norm_weights_the_loss():
    # No batch statistics: the padded examples stay in the batch with the weight 0.
    inputs, query_y = episodes(seed=3)
    assert_same_training_step(
        lambda: tfmeta.MAML(mlp(batch_norm=False), inner_steps=2, inner_learning_rate=0.3),
        inputs, query_y)


def test_baseline_fine_tuning():
    inputs, query_y = episodes(seed=4)
    keras.utils.set_random_seed(0)
    encoder = tfmeta.backbones.mlp((FEATURES,), hidden_units=(8,), output_units=5)

    def make():
        return tfmeta.Baseline(encoder, num_classes=10, ways=WAYS, fine_tune_steps=5)

    plain, pad = compiled(make()), compiled(make())
    pad_inputs, pad_query_y = padded(inputs, query_y)
    plain_logs = plain.test_on_batch(inputs, query_y, return_dict=True)
    pad_logs = pad.test_on_batch(pad_inputs, pad_query_y, return_dict=True)
    for key in ("loss", "accuracy"):
        np.testing.assert_allclose(pad_logs[key], plain_logs[key], rtol=1e-5, atol=1e-7)
    for a, b in zip(real_queries(plain.predict_on_batch(inputs), query_y),
                    real_queries(pad.predict_on_batch(pad_inputs), pad_query_y)):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)


def mixed_ways_batch():
    """Two episodes, 3-way and 2-way, padded to one meta-batch; and each one alone."""
    three, three_y = episodes(tasks=1, ways=3, seed=5)
    two, two_y = episodes(tasks=1, ways=2, seed=6)
    two_padded, two_padded_y = padded(two, two_y, support_extra=2, query_extra=3, seed=2)
    batch = {key: np.concatenate([three[key], two_padded[key]]) for key in three}
    return batch, np.concatenate([three_y, two_padded_y]), (three, three_y), (two, two_y)


def test_protonet_mixes_episodes_of_different_ways():
    batch, batch_y, (three, _), (two, _) = mixed_ways_batch()
    learner = compiled(tfmeta.ProtoNet(mlp(True, units=4), fuse_batch_norm=False))
    logits = learner.predict_on_batch(batch)
    np.testing.assert_allclose(logits[0], learner.predict_on_batch(three)[0], rtol=1e-5)
    alone = learner.predict_on_batch(two)[0]  # [6, 2]
    real = batch_y[1] >= 0
    np.testing.assert_allclose(logits[1][real][:, :2], alone, rtol=1e-5, atol=1e-6)
    assert np.isneginf(logits[1][:, 2]).all()


def test_maml_head_wider_than_the_episode_is_its_first_columns():
    batch, batch_y, _, (two, two_y) = mixed_ways_batch()
    wide = compiled(tfmeta.MAML(mlp(False, units=3), inner_steps=2, inner_learning_rate=0.3))
    narrow_model = mlp(False, units=2)
    for source, target in zip(wide.model.weights, narrow_model.weights):
        target.assign(np.asarray(source)[..., :target.shape[-1]])
    narrow = compiled(tfmeta.MAML(narrow_model, inner_steps=2, inner_learning_rate=0.3))
    logits = wide.predict_on_batch(batch)[1]
    expected = narrow.predict_on_batch(two)[0]
    np.testing.assert_allclose(logits[batch_y[1] >= 0][:, :2], expected, rtol=1e-4, atol=1e-5)
    assert np.isneginf(logits[:, 2]).all()


def test_proto_maml_head_wider_than_the_episode_is_the_narrow_heads_first_columns():
    # The prototype head does not depend on the model's head weights: a 3-unit head on a
    # padded 2-way episode is a 2-unit head on the episode alone, plus a -inf column.
    batch, batch_y, _, (two, _) = mixed_ways_batch()
    wide = compiled(tfmeta.MAML(mlp(False, units=3), inner_steps=2, inner_learning_rate=0.3,
                                head_init="prototypes"))
    narrow_model = mlp(False, units=2)
    for source, target in zip(wide.model.weights, narrow_model.weights):
        target.assign(np.asarray(source)[..., :target.shape[-1]])
    narrow = compiled(tfmeta.MAML(narrow_model, inner_steps=2, inner_learning_rate=0.3,
                                  head_init="prototypes"))
    logits = wide.predict_on_batch(batch)[1]
    expected = narrow.predict_on_batch(two)[0]
    np.testing.assert_allclose(logits[batch_y[1] >= 0][:, :2], expected, rtol=1e-4, atol=1e-5)
    assert np.isneginf(logits[:, 2]).all()


def test_episodic_accuracy_ignores_padded_queries():
    labels = np.array([[0, -1, 1, -1], [1, 1, 0, -1]])
    logits = np.eye(2)[[[0, 1, 0, 0], [1, 0, 0, 1]]].astype("float32")
    values = tfmeta.metrics.EpisodicAccuracy().episode_values(labels, logits).numpy()
    np.testing.assert_allclose(values, [0.5, 2 / 3], rtol=1e-6)


def test_export_serves_padded_episodes_like_unpadded(tmp_path):
    inputs, query_y = episodes(tasks=1, seed=7)
    learner = compiled(tfmeta.ProtoNet(mlp(True, units=4), fuse_batch_norm=False))
    learner.export(str(tmp_path / "model"))
    served = tf.saved_model.load(str(tmp_path / "model")).signatures["serving_default"]
    pad_inputs, pad_query_y = padded(inputs, query_y)

    def serve(episode):
        return next(iter(served(**{k: tf.constant(v[0]) for k, v in episode.items()}).values()))

    expected = serve(inputs).numpy()
    got = serve(pad_inputs).numpy()[pad_query_y[0] >= 0]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
