"""Test-time adaptation (finetune, TSA) against computations written out here."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfmeta
from tfmeta.learners.padding import QUERY_MASK
from tfmeta.learners.support_augmentation import SHIFT_SHARE, augment_support
from tfmeta.learners.task_adapters import with_task_adapters
from tfmeta.learners.test_time_adaptation import TestTimeAdaptation

FEATURES, WAYS = 4, 3


def dense_encoder(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((FEATURES,)),
                             keras.layers.Dense(5, activation="tanh", name="hidden"),
                             # No output bias: the prototype loss is blind to a shift of
                             # every embedding, so its gradient would be float noise,
                             # which Adam's normalisation blows up.
                             keras.layers.Dense(3, use_bias=False, name="out")])


def small_conv4(shape=(16, 16, 1), seed=0):
    keras.utils.set_random_seed(seed)
    return tfmeta.backbones.conv4(shape, filters=3)


def small_resnet12(seed=0):
    keras.utils.set_random_seed(seed)
    return tfmeta.backbones.resnet12((16, 16, 3), filters=(2, 3, 3, 4))


def episode(shape, tasks=2, shots=2, queries=2, seed=0):
    rng = np.random.default_rng(seed)
    support_y = np.stack([rng.permutation(np.repeat(np.arange(WAYS), shots))
                          for _ in range(tasks)]).astype("int32")
    query_y = np.stack([rng.permutation(np.repeat(np.arange(WAYS), queries))
                        for _ in range(tasks)]).astype("int32")
    return ({"support_x": rng.normal(size=(tasks, WAYS * shots, *shape)).astype("float32"),
             "support_y": support_y,
             "query_x": rng.normal(size=(tasks, WAYS * queries, *shape)).astype("float32")},
            query_y)


# === Finetune: the fine-tuned weights and logits, derived by hand ===


def hand_embed(weights, x):
    kernel, bias, out_kernel = weights
    return tf.tanh(x @ kernel + bias) @ out_kernel


def hand_prototype_loss(weights, x, y):
    embeddings = hand_embed(weights, x)
    one_hot = tf.one_hot(y, WAYS, dtype=embeddings.dtype)
    prototypes = tf.transpose(one_hot) @ embeddings / tf.reduce_sum(one_hot, 0)[:, None]
    logits = -tf.reduce_sum((embeddings[:, None] - prototypes[None]) ** 2, -1)
    log_probabilities = logits - tf.reduce_logsumexp(logits, -1, keepdims=True)
    return -tf.reduce_mean(tf.reduce_sum(one_hot * log_probabilities, -1))


def hand_gradient(weights, x, y):
    tensors = [tf.constant(w) for w in weights]
    with tf.GradientTape() as tape:
        tape.watch(tensors)
        loss = hand_prototype_loss(tensors, x, y)
    return [g.numpy() for g in tape.gradient(loss, tensors)]


def hand_logits(weights, support_x, support_y, query_x):
    support = hand_embed(weights, support_x).numpy()
    queries = hand_embed(weights, query_x).numpy()
    prototypes = np.stack([support[support_y == c].mean(0) for c in range(WAYS)])
    return -((queries[:, None] - prototypes[None]) ** 2).sum(-1)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_finetune_weights_and_logits_equal_a_hand_derivation(optimizer, float64):
    # In float64: Adam divides by the gradient's size, which turns float32 rounding of a
    # small gradient entry into a visible step.
    encoder = dense_encoder()
    rate, steps = 0.3, 2
    learner = tfmeta.ProtoNet(encoder, test_time_adaptation=TestTimeAdaptation(
        "finetune", steps=steps, learning_rate=rate, optimizer=optimizer))
    inputs, _ = episode((FEATURES,))
    inputs = {key: value.astype("float64") if key != "support_y" else value
              for key, value in inputs.items()}
    state = learner.adapt_step(inputs["support_x"], inputs["support_y"]).numpy()
    logits = learner.predict(inputs, verbose=0)
    start = [v.numpy() for v in encoder.weights]
    for task in range(2):
        x, y = inputs["support_x"][task], inputs["support_y"][task]
        weights = list(start)
        first, second = [np.zeros_like(w) for w in weights], [np.zeros_like(w) for w in weights]
        for step in range(1, steps + 1):
            gradients = hand_gradient(weights, x, y)
            if optimizer == "sgd":
                weights = [w - rate * g for w, g in zip(weights, gradients)]
                continue
            first = [0.9 * m + 0.1 * g for m, g in zip(first, gradients)]
            second = [0.999 * v + 0.001 * g * g for v, g in zip(second, gradients)]
            corrected = rate * np.sqrt(1 - 0.999**step) / (1 - 0.9**step)
            weights = [w - corrected * m / (np.sqrt(v) + 1e-7)
                       for w, m, v in zip(weights, first, second)]
        flat = np.concatenate([w.ravel() for w in weights])
        # The state is float32 (the contract): the weights to float32 precision.
        np.testing.assert_allclose(state[task, :flat.size], flat, rtol=1e-6, atol=1e-7)
        expected = hand_logits(weights, x, y, inputs["query_x"][task])
        np.testing.assert_allclose(logits[task], expected, rtol=1e-10, atol=1e-10)
    for variable, value in zip(encoder.weights, start):  # Nothing is assigned.
        np.testing.assert_array_equal(variable.numpy(), value)


def test_fit_trains_the_plain_protonet():
    inputs, query_y = episode((FEATURES,), seed=2)
    losses = []
    for adaptation in (None, "finetune"):
        learner = tfmeta.ProtoNet(dense_encoder(), test_time_adaptation=adaptation)
        learner.compile(keras.optimizers.SGD(0.1),
                        keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        losses.append(learner.train_on_batch(inputs, query_y, return_dict=True)["loss"])
        losses.append([v.numpy() for v in learner.encoder.weights])
    assert losses[0] == losses[2]
    for a, b in zip(losses[1], losses[3]):
        np.testing.assert_array_equal(a, b)


# === TSA: the frozen encoder with adapters ===


@pytest.mark.parametrize("make", [small_conv4, small_resnet12], ids=["conv4", "resnet12"])
def test_tsa_with_zero_steps_is_plain_protonet_exactly(make):
    encoder = make()
    shape = tuple(encoder.inputs[0].shape[1:])
    inputs, _ = episode(shape)
    plain = tfmeta.ProtoNet(encoder, ways=WAYS)
    tsa = tfmeta.ProtoNet(encoder, ways=WAYS,
                          test_time_adaptation=TestTimeAdaptation("tsa", steps=0))
    np.testing.assert_array_equal(tsa(inputs), plain(inputs))
    model, adapted = with_task_adapters(encoder)
    convolutions = [layer for layer in encoder._flatten_layers()
                    if type(layer) is keras.layers.Conv2D]
    assert len(adapted) == len(convolutions) + 1  # One adapter each, and the alignment.
    assert {id(v) for v in encoder.weights} <= {id(v) for v in model.weights}


def test_tsa_fits_only_the_adapters_and_the_alignment():
    encoder = small_conv4()
    inputs, _ = episode((16, 16, 1))
    learner = tfmeta.ProtoNet(encoder, test_time_adaptation=TestTimeAdaptation(
        "tsa", steps=3, learning_rate=0.05))
    before = [v.numpy() for v in encoder.weights]
    state = learner.adapt_step(inputs["support_x"], inputs["support_y"]).numpy()
    # Adapters: 1x3 (block 0), then 3x3 for three blocks; the alignment 3x3; prototypes 3x3.
    assert state.shape == (2, 3 + 3 * 9 + 9 + WAYS * 3)
    assert np.abs(state[:, :39]).max() > 0
    for variable, value in zip(encoder.weights, before):
        np.testing.assert_array_equal(variable.numpy(), value)
    assert len(learner.weights) == len(tfmeta.ProtoNet(encoder).weights)


def test_tsa_gradient_matches_finite_differences(float64):
    keras.utils.set_random_seed(3)
    encoder = keras.Sequential([keras.Input((5, 5, 2)),
                                keras.layers.Conv2D(3, 3, padding="same", activation="tanh"),
                                keras.layers.Conv2D(2, 3, strides=2, padding="same"),
                                keras.layers.Flatten()])
    rate = 0.5
    learner = tfmeta.ProtoNet(encoder, test_time_adaptation=TestTimeAdaptation(
        "tsa", steps=1, learning_rate=rate, optimizer="sgd"))
    tuner = learner._adapter.tuner
    inputs, _ = episode((5, 5, 2), tasks=1)
    x = tf.constant(inputs["support_x"][0], tf.float64)
    y = tf.constant(inputs["support_y"][0])
    weights, non_trainable, _ = tuner._read_weights()
    adapted = tuner._adapted_indices
    # Move off the starting point so the check does not rest on zero adapters alone.
    rng = np.random.default_rng(0)
    weights = [w + 0.1 * rng.normal(size=w.shape) if i in adapted else w
               for i, w in enumerate(weights)]

    def loss(values):
        return float(tuner.inner_loss(values, non_trainable, x, y, training=False))

    def tape_gradient(values):
        with tf.GradientTape() as tape:
            watched = [tf.constant(values[i]) for i in adapted]
            tape.watch(watched)
            values = list(values)
            for i, w in zip(adapted, watched):
                values[i] = w
            return watched, tape.gradient(
                tuner.inner_loss(values, non_trainable, x, y, False), watched)

    _, analytic = tape_gradient(weights)
    epsilon = 1e-6
    for i, gradient in zip(adapted, analytic):
        flat = np.asarray(weights[i]).ravel()
        for entry in rng.choice(flat.size, min(6, flat.size), replace=False):
            shifted = [np.asarray(w).copy() for w in weights]
            shifted[i].ravel()[entry] += epsilon
            up = loss(shifted)
            shifted[i].ravel()[entry] -= 2 * epsilon
            down = loss(shifted)
            np.testing.assert_allclose(gradient.numpy().ravel()[entry],
                                       (up - down) / (2 * epsilon), rtol=1e-6, atol=1e-9)
    # One SGD step of the learner from its start (zero adapters, identity alignment).
    watched, gradients = tape_gradient(tuner._read_weights()[0])
    expected = np.concatenate([(w - rate * g).numpy().ravel()
                               for w, g in zip(watched, gradients)])
    state = learner.adapt_step(x[None], y[None]).numpy()[0]  # float32, the contract.
    np.testing.assert_allclose(state[:expected.size], expected, rtol=1e-6, atol=1e-7)


# === Padding never changes a result ===


def with_padding(inputs, query_y, extra=3, seed=1):
    rng = np.random.default_rng(seed)
    out = {}
    for x_key, labels in (("support_x", inputs["support_y"]), ("query_x", query_y)):
        x = inputs[x_key]
        tasks, size = labels.shape
        padded_x = rng.normal(size=(tasks, size + extra, *x.shape[2:])).astype("float32") * 50
        padded_y = np.full((tasks, size + extra), -1, "int32")
        for task in range(tasks):
            real = np.sort(rng.choice(size + extra, size, replace=False))
            padded_x[task, real], padded_y[task, real] = x[task], labels[task]
        out[x_key] = padded_x
        out["support_y" if x_key == "support_x" else "query_y"] = padded_y
    query_y = out.pop("query_y")
    return out, query_y


@pytest.mark.parametrize("method", ["finetune", "tsa"])
def test_padding_never_changes_a_result(method):
    encoder = small_conv4()
    inputs, query_y = episode((16, 16, 1), seed=4)
    learner = tfmeta.ProtoNet(encoder, ways=WAYS, test_time_adaptation=TestTimeAdaptation(
        method, steps=2, learning_rate=0.05, augmentation="flip_and_shift"))
    pad_inputs, pad_query_y = with_padding(inputs, query_y)
    plain = learner(inputs).numpy()
    pad = learner({**pad_inputs, QUERY_MASK: pad_query_y >= 0}).numpy()
    for task in range(2):
        np.testing.assert_allclose(pad[task][pad_query_y[task] >= 0], plain[task],
                                   rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        learner.adapt_step(pad_inputs["support_x"], pad_inputs["support_y"]),
        learner.adapt_step(inputs["support_x"], inputs["support_y"]), rtol=1e-6, atol=1e-6)


# === Augmentation ===


def test_augmentation_flips_and_shifts_each_image_by_a_seeded_draw():
    images = np.random.default_rng(0).normal(size=(5, 8, 8, 2)).astype("float32")
    first = augment_support(tf.constant(images), "flip_and_shift", (3, 0)).numpy()
    np.testing.assert_array_equal(
        first, augment_support(tf.constant(images), "flip_and_shift", (3, 0)))
    assert not np.array_equal(first, augment_support(images, "flip_and_shift", (3, 1)))
    pad = int(8 * SHIFT_SHARE)
    for image, out in zip(images, first):
        candidates = []
        for flipped in (image, image[:, ::-1]):
            padded = np.pad(flipped, [(pad, pad), (pad, pad), (0, 0)])
            candidates += [padded[dy:dy + 8, dx:dx + 8] for dy in range(2 * pad + 1)
                           for dx in range(2 * pad + 1)]
        assert any(np.array_equal(out, candidate) for candidate in candidates)


# === Saving and bad input ===


def test_get_config_round_trip():
    adaptation = TestTimeAdaptation("tsa", steps=7, learning_rate=0.02,
                                    optimizer=keras.optimizers.Adam(0.02, beta_1=0.5),
                                    augmentation="flip_and_shift", seed=4)
    learner = tfmeta.ProtoNet(small_conv4(), distance="cosine", test_time_adaptation=adaptation)
    restored = tfmeta.ProtoNet.from_config(learner.get_config())
    assert restored.test_time_adaptation.get_config() == adaptation.get_config()
    assert restored.get_config() == learner.get_config()
    assert tfmeta.ProtoNet.from_config(
        tfmeta.ProtoNet(small_conv4()).get_config()).test_time_adaptation is None


def test_with_test_time_adaptation_shares_the_encoder():
    learner = tfmeta.ProtoNet(dense_encoder(), distance="cosine", learn_cosine_scale=True)
    learner.prototype_logits._scale_weight.assign(3.0)
    adapting = learner.with_test_time_adaptation("finetune")
    assert adapting.encoder is learner.encoder
    assert float(adapting.prototype_logits._scale_weight.numpy()) == 3.0
    assert adapting.test_time_adaptation.method == "finetune"


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: tfmeta.ProtoNet(dense_encoder(), test_time_adaptation="fine_tune"),
         r"argument `test_time_adaptation`.*Received: test_time_adaptation='fine_tune'"),
        (lambda: tfmeta.ProtoNet(dense_encoder(), test_time_adaptation=3),
         r"argument `test_time_adaptation`"),
        (lambda: TestTimeAdaptation("tsa", steps=-1), r"argument `steps`.*steps=-1"),
        (lambda: TestTimeAdaptation("tsa", learning_rate=0.0), r"argument `learning_rate`"),
        (lambda: TestTimeAdaptation("tsa", optimizer="rmsprop"), r"argument `optimizer`"),
        (lambda: TestTimeAdaptation("tsa", optimizer=keras.optimizers.SGD(0.1),
                                    learning_rate=0.2), r"argument `learning_rate`"),
        (lambda: TestTimeAdaptation("finetune", augmentation="mixup"),
         r"argument `augmentation`"),
        (lambda: tfmeta.ProtoNet(dense_encoder(), test_time_adaptation="tsa"),
         r"argument `encoder`.*no Conv2D"),
        (lambda: tfmeta.MAML(dense_encoder(), test_time_adaptation="finetune"),
         r"argument `test_time_adaptation`.*ProtoNet and Baseline.*MAML adapts"),
    ],
)
def test_bad_options_fail_in_one_line(make, match):
    with pytest.raises(ValueError, match=match) as error:
        make()
    assert "\n" not in str(error.value)


def test_litert_adaptation_is_refused_in_one_line():
    learner = tfmeta.ProtoNet(dense_encoder(), test_time_adaptation="finetune")
    inputs, _ = episode((FEATURES,))
    with pytest.raises(ValueError, match=r"argument `builtin_ops`"):
        learner.adapt_step(inputs["support_x"], inputs["support_y"], builtin_ops=True)


def test_docstring_examples():
    import doctest

    from tfmeta.layers import residual_adapter
    from tfmeta.learners import support_augmentation, task_adapters, test_time_adaptation

    for module in (residual_adapter, support_augmentation, task_adapters, test_time_adaptation):
        failures, tried = doctest.testmod(module)
        assert tried and not failures, module.__name__


# === Baseline / Baseline++: the head is fitted on the adapted features ===


def test_baseline_plus_plus_with_finetune_is_baseline_plus_plus_on_the_finetuned_encoder():
    adaptation = TestTimeAdaptation("finetune", steps=2, learning_rate=0.2, optimizer="sgd")
    inputs, _ = episode((FEATURES,), tasks=1, seed=5)

    def baseline(encoder, **options):
        return tfmeta.Baseline(encoder, num_classes=6, head="cosine", ways=WAYS,
                               fine_tune_steps=3, fine_tune_batch_size=None, cosine_scale=4.0,
                               **options)

    adapting = baseline(dense_encoder(), test_time_adaptation=adaptation)
    # The fine-tuned weights from ProtoNet's adaptation in the same geometry (cosine).
    reference = tfmeta.ProtoNet(dense_encoder(), distance="cosine", cosine_scale=4.0,
                                ways=WAYS, test_time_adaptation=adaptation)
    state = reference.adapt_step(inputs["support_x"], inputs["support_y"]).numpy()[0]
    tuned = dense_encoder()
    offset = 0
    for variable in tuned.weights:
        size = int(np.prod(variable.shape))
        variable.assign(state[offset:offset + size].reshape(variable.shape))
        offset += size
    expected = baseline(tuned)(inputs).numpy()
    np.testing.assert_allclose(adapting(inputs).numpy(), expected, rtol=1e-5, atol=1e-6)
    adapted_state = adapting.adapt_step(inputs["support_x"], inputs["support_y"])
    np.testing.assert_allclose(adapted_state[0, :offset], state[:offset], rtol=1e-6)
    np.testing.assert_allclose(adapting.predict_adapted_step(adapted_state, inputs["query_x"]),
                               expected, rtol=1e-5, atol=1e-6)
    assert adapting.serving_spec().task_state_size == adapted_state.shape[1]


def test_baseline_with_tsa_zero_steps_is_the_plain_baseline_and_round_trips():
    encoder = small_conv4()
    inputs, _ = episode((16, 16, 1), tasks=1)
    plain = tfmeta.Baseline(encoder, num_classes=5, ways=WAYS, fine_tune_steps=2)
    tsa = plain.with_test_time_adaptation(TestTimeAdaptation("tsa", steps=0))
    assert tsa.encoder is plain.encoder
    np.testing.assert_array_equal(tsa(inputs), plain(inputs))
    restored = tfmeta.Baseline.from_config(tsa.get_config())
    assert (restored.get_config()["test_time_adaptation"]
            == tsa.get_config()["test_time_adaptation"] == tsa.test_time_adaptation.get_config())
    meta_baseline = plain.to_protonet(test_time_adaptation="tsa")
    assert meta_baseline.test_time_adaptation.method == "tsa"


def test_keras_saving_round_trip(tmp_path):
    learner = tfmeta.ProtoNet(small_conv4(), ways=WAYS, test_time_adaptation=TestTimeAdaptation(
        "tsa", steps=1, learning_rate=0.05))
    learner.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    inputs, _ = episode((16, 16, 1), tasks=1)
    expected = learner.predict_on_batch(inputs)
    learner.save(tmp_path / "learner.keras")
    loaded = keras.saving.load_model(tmp_path / "learner.keras")
    assert loaded.test_time_adaptation == learner.test_time_adaptation
    np.testing.assert_allclose(loaded.predict_on_batch(inputs), expected, rtol=1e-6, atol=1e-6)


def test_xla_keeps_padding_at_weight_zero_and_gives_the_same_answer():
    inputs, _ = episode((FEATURES,))
    inputs["support_y"][:, -1] = -1  # One padded support example per task.
    predictions = []
    for jit_compile in (False, True):
        learner = tfmeta.ProtoNet(dense_encoder(), ways=WAYS, test_time_adaptation=(
            TestTimeAdaptation("finetune", steps=2)))
        learner.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                        jit_compile=jit_compile)
        predictions.append(learner.predict(inputs, verbose=0))
    np.testing.assert_allclose(predictions[1], predictions[0], rtol=1e-5, atol=1e-5)
