"""Proto-MAML (`MAML(head_init="prototypes")`) against an independent NumPy derivation.

The network is a two-layer tanh MLP whose output layer (the head) reads the hidden features;
the NumPy reference below computes the prototypes, the initial head, the inner SGD steps
(softmax cross-entropy, gradient written out by hand) and the meta-loss, so finite
differences of it are an independent derivation of the meta-gradient: second order, and the
first-order one, whose only constants are the inner gradients (so its derivative is that of
the query loss at `init(theta) + delta`, `delta` the inner steps' fixed sum).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfmeta
from tests.learners.episode_fixtures import meta_gradients
from tests.learners.reference import finite_difference
from tfmeta.learners.closed_form_head import head_gradient_function

FEATURES, HIDDEN, WAYS = 4, 5, 3
RATE = 0.4
SCCE = keras.losses.SparseCategoricalCrossentropy


# === The NumPy reference ===


def hidden(params, x):
    return np.tanh(x @ params[0] + params[1])


def logits(params, x):
    return hidden(params, x) @ params[2] + params[3]


def cross_entropy(z, y):
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -np.mean(log_p[np.arange(len(y)), y])


def gradient(params, x, y):
    """Hand-derived gradient of the mean softmax cross-entropy w.r.t. [w1, b1, w2, b2]."""
    h = hidden(params, x)
    z = h @ params[2] + params[3]
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    g = (p - np.eye(p.shape[1])[y]) / len(y)
    d_pre = (g @ params[2].T) * (1.0 - h**2)
    return [x.T @ d_pre, d_pre.sum(axis=0), h.T @ g, g.sum(axis=0)]


def prototypes(params, x, y, ways=WAYS):
    h = hidden(params, x)
    return np.stack([h[y == k].mean(axis=0) for k in range(ways)])


def initial(params, x, y):
    """Proto-MAML's starting weights: the body's, and the head 2c^T, -|c|^2."""
    c = prototypes(params, x, y)
    return [params[0], params[1], 2.0 * c.T, -(c**2).sum(axis=1)]


def adapt(params, x, y, steps, adapted):
    fast = [p.copy() for p in initial(params, x, y)]
    for _ in range(steps):
        grads = gradient(fast, x, y)
        for i in adapted:
            fast[i] = fast[i] - RATE * grads[i]
    return fast


def meta_loss(params, episodes, steps, adapted):
    return float(np.mean([cross_entropy(logits(adapt(params, sx, sy, steps, adapted), qx), qy)
                          for sx, sy, qx, qy in episodes]))


def first_order_surrogate(params, episodes, steps, adapted, prototype_path=True):
    """A function of the weights whose gradient at `params` is fo-Proto-MAML's meta-gradient.

    The inner steps' sum `delta` is fixed at `params`; only the initialisation moves.
    Without `prototype_path` the initial head is fixed too (for contrast).
    """
    fixed = [p.copy() for p in params]
    deltas, heads = [], []
    for sx, sy, _, _ in episodes:
        start = initial(fixed, sx, sy)
        deltas.append([a - s for a, s in zip(adapt(fixed, sx, sy, steps, adapted), start)])
        heads.append(start[2:])

    def loss():
        losses = []
        for (sx, sy, qx, qy), delta, head in zip(episodes, deltas, heads):
            start = initial(params, sx, sy)
            if not prototype_path:
                start = start[:2] + head
            losses.append(cross_entropy(logits([s + d for s, d in zip(start, delta)], qx), qy))
        return float(np.mean(losses))

    return loss


# === Fixtures ===


def episode_arrays(tasks=2, shots=2, queries=2, seed=0):
    rng = np.random.default_rng(seed)
    support_y = np.stack([rng.permutation(np.repeat(np.arange(WAYS), shots))
                          for _ in range(tasks)]).astype("int32")
    query_y = np.stack([rng.permutation(np.repeat(np.arange(WAYS), queries))
                        for _ in range(tasks)]).astype("int32")
    inputs = {"support_x": rng.normal(size=(tasks, WAYS * shots, FEATURES)),
              "support_y": support_y,
              "query_x": rng.normal(size=(tasks, WAYS * queries, FEATURES))}
    return inputs, query_y


def with_padding(inputs, query_y, seed=1):
    """The episodes with garbage entries (label -1) at random places of both sets."""
    rng = np.random.default_rng(seed)

    def pad(x, y, extra):
        tasks, size = y.shape
        out_x = rng.normal(size=(tasks, size + extra, *x.shape[2:])) * 50.0
        out_y = np.full((tasks, size + extra), -1, "int32")
        for b in range(tasks):
            real = np.sort(rng.choice(size + extra, size, replace=False))
            out_x[b, real], out_y[b, real] = x[b], y[b]
        return out_x, out_y

    support_x, support_y = pad(inputs["support_x"], inputs["support_y"], 3)
    query_x, padded_query_y = pad(inputs["query_x"], query_y, 4)
    return {"support_x": support_x, "support_y": support_y, "query_x": query_x}, padded_query_y


def as_episodes(inputs, query_y):
    return list(zip(inputs["support_x"], inputs["support_y"], inputs["query_x"], query_y))


def model(seed=0, units=WAYS):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((FEATURES,)),
                             keras.layers.Dense(HIDDEN, activation="tanh", name="body"),
                             keras.layers.Dense(units, name="head")])


def proto_maml(inner_steps=2, adapt_layers=None, first_order=True, units=WAYS, **kwargs):
    learner = tfmeta.MAML(model(units=units), inner_steps=inner_steps, inner_learning_rate=RATE,
                          first_order=first_order, adapt_layers=adapt_layers,
                          head_init="prototypes", **kwargs)
    learner.compile(optimizer="sgd", loss=SCCE(from_logits=True))
    return learner


def params_of(learner):
    return [np.array(v.numpy()) for v in learner.model.trainable_variables]


def tensors(learner):
    return ([v.value for v in learner.model.trainable_variables],
            [v.value for v in learner.model.non_trainable_variables])


ADAPTED = {None: [0, 1, 2, 3], ("head",): [2, 3]}


# === The initial head and its logits ===


@pytest.mark.parametrize("pad", [False, True])
def test_initial_head_is_twice_the_prototypes_and_minus_their_squared_norms(float64, pad):
    learner = proto_maml()
    inputs, query_y = episode_arrays(tasks=1)
    episode = with_padding(inputs, query_y)[0] if pad else inputs
    weights, non_trainable = tensors(learner)
    start = learner._prototype_head.initial_weights(
        learner, weights, non_trainable, tf.constant(episode["support_x"][0]),
        tf.constant(episode["support_y"][0]), training=False)
    c = prototypes(params_of(learner), inputs["support_x"][0], inputs["support_y"][0])
    np.testing.assert_allclose(start[2].numpy(), 2.0 * c.T, rtol=1e-12)
    np.testing.assert_allclose(start[3].numpy(), -(c**2).sum(axis=1), rtol=1e-12)
    for got, kept in zip(start[:2], weights[:2]):  # the body is the model's
        assert got is kept


def test_initial_logits_are_minus_squared_distances_up_to_a_constant_per_query(float64):
    learner = proto_maml()
    inputs, _ = episode_arrays(tasks=1, seed=2)
    weights, non_trainable = tensors(learner)
    sx, sy, qx = (tf.constant(inputs[k][0]) for k in ("support_x", "support_y", "query_x"))
    start = learner._prototype_head.initial_weights(learner, weights, non_trainable, sx, sy,
                                                    training=False)
    initial_logits = learner.model.stateless_call(start, non_trainable, qx)[0].numpy()
    params = params_of(learner)
    q = hidden(params, inputs["query_x"][0])
    c = prototypes(params, inputs["support_x"][0], inputs["support_y"][0])
    squared_distances = ((q[:, None, :] - c[None, :, :]) ** 2).sum(axis=-1)
    offset = initial_logits + squared_distances  # [Q, N]: constant across classes
    np.testing.assert_allclose(offset, np.repeat((q**2).sum(axis=1, keepdims=True), WAYS, 1),
                               rtol=1e-12)
    # The same softmax as a ProtoNet on the body (the library's other distance code).
    protonet = tfmeta.ProtoNet(learner._prototype_head.body)
    proto_logits = protonet({k: v[None] for k, v in (("support_x", sx), ("support_y", sy),
                                                     ("query_x", qx))})[0].numpy()
    np.testing.assert_allclose(tf.nn.softmax(initial_logits), tf.nn.softmax(proto_logits),
                               rtol=1e-10)


# === The inner loop from the prototype head ===


@pytest.mark.parametrize("adapt_layers", [None, ("head",)])
@pytest.mark.parametrize("steps", [1, 2])
def test_adapted_weights_equal_the_numpy_derivation(float64, adapt_layers, steps):
    learner = proto_maml(inner_steps=steps, adapt_layers=list(adapt_layers or []) or None)
    inputs, query_y = episode_arrays(tasks=1, seed=3)
    padded_inputs, _ = with_padding(inputs, query_y)
    expected = adapt(params_of(learner), inputs["support_x"][0], inputs["support_y"][0], steps,
                     ADAPTED[adapt_layers])
    weights, non_trainable = tensors(learner)
    for episode in (inputs, padded_inputs):
        fast = learner.adapt(weights, non_trainable, tf.constant(episode["support_x"][0]),
                             tf.constant(episode["support_y"][0]), steps, True, False)
        for got, want in zip(fast, expected):
            np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)


def test_predictions_are_the_adapted_network_on_the_queries(float64):
    learner = proto_maml(inner_steps=1, eval_inner_steps=2)
    inputs, query_y = episode_arrays(seed=4)
    params = params_of(learner)
    expected = [logits(adapt(params, sx, sy, 2, ADAPTED[None]), qx)
                for sx, sy, qx, _ in as_episodes(inputs, query_y)]
    np.testing.assert_allclose(learner.predict_on_batch(inputs), np.stack(expected), rtol=1e-9)


# === Meta-gradients ===


@pytest.mark.parametrize("adapt_layers", [None, ("head",)])
@pytest.mark.parametrize("first_order", [True, False])
def test_meta_gradient_equals_finite_differences_of_the_numpy_meta_loss(float64, first_order,
                                                                       adapt_layers):
    """Second order: of the meta-loss; first order: of its surrogate (inner steps fixed)."""
    learner = proto_maml(inner_steps=2, adapt_layers=list(adapt_layers or []) or None,
                         first_order=first_order)
    inputs, query_y = episode_arrays(seed=5)
    params = params_of(learner)
    episodes = as_episodes(inputs, query_y)
    adapted = ADAPTED[adapt_layers]
    loss, got = meta_gradients(learner, inputs, query_y)
    np.testing.assert_allclose(loss, meta_loss(params, episodes, 2, adapted), rtol=1e-10)
    function = (first_order_surrogate(params, episodes, 2, adapted) if first_order
                else lambda: meta_loss(params, episodes, 2, adapted))
    for g, e in zip(got, finite_difference(function, params)):
        np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-8)
    # The model's own head is replaced on every episode: no meta-gradient.
    assert not np.any(got[2]) and not np.any(got[3])
    if first_order:  # The path through the prototypes is kept: without it the body's differs.
        without = finite_difference(first_order_surrogate(params, episodes, 2, adapted,
                                                          prototype_path=False), params)
        assert not np.allclose(got[0], without[0], rtol=1e-3)
    # Padding changes nothing (up to the float32 weights of the padded loss' mean).
    _, padded = meta_gradients(learner, *with_padding(inputs, query_y))
    for g, p in zip(got, padded):
        np.testing.assert_allclose(p, g, rtol=1e-6, atol=1e-10)


def test_recomputed_inner_steps_give_the_same_second_order_meta_gradient(float64):
    inputs, query_y = episode_arrays(seed=7)
    _, plain = meta_gradients(proto_maml(first_order=False), inputs, query_y)
    _, recomputed = meta_gradients(proto_maml(first_order=False, recompute_inner_steps=True),
                                   inputs, query_y)
    for a, b in zip(plain, recomputed):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-13)


def test_unrolled_tasks_give_the_vectorized_meta_gradient(float64):
    inputs, query_y = episode_arrays(seed=8)
    _, vectorized = meta_gradients(proto_maml(task_batching="vectorize"), inputs, query_y)
    _, unrolled = meta_gradients(proto_maml(task_batching="unroll"), inputs, query_y)
    for a, b in zip(vectorized, unrolled):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("adapt_layers", [None, ["head"]])
def test_an_episode_narrower_than_the_head_is_the_narrow_heads_plus_minus_inf(float64,
                                                                               adapt_layers):
    """A 3-unit prototype head on 2-way episodes (unpadded) is a 2-unit head, and -inf."""
    wide = proto_maml(adapt_layers=adapt_layers, units=WAYS)
    narrow = proto_maml(adapt_layers=adapt_layers, units=WAYS - 1)
    narrow.model.get_layer("body").set_weights(wide.model.get_layer("body").get_weights())
    rng = np.random.default_rng(10)
    inputs = {"support_x": rng.normal(size=(2, 4, FEATURES)),
              "support_y": np.array([[0, 1, 1, 0], [1, 0, 0, 1]], "int32"),
              "query_x": rng.normal(size=(2, 3, FEATURES))}
    query_y = np.array([[0, 1, 1], [1, 0, 1]], "int32")
    got, expected = wide.predict_on_batch(inputs), narrow.predict_on_batch(inputs)
    np.testing.assert_allclose(got[..., :2], expected, rtol=1e-10)
    assert np.isneginf(got[..., 2]).all()
    wide_loss, wide_gradients = meta_gradients(wide, inputs, query_y)
    narrow_loss, narrow_gradients = meta_gradients(narrow, inputs, query_y)
    np.testing.assert_allclose(wide_loss, narrow_loss, rtol=1e-10)
    for w, n in zip(wide_gradients[:2], narrow_gradients[:2]):  # the body's
        np.testing.assert_allclose(w, n, rtol=1e-9, atol=1e-13)
    # Adapt once, predict many: the state says which classes the task has.
    state = wide.adapt_step(inputs["support_x"], inputs["support_y"])
    np.testing.assert_array_equal(state.numpy()[:, -WAYS:], [[1, 1, 0], [1, 1, 0]])
    np.testing.assert_allclose(wide.predict_adapted_step(state, inputs["query_x"]), got,
                               rtol=1e-5, atol=1e-7)  # the state is float32


def test_the_closed_form_head_step_equals_the_tape_on_a_narrow_mini_batched_episode(float64):
    """Head-only Proto-MAML adapts with builtin ops (LiteRT) as with the tape."""
    learner = proto_maml(adapt_layers=["head"], units=WAYS + 1, inner_batch_size=3)
    inputs, query_y = with_padding(*episode_arrays(tasks=1, seed=11))  # 3 ways on a 4-unit head
    weights, non_trainable = tensors(learner)
    sx, sy = tf.constant(inputs["support_x"][0]), tf.constant(inputs["support_y"][0])
    taped = learner.adapt(weights, non_trainable, sx, sy, 3, True, False)
    closed = learner.adapt(weights, non_trainable, sx, sy, 3, True, False,
                           gradient_function=head_gradient_function(learner))
    for t, c in zip(taped, closed):
        np.testing.assert_allclose(c.numpy(), t.numpy(), rtol=1e-10, atol=1e-13)
    assert not np.any(taped[2].numpy()[:, -1]) and taped[3].numpy()[-1] == 0.0


# === Keras API ===


def test_fit_evaluate_and_the_config_round_trip():
    learner = proto_maml(adapt_layers=["head"])
    config = learner.get_config()
    assert config["head_init"] == "prototypes" and config["first_order"] is True
    clone = tfmeta.MAML.from_config(config)
    assert clone.head_init == "prototypes" and clone._prototype_head is not None
    inputs, query_y = episode_arrays(seed=9)
    inputs = {k: v.astype("float32") if v.dtype == np.float64 else v for k, v in inputs.items()}
    dataset = tf.data.Dataset.from_tensors((inputs, query_y)).repeat()
    learner.compile(optimizer=keras.optimizers.Adam(1e-2), loss=SCCE(from_logits=True),
                    metrics=["accuracy"])
    history = learner.fit(dataset, steps_per_epoch=3, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    logs = learner.evaluate(dataset, steps=1, verbose=0, return_dict=True)
    assert {"loss", "accuracy", "accuracy_ci95"} <= set(logs)


# === Bad input: one line naming the argument ===


def test_bad_arguments_are_refused_in_one_line():
    cases = [
        (lambda: tfmeta.Reptile(model(), head_init="prototypes"), "argument `head_init`"),
        (lambda: tfmeta.MAML(model(), head_init="prototype"), "argument `head_init`"),
        (lambda: tfmeta.MAML(model(), head_init="prototypes", adapt_layers=["body"]),
         "argument `adapt_layers`.*'head'"),
        (lambda: tfmeta.MAML(keras.Sequential([
            keras.Input((FEATURES,)), keras.layers.Dense(HIDDEN, activation="tanh"),
            tfmeta.layers.CosineClassifier(WAYS)]), head_init="prototypes"),
         "argument `model`.*keras.layers.Dense"),
        (lambda: tfmeta.MAML(keras.Sequential([
            keras.Input((FEATURES,)), keras.layers.Dense(WAYS, activation="softmax")]),
            head_init="prototypes"), "argument `model`.*activation='softmax'"),
        (lambda: tfmeta.MAML(keras.Sequential([
            keras.Input((FEATURES,)), keras.layers.Dense(WAYS, use_bias=False)]),
            head_init="prototypes"), "argument `model`.*use_bias=False"),
        (lambda: tfmeta.MAML(keras.Sequential([
            keras.Input((2, FEATURES)), keras.layers.Dense(WAYS)]), head_init="prototypes"),
         "argument `model`.*flat features"),
    ]
    for make, message in cases:
        with pytest.raises(ValueError, match=message) as error:
            make()
        assert "\n" not in str(error.value)


def test_a_class_without_a_support_example_is_refused_in_one_line():
    learner = proto_maml()
    inputs, query_y = episode_arrays(tasks=1)
    inputs["support_y"] = np.where(inputs["support_y"] == 1, 0, inputs["support_y"])
    with pytest.raises(ValueError, match="every class needs a support example") as error:
        learner.predict_on_batch(inputs)
    assert "\n" not in str(error.value)


def test_a_query_label_the_episode_lacks_is_refused_in_one_line():
    learner = proto_maml(units=WAYS + 1)  # a 3-way episode on a 4-unit head
    inputs, query_y = episode_arrays(tasks=1)
    query_y[0, 0] = WAYS
    with pytest.raises(ValueError, match="`query_y` labels must be in 0..N-1") as error:
        learner.test_on_batch(inputs, query_y)
    assert "\n" not in str(error.value)


def test_regression_episodes_are_refused_in_one_line():
    learner = tfmeta.MAML(tfmeta.backbones.mlp((1,), (8,), 1), head_init="prototypes")
    learner.compile(optimizer="sgd", loss="mse")
    inputs = {"support_x": np.zeros((1, 4, 1), "float32"),
              "support_y": np.zeros((1, 4, 1), "float32"),
              "query_x": np.zeros((1, 3, 1), "float32")}
    with pytest.raises(ValueError, match="integer class labels") as error:
        learner.train_on_batch(inputs, np.zeros((1, 3, 1), "float32"))
    assert "\n" not in str(error.value)
