"""Exports of learners that adapt at test time (finetune, TSA) answer as `learner.predict`."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfmeta

IMAGE = (16, 16, 1)
WAYS = 3


@pytest.fixture(scope="module", params=["finetune", "tsa"])
def exported(request, tmp_path_factory):
    keras.utils.set_random_seed(0)
    encoder = tfmeta.backbones.conv4(IMAGE, filters=3)
    adaptation = tfmeta.TestTimeAdaptation(request.param, steps=2, learning_rate=0.05,
                                           augmentation="flip_and_shift")
    learner = tfmeta.ProtoNet(encoder, ways=WAYS, test_time_adaptation=adaptation)
    path = tmp_path_factory.mktemp(request.param) / "saved"
    learner.export(path)
    return learner, tf.saved_model.load(str(path))


def episode(seed=0, shots=2, queries=3):
    rng = np.random.default_rng(seed)
    return {"support_x": rng.normal(size=(WAYS * shots, *IMAGE)).astype("float32"),
            "support_y": rng.permutation(np.repeat(np.arange(WAYS), shots)).astype("int32"),
            "query_x": rng.normal(size=(WAYS * queries, *IMAGE)).astype("float32")}


def test_serving_default_and_adapt_predict_adapted_equal_predict(exported):
    learner, serving = exported
    inputs = episode()
    expected = learner.predict({key: value[None] for key, value in inputs.items()},
                               verbose=0)[0]
    served = serving.signatures["serving_default"](
        support_x=tf.constant(inputs["support_x"]), support_y=tf.constant(inputs["support_y"]),
        query_x=tf.constant(inputs["query_x"]))["logits"].numpy()
    np.testing.assert_allclose(served, expected, rtol=1e-5, atol=1e-5)
    state = serving.signatures["adapt"](support_x=tf.constant(inputs["support_x"]),
                                        support_y=tf.constant(inputs["support_y"]))["task_state"]
    assert state.shape == (learner.serving_spec().task_state_size,)
    adapted = serving.signatures["predict_adapted"](
        task_state=state, query_x=tf.constant(inputs["query_x"]))["logits"].numpy()
    np.testing.assert_allclose(adapted, expected, rtol=1e-5, atol=1e-5)
    # The plain ProtoNet on the same encoder answers otherwise: the export adapts.
    plain = tfmeta.ProtoNet(learner.encoder, ways=WAYS)
    assert not np.allclose(plain.predict({k: v[None] for k, v in inputs.items()},
                                         verbose=0)[0], expected, atol=1e-4)


def test_the_export_holds_only_the_learner_weights(exported):
    learner, serving = exported
    assert len(serving.variables) == len(learner.weights)
