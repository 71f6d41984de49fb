"""One check of an episode's labels and sizes for fit, evaluate, predict and the SavedModel
(issue 17, item 7): one-line `ValueError`s naming the argument."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from episode_fixtures import classification_episodes, regression_episodes

import tfmeta

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def protonet(ways=None):
    learner = tfmeta.ProtoNet(tfmeta.backbones.mlp((4,), (8,), 8), ways=ways)
    learner.compile("sgd", LOSS, metrics=["accuracy"])
    return learner


def maml():
    learner = tfmeta.MAML(tfmeta.backbones.mlp((4,), (8,), 3))
    learner.compile("sgd", LOSS, metrics=["accuracy"])
    return learner


def episode():
    return classification_episodes(tasks=2, ways=3, shots=2, queries=2, shape=(4,))


CALLS = {
    "fit": lambda learner, x, y: learner.fit(x, y, verbose=0),
    "evaluate": lambda learner, x, y: learner.evaluate(x, y, verbose=0),
    "predict": lambda learner, x, y: learner.predict(x, verbose=0),
    "train_on_batch": lambda learner, x, y: learner.train_on_batch(x, y),
}


def one_line_value_error(call, *fragments):
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


@pytest.mark.parametrize("make", [maml, lambda: protonet(ways=3)], ids=["maml", "protonet"])
@pytest.mark.parametrize("call", CALLS, ids=list(CALLS))
def test_out_of_range_support_labels(make, call):
    x, y = episode()
    x["support_y"] = x["support_y"] + 5
    one_line_value_error(lambda: CALLS[call](make(), x, y), "`support_y` labels must be in 0..2",
                         "from 5 to 7")


@pytest.mark.parametrize("make", [maml, protonet], ids=["maml", "protonet"])
def test_out_of_range_query_labels(make):
    x, y = episode()
    one_line_value_error(lambda: make().fit(x, y + 3, verbose=0), "`query_y` labels")


@pytest.mark.parametrize("make", [maml, protonet], ids=["maml", "protonet"])
@pytest.mark.parametrize("call", ["fit", "predict"])
def test_fractional_float_labels(make, call):
    x, y = episode()
    x["support_y"] = x["support_y"].astype("float32")
    x["support_y"][0, 0] += 0.5
    one_line_value_error(lambda: CALLS[call](make(), x, y), "whole numbers", "a label of")


@pytest.mark.parametrize("make", [maml, protonet], ids=["maml", "protonet"])
@pytest.mark.parametrize("empty", ["support", "query"])
def test_empty_support_or_query_sets(make, empty):
    x, y = episode()
    if empty == "support":
        x["support_x"], x["support_y"] = x["support_x"][:, :0], x["support_y"][:, :0]
    else:
        x["query_x"], y = x["query_x"][:, :0], y[:, :0]
    for call in ("fit", "evaluate", "predict"):
        one_line_value_error(lambda c=call: CALLS[c](make(), x, y), f"the {empty} set is empty")


def test_empty_support_set_in_a_dataset_with_dynamic_shapes():
    x, y = episode()
    x["support_x"], x["support_y"] = x["support_x"][:, :0], x["support_y"][:, :0]
    dataset = tf.data.Dataset.from_tensors((x, y)).map(lambda a, b: (a, b)).unbatch().batch(2)
    one_line_value_error(lambda: maml().evaluate(dataset, verbose=0), "the support set is empty")


def test_fit_without_targets():
    x, _ = episode()
    one_line_value_error(lambda: protonet().fit(x, None, verbose=0), "`y`", "Received: y=None")


def test_regression_targets_are_not_labels():
    learner = tfmeta.MAML(tfmeta.backbones.mlp((2,), (4,), 1))
    learner.compile("sgd", "mse")
    x, y = regression_episodes(dtype="float32")
    learner.fit(x, y, verbose=0)  # fractional float targets are fine


def test_the_saved_model_refuses_fractional_labels_and_empty_sets(tmp_path):
    learner = protonet(ways=3)
    learner.export(str(tmp_path / "export"), support_y_spec=tf.TensorSpec([None], tf.float32))
    serve = tf.saved_model.load(str(tmp_path / "export")).signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="whole numbers"):
        serve(support_x=tf.zeros([3, 4]), support_y=tf.constant([0.0, 1.5, 2.0]),
              query_x=tf.zeros([1, 4]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="the query set is empty"):
        serve(support_x=tf.zeros([3, 4]), support_y=tf.constant([0.0, 1.0, 2.0]),
              query_x=tf.zeros([0, 4]))
    np.testing.assert_equal(
        serve(support_x=tf.eye(3, 4), support_y=tf.constant([0.0, 1.0, 2.0]),
              query_x=tf.eye(3, 4))["logits"].numpy().argmax(-1), [0, 1, 2])
