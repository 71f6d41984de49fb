"""`.keras` saving and get_config/from_config of every learner, with its compiled state."""

import copy
import json

import keras
import numpy as np
import pytest

import tfmeta

FEATURES = 6
WAYS = 3


def episodes(shape=(FEATURES,), tasks=2, shots=2, queries=2, seed=0):
    rng = np.random.default_rng(seed)
    support_y = np.stack([rng.permutation(np.repeat(np.arange(WAYS), shots))
                          for _ in range(tasks)])
    query_y = np.stack([rng.permutation(np.repeat(np.arange(WAYS), queries))
                        for _ in range(tasks)])
    inputs = {
        "support_x": rng.normal(size=(tasks, WAYS * shots, *shape)).astype("float32"),
        "support_y": support_y.astype("int32"),
        "query_x": rng.normal(size=(tasks, WAYS * queries, *shape)).astype("float32"),
    }
    return inputs, query_y.astype("int32")


def classifier():
    return tfmeta.backbones.mlp((FEATURES,), (8,), WAYS)


def encoder():
    return tfmeta.backbones.mlp((FEATURES,), (8,), 4)


LEARNERS = {
    "maml": lambda: tfmeta.MAML(classifier(), inner_steps=1, eval_inner_steps=2),
    "maml_first_order_adapt_layers": lambda: tfmeta.MAML(
        classifier(), first_order=True, adapt_layers=["output"], transductive=False),
    "maml_per_step": lambda: tfmeta.MAML(classifier(), inner_steps=2,
                                         learn_inner_learning_rate="per_step"),
    "maml_per_parameter": lambda: tfmeta.MAML(classifier(),
                                              learn_inner_learning_rate="per_parameter"),
    "fo_proto_maml": lambda: tfmeta.MAML(classifier(), first_order=True, head_init="prototypes"),
    "reptile": lambda: tfmeta.Reptile(classifier(), inner_steps=2, inner_learning_rate=0.05),
    "protonet": lambda: tfmeta.ProtoNet(encoder()),
    "protonet_cosine": lambda: tfmeta.ProtoNet(encoder(), distance="cosine", ways=WAYS,
                                               cosine_scale=5.0, learn_cosine_scale=True),
    "protonet_conv4": lambda: tfmeta.ProtoNet(tfmeta.backbones.conv4((16, 16, 1), filters=4)),
}


def make(name):
    keras.utils.set_random_seed(0)
    learner = LEARNERS[name]()
    learner.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return learner


def data_for(name, seed=0):
    return episodes(shape=(16, 16, 1) if name.endswith("conv4") else (FEATURES,), seed=seed)


def as_json(config):
    """The config as saved (tuples and lists are the same thing in a .keras file)."""
    return json.loads(json.dumps(config))


def assert_same_weights(a, b):
    assert [v.path for v in a.weights] == [v.path for v in b.weights]
    for x, y in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_keras_file_round_trip(name, tmp_path):
    learner = make(name)
    inputs, query_y = data_for(name)
    learner.train_on_batch(inputs, query_y)  # optimizer state and moving statistics
    expected = learner.predict_on_batch(inputs)
    path = tmp_path / f"{name}.keras"
    learner.save(path)

    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(learner)
    assert as_json(loaded.get_config()) == as_json(learner.get_config())
    assert_same_weights(loaded, learner)
    np.testing.assert_allclose(loaded.predict_on_batch(inputs), expected, rtol=1e-6, atol=1e-6)

    # The compiled state: loss, episodic metrics and the optimizer with its slots.
    assert loaded.compiled
    assert as_json(loaded.optimizer.get_config()) == as_json(learner.optimizer.get_config())
    assert int(loaded.optimizer.iterations) == 1
    for saved, restored in zip(learner.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(saved), np.asarray(restored))
    logs = loaded.test_on_batch(inputs, query_y, return_dict=True)
    assert {"loss", "accuracy", "accuracy_ci95"} <= set(logs)


@pytest.mark.parametrize("name", ["maml_per_step", "protonet_cosine"])
def test_training_goes_on_identically_after_loading(name, tmp_path):
    learner = make(name)
    inputs, query_y = data_for(name)
    learner.train_on_batch(inputs, query_y)
    learner.save(tmp_path / "learner.keras")
    loaded = keras.saving.load_model(tmp_path / "learner.keras")
    more_inputs, more_y = data_for(name, seed=1)
    learner.train_on_batch(more_inputs, more_y)
    loaded.train_on_batch(more_inputs, more_y)
    for x, y in zip(loaded.get_weights(), learner.get_weights()):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_get_config_from_config_round_trip(name):
    learner = make(name)
    config = learner.get_config()
    # A deep copy: Keras' deserialization consumes nested configs (Functional.from_config too).
    clone = type(learner).from_config(copy.deepcopy(config))
    assert as_json(clone.get_config()) == as_json(config)
    assert [tuple(v.shape) for v in clone.weights] == [tuple(v.shape) for v in learner.weights]
    clone.set_weights(learner.get_weights())
    clone.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    inputs, _ = data_for(name)
    np.testing.assert_allclose(clone.predict_on_batch(inputs), learner.predict_on_batch(inputs),
                               rtol=1e-6, atol=1e-6)


def test_config_keeps_every_constructor_argument():
    config = make("maml_first_order_adapt_layers").get_config()
    assert config["first_order"] is True
    assert config["adapt_layers"] == ["output"]
    assert config["transductive"] is False
    config = make("protonet_cosine").get_config()
    assert (config["distance"], config["ways"], config["cosine_scale"],
            config["learn_cosine_scale"]) == ("cosine", WAYS, 5.0, True)
