"""SavedModel export: the one-episode serving signature, reloaded in a fresh process."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfmeta
from tfmeta.export import export_learner

SAVED_MODEL_CLI = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
FEATURES = 8
WAYS = 3
IMAGE = (28, 28, 1)
CLASSIFICATION_LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def episode(shape, ways=WAYS, shots=2, queries=2, seed=0):
    """One classification episode (no meta-batch dimension), support labels shuffled."""
    rng = np.random.default_rng(seed)
    return {
        "support_x": rng.normal(size=(ways * shots, *shape)).astype("float32"),
        "support_y": rng.permutation(np.repeat(np.arange(ways), shots)).astype("int32"),
        "query_x": rng.normal(size=(ways * queries, *shape)).astype("float32"),
    }


def regression_episode(shots=5, queries=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-5, 5, size=(shots + queries, 1)).astype("float32")
    y = (2.0 * np.sin(x - 0.5)).astype("float32")
    return {"support_x": x[:shots], "support_y": y[:shots], "query_x": x[shots:]}


def batch_of_one(inputs):
    return {key: value[None] for key, value in inputs.items()}


def classifier(seed=0):
    keras.utils.set_random_seed(seed)
    return tfmeta.backbones.mlp((FEATURES,), (16,), WAYS)


def make_learners():
    """name -> (learner, episode): trained or not, built or not, the three learners."""
    maml = tfmeta.MAML(classifier(), inner_steps=1, eval_inner_steps=3, inner_learning_rate=0.1,
                       learn_inner_learning_rate="per_step")
    maml.compile(optimizer=keras.optimizers.Adam(1e-2), loss=CLASSIFICATION_LOSS)
    train = episode((FEATURES,), seed=1)
    maml.train_on_batch(batch_of_one({k: train[k] for k in ("support_x", "support_y",
                                                            "query_x")}),
                        np.tile(np.arange(WAYS, dtype="int32"), 2)[None])
    reptile = tfmeta.Reptile(classifier(1), inner_steps=2, inner_learning_rate=0.1)
    reptile.compile(optimizer=keras.optimizers.SGD(1.0), loss=CLASSIFICATION_LOSS)
    # Reptile's code: Adam whose moments carry across tasks; serving adapts from them.
    carried = tfmeta.Reptile(classifier(4), inner_steps=2, carry_inner_optimizer_state=True,
                             inner_optimizer=keras.optimizers.Adam(0.05, beta_1=0.0))
    carried.compile(optimizer=keras.optimizers.SGD(1.0), loss=CLASSIFICATION_LOSS)
    carried.train_on_batch(batch_of_one({k: train[k] for k in ("support_x", "support_y",
                                                               "query_x")}),
                           np.tile(np.arange(WAYS, dtype="int32"), 2)[None])
    assert float(carried.carried_inner_state.steps.numpy()) == 2.0
    keras.utils.set_random_seed(2)
    protonet = tfmeta.ProtoNet(tfmeta.backbones.conv4(IMAGE, filters=4))  # never called
    keras.utils.set_random_seed(3)
    regressor = tfmeta.MAML(tfmeta.backbones.mlp(), inner_steps=2, inner_learning_rate=0.05)
    regressor.compile(optimizer="adam", loss="mse")
    return {
        "maml": (maml, episode((FEATURES,))),
        "reptile": (reptile, episode((FEATURES,), shots=3, queries=1)),
        "reptile_carried_adam": (carried, episode((FEATURES,), shots=2, queries=2, seed=5)),
        "protonet": (protonet, episode(IMAGE, ways=4, shots=1, queries=3)),
        "maml_regression": (regressor, regression_episode()),
    }


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Exports every learner and records its in-memory predictions on an episode."""
    root = tmp_path_factory.mktemp("exported")
    records = {}
    for name, (learner, inputs) in make_learners().items():
        path = str(root / name)
        learner.export(path)
        expected = learner.predict_on_batch(batch_of_one(inputs))[0]
        np.savez(root / f"{name}_episode.npz", **inputs)
        records[name] = {"learner": learner, "path": path, "inputs": inputs,
                         "expected": np.asarray(expected)}
    return root, records


def run(command, **kwargs):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120,
                            **kwargs)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def reloaded_in_fresh_process(exported):
    """Serving outputs of every export, computed by a new Python process."""
    root, records = exported
    script = textwrap.dedent(
        """
        import json, sys
        import numpy as np
        import tensorflow as tf

        root, names = sys.argv[1], sys.argv[2:]
        outputs = {}
        for name in names:
            serving = tf.saved_model.load(f"{root}/{name}").signatures["serving_default"]
            inputs = dict(np.load(f"{root}/{name}_episode.npz"))
            result = serving(**{k: tf.constant(v) for k, v in inputs.items()})
            outputs[name] = {k: v.numpy().tolist() for k, v in result.items()}
        print(json.dumps(outputs))
        """
    )
    result = run([sys.executable, "-c", script, str(root), *records])
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", ["maml", "reptile", "reptile_carried_adam", "protonet",
                                  "maml_regression"])
def test_fresh_process_reload_matches_in_memory_learner(exported, reloaded_in_fresh_process,
                                                        name):
    _, records = exported
    key = "predictions" if name == "maml_regression" else "logits"
    assert list(reloaded_in_fresh_process[name]) == [key]
    served = np.array(reloaded_in_fresh_process[name][key], "float32")
    np.testing.assert_allclose(served, records[name]["expected"], rtol=1e-4, atol=1e-5)


def test_carried_inner_state_matters_to_the_served_predictions(exported):
    """The exported Reptile adapts from its carried Adam state: from fresh state it differs."""
    _, records = exported
    record = records["reptile_carried_adam"]
    learner = record["learner"]
    variables = learner.carried_inner_state.flatten(learner.carried_inner_state.variables)
    saved = [v.numpy() for v in variables + [learner.carried_inner_state.steps]]
    try:
        for variable in variables + [learner.carried_inner_state.steps]:
            variable.assign(tf.zeros_like(variable))
        fresh = learner.predict_on_batch(batch_of_one(record["inputs"]))[0]
    finally:
        for variable, value in zip(variables + [learner.carried_inner_state.steps], saved):
            variable.assign(value)
    assert np.abs(np.asarray(fresh) - record["expected"]).max() > 1e-3


def test_signature_takes_one_episode_with_dynamic_sizes(exported):
    _, records = exported
    serving = tf.saved_model.load(records["protonet"]["path"])
    signature = serving.signatures["serving_default"]
    _, specs = signature.structured_input_signature
    assert specs["support_x"].shape.as_list() == [None, *IMAGE]
    assert specs["support_y"].shape.as_list() == [None]
    assert specs["support_y"].dtype == tf.int32
    assert specs["query_x"].shape.as_list() == [None, *IMAGE]
    # Another number of ways, shots and queries than at export: N = max(label) + 1.
    inputs = episode(IMAGE, ways=2, shots=3, queries=5, seed=4)
    logits = signature(**{k: tf.constant(v) for k, v in inputs.items()})["logits"]
    assert logits.shape == (10, 2)
    expected = records["protonet"]["learner"].predict_on_batch(batch_of_one(inputs))[0]
    np.testing.assert_allclose(logits.numpy(), expected, rtol=1e-4, atol=1e-4)


def test_gradient_learner_head_fixes_the_ways(exported):
    _, records = exported
    signature = tf.saved_model.load(records["maml"]["path"]).signatures["serving_default"]
    assert signature.structured_outputs["logits"].shape.as_list() == [None, WAYS]
    inputs = episode((FEATURES,), ways=2, shots=1, queries=4)
    assert signature(**{k: tf.constant(v) for k, v in inputs.items()})["logits"].shape == (8, 3)


def test_regression_signature_takes_float_targets(exported):
    _, records = exported
    signature = tf.saved_model.load(records["maml_regression"]["path"]).signatures[
        "serving_default"]
    _, specs = signature.structured_input_signature
    assert specs["support_y"].dtype == tf.float32
    assert specs["support_y"].shape.as_list() == [None, 1]


def test_protonet_embed_signature(exported):
    _, records = exported
    serving = tf.saved_model.load(records["protonet"]["path"])
    examples = records["protonet"]["inputs"]["query_x"]
    embeddings = serving.signatures["embed"](examples=tf.constant(examples))["embeddings"]
    expected = records["protonet"]["learner"].embed(examples)
    assert embeddings.shape == (len(examples), 4)
    np.testing.assert_allclose(embeddings.numpy(), expected.numpy(), rtol=1e-4, atol=1e-5)


def test_reloaded_object_exposes_the_learner_variables(exported):
    _, records = exported
    serving = tf.saved_model.load(records["maml"]["path"])
    learner = records["maml"]["learner"]
    assert len(serving.trainable_variables) == len(learner.trainable_variables)


def test_mismatched_support_sizes_fail_at_serving_time(exported):
    _, records = exported
    inputs = records["maml"]["inputs"]
    signature = tf.saved_model.load(records["maml"]["path"]).signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="`support_x` and `support_y` must hold the same number"):
        signature(support_x=tf.constant(inputs["support_x"]),
                  support_y=tf.constant(inputs["support_y"][:-1]),
                  query_x=tf.constant(inputs["query_x"]))


def test_labels_outside_the_head_fail_at_serving_time(exported):
    _, records = exported
    inputs = dict(records["reptile"]["inputs"])
    inputs["support_y"] = inputs["support_y"] + 1  # labels 1..3 for a 3-way head
    signature = tf.saved_model.load(records["reptile"]["path"]).signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"labels must be in 0\.\.2"):
        signature(**{k: tf.constant(v) for k, v in inputs.items()})


def test_protonet_class_without_support_fails_at_serving_time(exported):
    _, records = exported
    inputs = dict(records["protonet"]["inputs"])
    inputs["support_y"] = np.array([0, 0, 3, 3], "int32")  # classes 1 and 2 have no example
    signature = tf.saved_model.load(records["protonet"]["path"]).signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="every class 0..N-1 needs"):
        signature(**{k: tf.constant(v) for k, v in inputs.items()})


def test_saved_model_cli_show(exported):
    _, records = exported
    result = run([SAVED_MODEL_CLI, "show", "--dir", records["protonet"]["path"], "--all"])
    text = result.stdout
    assert "signature_def['serving_default']" in text
    assert "signature_def['embed']" in text
    for line in ("inputs['support_x']", "inputs['support_y']", "inputs['query_x']",
                 "outputs['logits']", "shape: (-1, 28, 28, 1)", "dtype: DT_INT32"):
        assert line in text


def test_saved_model_cli_run(exported, tmp_path):
    _, records = exported
    inputs = records["maml"]["inputs"]
    exprs = ";".join(f"{key}={value.tolist()!r}" for key, value in inputs.items())
    run([SAVED_MODEL_CLI, "run", "--dir", records["maml"]["path"], "--tag_set", "serve",
         "--signature_def", "serving_default", "--input_exprs", exprs,
         "--outdir", str(tmp_path)])
    served = np.load(tmp_path / "logits.npy")
    np.testing.assert_allclose(served, records["maml"]["expected"], rtol=1e-4, atol=1e-5)


# === Bad input at export time ===


def test_non_empty_folder_is_refused_and_overwrite_replaces_a_saved_model(exported, tmp_path):
    _, records = exported
    learner = records["reptile"]["learner"]
    target = tmp_path / "model"
    export_learner(learner, target)
    with pytest.raises(ValueError, match=f"filepath='{target}'.*not empty"):
        learner.export(str(target))
    learner.export(str(target), overwrite=True)
    assert (target / "saved_model.pb").exists()
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="only replaces a SavedModel"):
        learner.export(str(other), overwrite=True)
    assert (other / "keep.txt").exists()
    with pytest.raises(ValueError, match="existing file"):
        learner.export(str(other / "keep.txt"))


def test_uncompiled_gradient_learner_is_refused(tmp_path):
    learner = tfmeta.MAML(classifier())
    with pytest.raises(ValueError, match="must be compiled before export"):
        learner.export(str(tmp_path / "model"))
    assert not (tmp_path / "model").exists()


def test_not_a_learner_is_refused(tmp_path):
    with pytest.raises(ValueError, match="argument `learner`"):
        export_learner(classifier(), str(tmp_path / "model"))


class SubclassedEncoder(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(4)

    def call(self, x):
        return self.dense(x)


def test_encoder_without_input_shape_needs_example_shape(tmp_path):
    encoder = SubclassedEncoder()
    encoder(np.zeros((1, FEATURES), "float32"))
    learner = tfmeta.ProtoNet(encoder)
    with pytest.raises(ValueError, match="no known input shape.*example_shape"):
        learner.export(str(tmp_path / "model"))
    learner.export(str(tmp_path / "model"), example_shape=(FEATURES,))
    signature = tf.saved_model.load(str(tmp_path / "model")).signatures["serving_default"]
    inputs = episode((FEATURES,))
    logits = signature(**{k: tf.constant(v) for k, v in inputs.items()})["logits"]
    expected = learner.predict_on_batch(batch_of_one(inputs))[0]
    np.testing.assert_allclose(logits.numpy(), expected, rtol=1e-4, atol=1e-5)


def test_bad_support_y_spec_is_refused(exported, tmp_path):
    _, records = exported
    with pytest.raises(ValueError, match="support_y_spec"):
        records["maml"]["learner"].export(str(tmp_path / "m"),
                                          support_y_spec=tf.TensorSpec([5], tf.int32))
