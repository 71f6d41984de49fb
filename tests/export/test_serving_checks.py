"""Every served signature checks its inputs first and fails in one readable line (issue 25).

Shapes the signature declares (an image SavedModel of 16x16 refuses 20x20), labels out of
range, dtypes, the examples one call may hold (the memory bound) and the task state's length.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfmeta
from tfmeta.export import export_learner
from tfmeta.export.serving_checks import MAX_EXAMPLES_PER_CALL

IMAGE = (16, 16, 1)
WAYS = 3
LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
TF_HEADER = ("Graph execution error:", "", "<stack traces unavailable>")


def image_episode(size=16, ways=WAYS, shots=2, queries=2, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "support_x": tf.constant(rng.normal(size=(ways * shots, size, size, 1)), tf.float32),
        "support_y": tf.constant(np.repeat(np.arange(ways), shots), tf.int32),
        "query_x": tf.constant(rng.normal(size=(ways * queries, size, size, 1)), tf.float32),
    }


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A MAML and a ProtoNet (ways from the labels) on 16x16 images, exported and loaded."""
    root = tmp_path_factory.mktemp("served")
    keras.utils.set_random_seed(0)
    maml = tfmeta.MAML(tfmeta.backbones.mlp(IMAGE, (8,), WAYS), inner_learning_rate=0.1)
    maml.compile(optimizer="adam", loss=LOSS)
    export_learner(maml, root / "maml", max_support=12, max_queries=8)
    protonet = tfmeta.ProtoNet(tfmeta.backbones.mlp(IMAGE, (8,), 4))
    protonet.export(str(root / "protonet"))
    return {name: tf.saved_model.load(str(root / name)).signatures
            for name in ("maml", "protonet")}


def served_error(call) -> str:
    """The one line of ours in the error of a served call (after TensorFlow's header)."""
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        call()
    lines = info.value.message.splitlines()
    ours = [line for line in lines if "Invalid episode:" in line or "Invalid task_state:" in line]
    assert len(ours) == 1, info.value.message
    header = lines[: lines.index(ours[0])]
    # Python's TensorFlow puts this header before any error raised inside a graph; the
    # SavedModel's own message (what TF Serving or the C API report) starts with our line.
    assert all(line in TF_HEADER or line.startswith("Detected at node") for line in header)
    assert ours[0].startswith("assertion failed: [Invalid")
    return ours[0]


@pytest.mark.parametrize("size", [20, 8])
def test_images_of_another_size_are_refused_by_every_signature(served, size):
    signatures = served["maml"]
    bad = image_episode(size=size)
    good = image_episode()
    message = served_error(lambda: signatures["serving_default"](**bad))
    assert "`support_x` must be examples of shape [?, 16, 16, 1]" in message
    assert f"Received: shape] [6 {size} {size} 1]" in message
    message = served_error(lambda: signatures["adapt"](support_x=bad["support_x"],
                                                       support_y=bad["support_y"]))
    assert "`support_x` must be examples of shape [?, 16, 16, 1]" in message
    state = signatures["adapt"](support_x=good["support_x"],
                                support_y=good["support_y"])["task_state"]
    message = served_error(lambda: signatures["predict_adapted"](task_state=state,
                                                                 query_x=bad["query_x"]))
    assert "`query_x` must be examples of shape [?, 16, 16, 1]" in message


def test_a_wrong_rank_is_refused_before_any_kernel_runs(served):
    inputs = image_episode()
    inputs["query_x"] = inputs["query_x"][..., 0]  # [Q, 16, 16]: no channel axis
    message = served_error(lambda: served["maml"]["serving_default"](**inputs))
    assert "`query_x` must be examples of shape [?, 16, 16, 1]" in message
    assert "Received: shape] [6 16 16]" in message
    labels = dict(image_episode())
    labels["support_y"] = labels["support_y"][:, None]
    message = served_error(lambda: served["maml"]["serving_default"](**labels))
    assert "`support_y` must be class labels of shape [?]" in message


def test_out_of_range_labels_say_so(served):
    inputs = image_episode()
    inputs["support_y"] = tf.constant([0, 1, 2, 3, 0, 1])
    message = served_error(lambda: served["maml"]["serving_default"](**inputs))
    assert r"`support_y` labels must be in 0..2 (the learner has 3 ways)" in message
    message = served_error(lambda: served["maml"]["adapt"](support_x=inputs["support_x"],
                                                           support_y=inputs["support_y"]))
    assert "labels must be in 0..2" in message


def test_a_label_beyond_the_classes_of_an_episode_names_n(served):
    """ProtoNet reads N from the labels: a stray label 7 means 8 classes, most of them empty."""
    inputs = image_episode()
    inputs["support_y"] = tf.constant([0, 0, 1, 1, 2, 7])
    for call in (lambda: served["protonet"]["serving_default"](**inputs),
                 lambda: served["protonet"]["adapt"](support_x=inputs["support_x"],
                                                     support_y=inputs["support_y"])):
        message = served_error(call)
        assert "every class 0..N-1 needs at least one support example" in message
        assert "N is max(support_y) + 1" in message and "Received: N =] [8]" in message


def test_a_wrong_dtype_is_refused_in_one_line_before_the_call_runs(served):
    inputs = image_episode()
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        served["maml"]["serving_default"](support_x=inputs["support_x"],
                                          support_y=tf.cast(inputs["support_y"], tf.int64),
                                          query_x=inputs["query_x"])
    assert len(str(info.value).splitlines()) == 1
    assert "expected to be a int32 tensor but is a int64 tensor" in str(info.value)


def test_more_examples_than_a_call_takes_are_refused_at_once(served):
    signatures = served["maml"]
    good = image_episode()
    state = signatures["adapt"](support_x=good["support_x"],
                                support_y=good["support_y"])["task_state"]
    many = image_episode(queries=3)["query_x"]  # 9 queries, max_queries=8
    message = served_error(lambda: signatures["predict_adapted"](task_state=state,
                                                                 query_x=many))
    assert "`query_x` holds more than 8 examples" in message and "max_queries" in message
    assert signatures["predict_adapted"](task_state=state,
                                         query_x=many[:8])["logits"].shape == (8, WAYS)
    support = image_episode(shots=5)  # 15 support examples, max_support=12
    message = served_error(lambda: signatures["serving_default"](**support))
    assert "`support_x` holds more than 12 examples" in message


def test_a_text_saved_model_refuses_a_flood_of_sentences_without_working_on_it(tmp_path):
    """200,000 sentences grew a served text model to 21 GB: now one line, before any work."""
    sentences = [f"{word} {i}" for word in ("alarm", "music", "weather") for i in range(4)]
    model = tfmeta.backbones.bag_of_ngrams(sentences, embedding_dim=4, num_classes=WAYS, seed=0)
    learner = tfmeta.MAML(model)
    learner.compile(optimizer="adam", loss=LOSS)
    learner.export(str(tmp_path / "text"))
    signature = tf.saved_model.load(str(tmp_path / "text")).signatures["serving_default"]
    flood = tf.fill([MAX_EXAMPLES_PER_CALL + 1], "alarm please")
    message = served_error(lambda: signature(
        support_x=tf.constant(sentences[:3]), support_y=tf.constant([0, 1, 2]), query_x=flood))
    assert f"`query_x` holds more than {MAX_EXAMPLES_PER_CALL} examples" in message


def test_a_task_state_of_the_wrong_length_is_refused(served):
    good = image_episode()
    state = served["maml"]["adapt"](support_x=good["support_x"],
                                    support_y=good["support_y"])["task_state"]
    message = served_error(lambda: served["maml"]["predict_adapted"](
        task_state=state[:-1], query_x=good["query_x"]))
    assert f"Invalid task_state: expected a float32 vector of shape [{state.shape[0]}]" in message


@pytest.mark.parametrize("value", [0, -1, 2.5, True])
def test_bad_bounds_are_refused_at_export(tmp_path, value):
    learner = tfmeta.ProtoNet(tfmeta.backbones.mlp(IMAGE, (8,), 4))
    with pytest.raises(ValueError, match="`max_queries`"):
        export_learner(learner, tmp_path / "m", max_queries=value)
