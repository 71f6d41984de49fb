"""Baseline / Baseline++ (pre-training, then a fresh head per episode) and Meta-Baseline."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfmeta

FEATURES, WAYS = 3, 3


def linear_encoder(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(FEATURES, use_bias=False)])


def episode(tasks=2, shots=2, queries=2, seed=0, dtype="float64"):
    rng = np.random.default_rng(seed)
    support_y = np.stack([rng.permutation(np.repeat(np.arange(WAYS), shots)) for _ in range(tasks)])
    inputs = {"support_x": rng.normal(size=(tasks, WAYS * shots, 4)).astype(dtype),
              "support_y": support_y.astype("int32"),
              "query_x": rng.normal(size=(tasks, WAYS * queries, 4)).astype(dtype)}
    query_y = np.stack([np.repeat(np.arange(WAYS), queries)] * tasks).astype("int32")
    return inputs, query_y


def compiled(learner):
    learner.compile(optimizer=keras.optimizers.SGD(0.1),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                    metrics=["accuracy"])
    return learner


def softmax_gradient(w, b, features, labels):
    logits = features @ w + b
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    d = (p - np.eye(w.shape[1])[labels]) / len(labels)
    return features.T @ d, d.sum(axis=0)


def test_fresh_linear_head_per_episode_matches_numpy(float64):
    steps, rate, momentum, batch = 6, 0.5, 0.9, 4
    encoder = linear_encoder()
    learner = compiled(tfmeta.Baseline(
        encoder, num_classes=7, ways=WAYS, fine_tune_steps=steps, fine_tune_batch_size=batch,
        fine_tune_optimizer=keras.optimizers.SGD(rate, momentum=momentum)))
    inputs, _ = episode()
    got = learner.predict_on_batch(inputs)

    projection = encoder.layers[0].kernel.numpy()
    head_w, head_b = (v.numpy() for v in learner._fine_tuner.model.trainable_variables)
    rate = learner._fine_tuner.inner_learning_rate
    for task in range(2):
        support = inputs["support_x"][task] @ projection
        labels = inputs["support_y"][task]
        w, b = head_w.copy(), head_b.copy()
        vw, vb = np.zeros_like(w), np.zeros_like(b)
        for step in range(steps):
            rows = [(step * batch + i) % len(labels) for i in range(batch)]
            gw, gb = softmax_gradient(w, b, support[rows], labels[rows])
            vw, vb = momentum * vw - rate * gw, momentum * vb - rate * gb
            w, b = w + vw, b + vb
        np.testing.assert_allclose(got[task], (inputs["query_x"][task] @ projection) @ w + b,
                                   rtol=1e-9, atol=1e-12)
    # Every episode starts from the same untrained head: fit does not change it.
    np.testing.assert_array_equal(learner._fine_tuner.model.trainable_variables[0], head_w)


def test_pretraining_is_an_ordinary_classifier_step(float64):
    encoder = linear_encoder()
    learner = compiled(tfmeta.Baseline(encoder, num_classes=5, ways=WAYS, fine_tune_steps=2))
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(8, 4)), rng.integers(0, 5, 8).astype("int32")
    projection = encoder.layers[0].kernel.numpy().copy()
    w, b = (v.numpy().copy() for v in learner.classifier.trainable_variables)
    head = [v.numpy().copy() for v in learner._fine_tuner.model.trainable_variables]
    logs = learner.train_on_batch(x, y, return_dict=True)

    gw, gb = softmax_gradient(w, b, x @ projection, y)
    np.testing.assert_allclose(learner.classifier.kernel.numpy(), w - 0.1 * gw, rtol=1e-9)
    np.testing.assert_allclose(learner.classifier.bias.numpy(), b - 0.1 * gb, rtol=1e-9)
    assert not np.allclose(encoder.layers[0].kernel.numpy(), projection)
    for before, variable in zip(head, learner._fine_tuner.model.trainable_variables):
        np.testing.assert_array_equal(variable.numpy(), before)
    assert set(logs) >= {"loss", "batch_accuracy"}
    with pytest.raises(ValueError, match=r"\(x, y\) batches"):
        learner.train_on_batch(*episode())


def test_cosine_classifier_is_the_scaled_cosine():
    layer = tfmeta.layers.CosineClassifier(4, scale=3.0)
    x = np.random.default_rng(0).normal(size=(5, 6)).astype("float32")
    got = layer(x).numpy()
    w = layer.kernel.numpy()
    want = 3.0 * (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (w / np.linalg.norm(w, axis=0))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert tfmeta.layers.CosineClassifier.from_config(layer.get_config()).scale == 3.0
    with pytest.raises(ValueError, match="`units`"):
        tfmeta.layers.CosineClassifier(0)
    with pytest.raises(ValueError, match="`scale`"):
        tfmeta.layers.CosineClassifier(3, scale=-1.0)


@pytest.mark.parametrize("head", ["linear", "cosine"])
def test_evaluate_save_and_export_on_episodes(head, tmp_path):
    learner = compiled(tfmeta.Baseline(linear_encoder(), num_classes=6, head=head, ways=WAYS,
                                       fine_tune_steps=5))
    x = np.random.default_rng(2).normal(size=(30, 4)).astype("float32")
    learner.fit(x, np.arange(30) % 6, batch_size=10, epochs=1, verbose=0)
    inputs, query_y = episode(dtype="float32")
    results = learner.evaluate(inputs, query_y, verbose=0, return_dict=True)
    assert set(results) >= {"loss", "accuracy", "accuracy_ci95"}
    predictions = learner.predict_on_batch(inputs)
    assert predictions.shape == (2, WAYS * 2, WAYS)

    learner.save(tmp_path / "baseline.keras")
    loaded = keras.saving.load_model(tmp_path / "baseline.keras")
    np.testing.assert_allclose(loaded.predict_on_batch(inputs), predictions, rtol=1e-5, atol=1e-6)

    learner.export(str(tmp_path / "served"))
    serve = tf.saved_model.load(str(tmp_path / "served")).signatures["serving_default"]
    served = serve(support_x=tf.constant(inputs["support_x"][0]),
                   support_y=tf.constant(inputs["support_y"][0]),
                   query_x=tf.constant(inputs["query_x"][0]))["logits"]
    np.testing.assert_allclose(served, predictions[0], rtol=1e-5, atol=1e-6)


def test_meta_baseline_is_a_cosine_protonet_on_the_encoder():
    encoder = linear_encoder()
    learner = tfmeta.Baseline(encoder, num_classes=4, ways=WAYS)
    protonet = learner.to_protonet()
    assert protonet.encoder is encoder and protonet.distance == "cosine"
    protonet.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    inputs, _ = episode(dtype="float32")
    got = protonet.predict_on_batch(inputs)[0]
    projection = encoder.layers[0].kernel.numpy()
    support, query = inputs["support_x"][0] @ projection, inputs["query_x"][0] @ projection
    prototypes = np.stack([support[inputs["support_y"][0] == c].mean(axis=0) for c in range(3)])

    def unit(v):
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    np.testing.assert_allclose(got, 10.0 * unit(query) @ unit(prototypes).T, rtol=1e-4,
                               atol=1e-5)


@pytest.mark.parametrize("kwargs, argument", [
    ({"num_classes": 0}, "num_classes"), ({"head": "mlp"}, "head"), ({"ways": True}, "ways"),
    ({"fine_tune_steps": 0}, "fine_tune_steps"),
    ({"fine_tune_optimizer": "rmsprop"}, "fine_tune_optimizer"),
    ({"fine_tune_batch_size": 0}, "fine_tune_batch_size"),
    ({"cosine_scale": float("nan")}, "cosine_scale"), ({"seed": "x"}, "seed"),
])
def test_bad_arguments(kwargs, argument):
    settings = {"num_classes": 5, **kwargs}
    with pytest.raises(ValueError, match=f"`{argument}`"):
        tfmeta.Baseline(linear_encoder(), **settings)
    flat_images = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Conv2D(2, 3)])
    with pytest.raises(ValueError, match="`encoder`.*flat features"):
        tfmeta.Baseline(flat_images, num_classes=5)
