"""Constructor values: one-line errors naming the argument, NumPy scalars accepted (item 8)."""

import keras
import numpy as np
import pytest

import tfmeta


@pytest.fixture(scope="module")
def mlp():
    return tfmeta.backbones.mlp((4,), (8,), 3)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"inner_learning_rate": float("nan")}, "inner_learning_rate"),
        ({"inner_learning_rate": float("inf")}, "inner_learning_rate"),
        ({"inner_learning_rate": True}, "inner_learning_rate"),
        ({"inner_learning_rate": "0.1"}, "inner_learning_rate"),
        ({"inner_steps": True}, "inner_steps"),
        ({"inner_steps": 1.5}, "inner_steps"),
        ({"first_order": "no"}, "first_order"),
        ({"transductive": "no"}, "transductive"),
        ({"recompute_inner_steps": 1}, "recompute_inner_steps"),
        ({"adapt_layers": "output"}, "adapt_layers"),
        ({"adapt_layers": [3]}, "adapt_layers"),
    ],
)
def test_bad_maml_arguments_are_one_line(mlp, kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`") as info:
        tfmeta.MAML(mlp, **kwargs)
    assert "\n" not in str(info.value) and "Received" in str(info.value)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"cosine_scale": float("nan")}, "cosine_scale"),
        ({"cosine_scale": -1.0}, "cosine_scale"),
        ({"cosine_scale": None}, "cosine_scale"),
        ({"learn_cosine_scale": "no"}, "learn_cosine_scale"),
        ({"ways": "5"}, "ways"),
    ],
)
def test_bad_protonet_arguments_are_one_line(mlp, kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`") as info:
        tfmeta.ProtoNet(mlp, **kwargs)
    assert "\n" not in str(info.value)


def test_numpy_scalars_are_accepted(mlp):
    maml = tfmeta.MAML(mlp, inner_steps=np.int64(2), inner_learning_rate=np.float32(0.5),
                       eval_inner_steps=np.int32(3), first_order=np.bool_(True))
    assert (maml.inner_steps, maml.inner_learning_rate, maml.eval_inner_steps) == (2, 0.5, 3)
    assert type(maml.inner_steps) is int and maml.first_order is True
    protonet = tfmeta.ProtoNet(mlp, ways=np.int64(5), cosine_scale=np.float32(2.0))
    assert protonet.ways == 5 and type(protonet.ways) is int
    keras.saving.serialize_keras_object(protonet)  # the config is plain JSON


def test_task_batching_survives_a_keras_reload(mlp, tmp_path):
    learner = tfmeta.MAML(mlp, task_batching="unroll")
    learner.compile(optimizer="sgd", loss="mse")
    learner.save(tmp_path / "learner.keras")
    assert keras.saving.load_model(tmp_path / "learner.keras").task_batching == "unroll"
