"""Every learner on raw-text episodes: fit, evaluate, predict, .keras, SavedModel serving."""

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

WAYS, SHOTS, QUERIES, TASKS = 3, 2, 2, 2
WORDS = ("alarm", "music", "weather", "card", "rate", "transfer")
FILLERS = ("please", "now", "today", "for me", "again", "soon")
LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
SAVED_MODEL_CLI = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")


def class_sentences():
    """Six classes of six sentences; each class has its own word."""
    return [np.array([f"{word} {filler} {i}" for i, filler in enumerate(FILLERS)])
            for word in WORDS]


def text_episodes(seed=0):
    return tfmeta.data.episodes(class_sentences(), ways=WAYS, shots=SHOTS, queries=QUERIES,
                                meta_batch_size=TASKS, seed=seed)


def make_learner(kind):
    keras.utils.set_random_seed(0)
    sentences = [s for c in class_sentences() for s in c]
    if kind == "protonet":
        encoder = tfmeta.backbones.bag_of_ngrams(sentences, embedding_dim=8, seed=0)
        learner = tfmeta.ProtoNet(encoder, distance="cosine", learn_cosine_scale=True)
        optimizer = keras.optimizers.Adam(1e-2)
    else:
        model = tfmeta.backbones.bag_of_ngrams(sentences, embedding_dim=8, num_classes=WAYS,
                                               seed=0)
        if kind == "reptile":
            learner = tfmeta.Reptile(model, inner_steps=2, inner_learning_rate=0.5)
            optimizer = keras.optimizers.SGD(1.0)
        else:
            learner = tfmeta.MAML(model, inner_steps=1, inner_learning_rate=0.5,
                                  first_order=kind == "fomaml", eval_inner_steps=2)
            optimizer = keras.optimizers.Adam(1e-2)
    learner.compile(optimizer=optimizer, loss=LOSS, metrics=["accuracy"])
    return learner


def episode_batch(seed=3):
    inputs, query_y = next(iter(text_episodes(seed)))
    return inputs, query_y


LEARNERS = ("protonet", "maml", "fomaml", "reptile")


@pytest.mark.parametrize("kind", LEARNERS)
def test_fit_evaluate_predict_save_and_export_on_text(kind, tmp_path):
    learner = make_learner(kind)
    history = learner.fit(text_episodes(), steps_per_epoch=3, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    results = learner.evaluate(text_episodes(1), steps=2, verbose=0, return_dict=True)
    assert 0.0 <= results["accuracy"] <= 1.0
    inputs, _ = episode_batch()
    assert inputs["support_x"].dtype == tf.string
    logits = learner.predict(inputs, verbose=0)
    assert logits.shape == (TASKS, WAYS * QUERIES, WAYS) and np.isfinite(logits).all()

    path = tmp_path / "learner.keras"
    learner.save(path)
    reloaded = keras.models.load_model(path)
    np.testing.assert_allclose(reloaded.predict(inputs, verbose=0), logits, atol=1e-5)

    learner.export(tmp_path / "served")
    serve = tf.saved_model.load(str(tmp_path / "served")).signatures["serving_default"]
    for task in range(TASKS):
        served = serve(support_x=inputs["support_x"][task], support_y=inputs["support_y"][task],
                       query_x=inputs["query_x"][task])["logits"]
        np.testing.assert_allclose(served.numpy(), logits[task], atol=1e-5)


@pytest.mark.parametrize("kind", ["protonet", "maml"])
def test_a_fresh_process_without_tfmeta_serves_the_same_logits(kind, tmp_path):
    learner = make_learner(kind)
    learner.fit(text_episodes(), steps_per_epoch=2, epochs=1, verbose=0)
    inputs, _ = episode_batch()
    expected = learner.predict(inputs, verbose=0)[0]
    learner.export(tmp_path / "served")
    episode = {
        "support_x": [s.decode() for s in inputs["support_x"][0].numpy()],
        "support_y": inputs["support_y"][0].numpy().tolist(),
        "query_x": [s.decode() for s in inputs["query_x"][0].numpy()],
    }
    script = textwrap.dedent("""
        import json, sys
        sys.modules["tfmeta"] = None  # Any import of tfmeta would fail.
        import tensorflow as tf
        episode = json.loads(sys.argv[2])
        serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
        logits = serve(support_x=tf.constant(episode["support_x"]),
                       support_y=tf.constant(episode["support_y"], tf.int32),
                       query_x=tf.constant(episode["query_x"]))["logits"]
        print(json.dumps(logits.numpy().tolist()))
    """)
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "served"), json.dumps(episode)],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ""},
    )
    assert done.returncode == 0, done.stderr
    served = np.array(json.loads(done.stdout.strip().splitlines()[-1]))
    np.testing.assert_allclose(served, expected, atol=1e-5)


def test_saved_model_cli_runs_on_sentences(tmp_path):
    learner = make_learner("protonet")
    learner.export(tmp_path / "served")
    inputs = ('support_x=["alarm please", "music now", "weather today"];support_y=[0, 1, 2];'
              'query_x=["alarm for me", "weather again"]')
    done = subprocess.run(
        [SAVED_MODEL_CLI, "run", "--dir", str(tmp_path / "served"), "--tag_set", "serve",
         "--signature_def", "serving_default", "--input_exprs", inputs],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert done.returncode == 0, done.stderr
    assert "Result for output key logits" in done.stdout
    rows = done.stdout.split("logits:", 1)[1].replace("[", " ").replace("]", " ").split()
    logits = np.array([float(v) for v in rows]).reshape(2, 3)
    expected = learner.predict({
        "support_x": tf.constant([["alarm please", "music now", "weather today"]]),
        "support_y": tf.constant([[0, 1, 2]]),
        "query_x": tf.constant([["alarm for me", "weather again"]])}, verbose=0)[0]
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-5)


def test_the_served_signature_takes_strings(tmp_path):
    learner = make_learner("protonet")
    learner.export(tmp_path / "served")
    signature = tf.saved_model.load(str(tmp_path / "served")).signatures["serving_default"]
    specs = signature.structured_input_signature[1]
    assert specs["support_x"].dtype == tf.string and specs["support_x"].shape.as_list() == [None]
    assert specs["query_x"].dtype == tf.string and specs["support_y"].dtype == tf.int32
    served = tf.saved_model.load(str(tmp_path / "served"))
    sentences = tf.constant(["alarm please", "card now"])
    embeddings = served.signatures["embed"](examples=sentences)["embeddings"]
    np.testing.assert_allclose(embeddings.numpy(), learner.embed(sentences).numpy(), atol=1e-6)


# === Bad input: numbers to a text model, text to a model of numbers ===


def test_numbers_given_to_a_text_model():
    learner = make_learner("protonet")
    inputs = {"support_x": np.zeros([1, 3], "float32"), "support_y": np.array([[0, 1, 2]]),
              "query_x": np.zeros([1, 2], "float32")}
    with pytest.raises(ValueError, match=r"support_x.*takes raw text \(tf\.string\).*float32"):
        learner.predict(inputs, verbose=0)
    maml = make_learner("maml")
    with pytest.raises(ValueError, match=r"takes raw text"):
        maml.predict(inputs, verbose=0)


def test_text_given_to_a_model_of_numbers():
    learner = tfmeta.ProtoNet(tfmeta.backbones.mlp((4,), (8,), 8))
    learner.compile(optimizer="adam", loss=LOSS)
    inputs, query_y = episode_batch()
    with pytest.raises(ValueError, match=r"support_x.*takes numbers \(float32\).*string"):
        learner.predict(inputs, verbose=0)
    with pytest.raises(ValueError, match=r"takes numbers"):
        learner.fit(text_episodes(), steps_per_epoch=1, verbose=0)


def test_examples_without_the_model_example_axes():
    learner = tfmeta.ProtoNet(tfmeta.backbones.mlp((4,), (8,), 8))
    inputs = {"support_x": np.zeros([1, 3], "float32"), "support_y": np.array([[0, 1, 2]]),
              "query_x": np.zeros([1, 2], "float32")}
    with pytest.raises(ValueError, match=r"support_x.*\[tasks, examples, \*example_shape\].*"
                                         r"\(4,\) \(rank 3\)"):
        learner.predict(inputs, verbose=0)
