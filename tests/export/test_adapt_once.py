"""Adapt once, predict many: every learner's `adapt_step` / `predict_adapted_step`.

In memory they equal `learner.predict`; in the SavedModel, `predict_adapted(adapt(s), q)`
equals `serving_default(s, q)`, for images, raw text and vectors (regression).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfmeta

IMAGE = (16, 16, 1)
WAYS = 3
LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
WORDS = ("alarm", "music", "weather")
FILLERS = ("please", "now", "today", "for me", "again", "soon")


def image_episode(rng, ways=WAYS, shots=2, queries=3):
    return {
        "support_x": rng.normal(size=(ways * shots, *IMAGE)).astype("float32"),
        "support_y": rng.permutation(np.repeat(np.arange(ways), shots)).astype("int32"),
        "query_x": rng.normal(size=(ways * queries, *IMAGE)).astype("float32"),
    }


def sentences():
    return [f"{word} {filler} {i}" for word in WORDS for i, filler in enumerate(FILLERS)]


def text_episode(rng, shots=2, queries=2):
    support, labels, query = [], [], []
    for label, word in enumerate(WORDS):
        chosen = rng.permutation(len(FILLERS))[: shots + queries]
        texts = [f"{word} {FILLERS[i]} {i}" for i in chosen]
        support += texts[:shots]
        labels += [label] * shots
        query += texts[shots:]
    order = rng.permutation(len(support))
    return {"support_x": np.array(support, object)[order],
            "support_y": np.array(labels, "int32")[order],
            "query_x": np.array(query, object)}


def sine_episode(rng, shots=5, queries=7):
    x = rng.uniform(-5, 5, size=(shots + queries, 1)).astype("float32")
    y = (1.7 * np.sin(x - 0.3)).astype("float32")
    return {"support_x": x[:shots], "support_y": y[:shots], "query_x": x[shots:]}


def image_classifier(seed):
    keras.utils.set_random_seed(seed)
    return tfmeta.backbones.conv4(IMAGE, filters=4, num_classes=WAYS)


def image_mlp(seed):
    """A small dense network on the images (cheaper to trace than conv4 for the variants)."""
    keras.utils.set_random_seed(seed)
    return tfmeta.backbones.mlp(IMAGE, (16,), WAYS)


def image_encoder(seed, backbone="conv4"):
    keras.utils.set_random_seed(seed)
    if backbone == "mlp":
        return tfmeta.backbones.mlp(IMAGE, (16,), 8)
    return tfmeta.backbones.conv4(IMAGE, filters=4)


def text_model(num_classes=None):
    keras.utils.set_random_seed(0)
    return tfmeta.backbones.bag_of_ngrams(sentences(), embedding_dim=8, num_classes=num_classes,
                                          seed=0)


def sine_mlp():
    keras.utils.set_random_seed(0)
    return tfmeta.backbones.mlp((1,), (20, 20), 1)


def compiled(learner, loss=LOSS):
    learner.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss)
    return learner


def baseline(head):
    learner = tfmeta.Baseline(image_encoder(7, "mlp"), num_classes=5, head=head, ways=WAYS,
                              fine_tune_steps=3, fine_tune_batch_size=4)
    return compiled(learner)


# name -> (learner factory, episode factory). Every option that changes adaptation; conv4
# where batch norm or convolutions matter, a small dense network elsewhere (cheaper to trace).
LEARNERS = {
    "maml": (lambda: compiled(tfmeta.MAML(image_classifier(0), inner_steps=1,
                                          inner_learning_rate=0.3, eval_inner_steps=2)),
             image_episode),
    "fomaml": (lambda: compiled(tfmeta.MAML(image_mlp(1), first_order=True,
                                            inner_learning_rate=0.3)), image_episode),
    "meta_sgd": (lambda: compiled(tfmeta.MAML(image_mlp(2), inner_learning_rate=0.2,
                                              learn_inner_learning_rate="per_parameter")),
                 image_episode),
    "maml_plus_plus": (lambda: compiled(tfmeta.MAML(
        image_classifier(3), inner_steps=2, eval_inner_steps=3, inner_learning_rate=0.2,
        learn_inner_learning_rate="per_step", per_step_batch_norm=True,
        multi_step_loss_steps=10)), image_episode),
    "maml_moving_statistics": (lambda: compiled(tfmeta.MAML(
        image_classifier(4), transductive=False, inner_learning_rate=0.3)), image_episode),
    "anil": (lambda: compiled(tfmeta.MAML(image_mlp(5), adapt_layers=["output"],
                                          inner_steps=3, inner_learning_rate=0.5)),
             image_episode),
    "proto_maml": (lambda: compiled(tfmeta.MAML(image_classifier(11), head_init="prototypes",
                                                inner_learning_rate=0.3, eval_inner_steps=2)),
                   image_episode),
    "fo_proto_maml_head_only": (lambda: compiled(tfmeta.MAML(
        image_mlp(12), head_init="prototypes", first_order=True, adapt_layers=["output"],
        inner_steps=2, inner_learning_rate=0.5)), image_episode),
    "reptile": (lambda: compiled(tfmeta.Reptile(image_mlp(6), inner_steps=3,
                                                inner_learning_rate=0.2,
                                                inner_batch_size=4)), image_episode),
    "reptile_carried_adam": (lambda: compiled(tfmeta.Reptile(
        image_mlp(8), inner_steps=2, carry_inner_optimizer_state=True,
        inner_optimizer=keras.optimizers.Adam(0.05, beta_1=0.0))), image_episode),
    "protonet": (lambda: compiled(tfmeta.ProtoNet(image_encoder(9))), image_episode),
    "protonet_cosine_fixed_ways": (lambda: compiled(tfmeta.ProtoNet(
        image_encoder(10, "mlp"), distance="cosine", learn_cosine_scale=True, ways=WAYS)),
        image_episode),
    "baseline": (lambda: baseline("linear"), image_episode),
    "baseline_plus_plus": (lambda: baseline("cosine"), image_episode),
    "meta_baseline": (lambda: compiled(baseline("cosine").to_protonet()), image_episode),
    "maml_text": (lambda: compiled(tfmeta.MAML(text_model(len(WORDS)), inner_learning_rate=0.5,
                                               eval_inner_steps=2)), text_episode),
    "protonet_text": (lambda: compiled(tfmeta.ProtoNet(text_model(), distance="cosine")),
                      text_episode),
    "maml_sinusoid": (lambda: compiled(tfmeta.MAML(sine_mlp(), inner_steps=2,
                                                   inner_learning_rate=0.05), "mse"),
                      sine_episode),
    "reptile_sinusoid": (lambda: compiled(tfmeta.Reptile(sine_mlp(), inner_steps=3,
                                                         inner_learning_rate=0.05), "mse"),
                         sine_episode),
}


def batch(inputs):
    return {key: tf.constant(value)[None] for key, value in inputs.items()}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("adapt_once")
    records = {}
    for index, (name, (make_learner, make_episode)) in enumerate(LEARNERS.items()):
        learner = make_learner()
        inputs = make_episode(np.random.default_rng(index))
        learner.export(str(root / name))
        records[name] = (learner, inputs, tf.saved_model.load(str(root / name)))
    return records


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_adapt_and_predict_adapted_steps_equal_predict(exported, name):
    learner, inputs, _ = exported[name]
    episode = batch(inputs)
    expected = learner.predict_on_batch(episode)
    state = learner.adapt_step(episode["support_x"], episode["support_y"])
    assert state.dtype == tf.float32 and state.shape.rank == 2 and state.shape[0] == 1
    outputs = learner.predict_adapted_step(state, episode["query_x"])
    np.testing.assert_allclose(outputs.numpy(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_saved_predict_adapted_of_adapt_equals_serving_default(exported, name):
    _, inputs, served = exported[name]
    key = "predictions" if name.endswith("sinusoid") else "logits"
    episode = {k: tf.constant(v) for k, v in inputs.items()}
    expected = served.signatures["serving_default"](**episode)
    adapted = served.signatures["adapt"](support_x=episode["support_x"],
                                         support_y=episode["support_y"])
    assert list(adapted) == ["task_state"] and adapted["task_state"].shape.rank == 1
    outputs = served.signatures["predict_adapted"](task_state=adapted["task_state"],
                                                   query_x=episode["query_x"])
    assert list(outputs) == list(expected) == [key]
    np.testing.assert_allclose(outputs[key].numpy(), expected[key].numpy(), rtol=1e-5,
                               atol=1e-5)


def test_one_state_answers_queries_one_at_a_time(exported):
    """A non-transductive learner answers each query alone as in the batch."""
    _, inputs, served = exported["protonet"]
    state = served.signatures["adapt"](support_x=tf.constant(inputs["support_x"]),
                                       support_y=tf.constant(inputs["support_y"]))["task_state"]
    together = served.signatures["predict_adapted"](
        task_state=state, query_x=tf.constant(inputs["query_x"]))["logits"].numpy()
    alone = [served.signatures["predict_adapted"](task_state=state,
                                                  query_x=tf.constant(query[None]))["logits"]
             for query in inputs["query_x"]]
    np.testing.assert_allclose(np.concatenate(alone), together, rtol=1e-5, atol=1e-5)


def test_the_state_is_what_prediction_needs():
    """ANIL's state holds the head alone; ProtoNet's the N prototypes of D features."""
    anil = LEARNERS["anil"][0]()
    inputs = batch(image_episode(np.random.default_rng(0)))
    head = sum(int(np.prod(v.shape)) for v in anil.model.get_layer("output").trainable_variables)
    assert anil.adapt_step(inputs["support_x"], inputs["support_y"]).shape == (1, head)
    protonet = LEARNERS["protonet"][0]()
    features = protonet.encoder.outputs[0].shape[-1]
    assert protonet.adapt_step(inputs["support_x"], inputs["support_y"]).shape == (
        1, WAYS * features)


def test_non_finite_support_gives_a_nan_state_and_nan_predictions(exported):
    learner, inputs, _ = exported["maml"]
    support_x = np.array(inputs["support_x"])
    support_x[0, 0, 0, 0] = np.nan
    state = learner.adapt_step(support_x[None], inputs["support_y"][None])
    assert np.isnan(state.numpy()).all()
    outputs = learner.predict_adapted_step(state, inputs["query_x"][None])
    assert np.isnan(outputs.numpy()).all()


def test_a_state_of_the_wrong_size_is_refused(exported):
    learner, inputs, _ = exported["maml"]
    with pytest.raises(ValueError, match="Invalid `task_state`.*adapts"):
        learner.predict_adapted_step(tf.zeros([1, 7]), inputs["query_x"][None])
