"""LiteRT export: the interpreter's outputs equal the SavedModel's; refusals are one line."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfmeta
from tfmeta.export import LiteRTLearner, export_litert, read_metadata

pytest.importorskip("ai_edge_litert")

FEATURES, WAYS = 6, 3
SCCE = keras.losses.SparseCategoricalCrossentropy


def head_model(head="dense", seed=0):
    keras.utils.set_random_seed(seed)
    last = (keras.layers.Dense(WAYS, name="head") if head == "dense"
            else tfmeta.layers.CosineClassifier(WAYS, scale=4.0, name="head"))
    return keras.Sequential([keras.Input((FEATURES,)),
                             keras.layers.Dense(8, activation="relu", name="body"), last])


def compiled(learner):
    learner.compile(optimizer="adam", loss=SCCE(from_logits=True))
    return learner


def encoder(seed=0):
    keras.utils.set_random_seed(seed)
    return tfmeta.backbones.mlp((FEATURES,), (8,), 5)


def baseline(head):
    keras.utils.set_random_seed(0)
    features = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(5)])
    return compiled(tfmeta.Baseline(features, num_classes=7, head=head, ways=WAYS,
                                    fine_tune_steps=6))


LEARNERS = {
    "protonet": lambda: tfmeta.ProtoNet(encoder()),
    "protonet_cosine": lambda: tfmeta.ProtoNet(encoder(), distance="cosine"),
    "meta_baseline": lambda: baseline("linear").to_protonet(),
    "anil": lambda: compiled(tfmeta.MAML(head_model(), adapt_layers=["head"],
                                         inner_learning_rate=0.5, eval_inner_steps=3)),
    "anil_cosine": lambda: compiled(tfmeta.MAML(head_model("cosine"), adapt_layers=["head"],
                                                inner_learning_rate=0.5)),
    "meta_sgd_head": lambda: compiled(tfmeta.MAML(
        head_model(), adapt_layers=["head"], inner_steps=2,
        learn_inner_learning_rate="per_step")),
    "fo_proto_maml_head": lambda: compiled(tfmeta.MAML(
        head_model(), adapt_layers=["head"], head_init="prototypes", first_order=True,
        inner_steps=2, inner_learning_rate=0.5)),
    "baseline": lambda: baseline("linear"),
    "baseline_plus_plus": lambda: baseline("cosine"),
}


def episode(support, queries, seed):
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(support) % WAYS).astype(np.int32)
    return (rng.normal(size=(support, FEATURES)).astype(np.float32), labels,
            rng.normal(size=(queries, FEATURES)).astype(np.float32))


# Each export takes a few seconds of CPU: the others run with the slow tests.
FAST = ("anil_cosine", "baseline", "protonet")


@pytest.fixture(scope="module", params=[
    name if name in FAST else pytest.param(name, marks=pytest.mark.slow)
    for name in sorted(LEARNERS)])
def exported(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param)
    learner = LEARNERS[request.param]()
    learner.export(str(folder / "saved_model"))
    learner.export_litert(str(folder / "model.tflite"))
    return (learner, tf.saved_model.load(str(folder / "saved_model")),
            LiteRTLearner(folder / "model.tflite"))


@pytest.mark.parametrize("support, queries", [(3, 2), (9, 7)])
def test_interpreter_equals_the_saved_model(exported, support, queries):
    learner, saved, device = exported
    support_x, support_y, query_x = episode(support, queries, seed=support)
    key = "logits"
    expected = saved.signatures["serving_default"](
        support_x=support_x, support_y=support_y, query_x=query_x)[key].numpy()
    state = saved.signatures["adapt"](support_x=support_x, support_y=support_y)["task_state"]
    np.testing.assert_allclose(device(support_x, support_y, query_x), expected, atol=1e-5)
    device_state = device.adapt(support_x, support_y)
    np.testing.assert_allclose(device_state, state.numpy(), atol=1e-5)
    np.testing.assert_allclose(device.predict_adapted(device_state, query_x), expected,
                               atol=1e-5)
    assert expected.shape == (queries, WAYS)
    assert read_metadata(open(device.path, "rb").read())["learner"] == type(learner).__name__


@pytest.mark.parametrize("quantization", ["float16", "dynamic_int8", "int8"])
def test_quantized_exports_stay_close(quantization, tmp_path):
    learner = LEARNERS["protonet"]()
    support_x, support_y, query_x = episode(9, 6, seed=1)
    batches = [({"support_x": support_x[None], "support_y": support_y[None],
                 "query_x": query_x[None]}, None)] * 4
    export_litert(learner, tmp_path / "q.tflite", quantization=quantization,
                  representative_episodes=batches if quantization == "int8" else None)
    device = LiteRTLearner(tmp_path / "q.tflite")
    expected = learner.predict_on_batch({"support_x": support_x[None],
                                         "support_y": support_y[None],
                                         "query_x": query_x[None]})[0]
    got = device(support_x, support_y, query_x)
    if quantization == "int8":
        # Activations in int8 move an untrained model's logits (the accuracy on real
        # Omniglot is measured in test_litert_real_data.py); the ranking mostly holds.
        assert np.corrcoef(got.ravel(), expected.ravel())[0, 1] > 0.7
    else:
        np.testing.assert_allclose(got, expected, atol=0.05 * np.abs(expected).max())
    assert device.description["quantization"] == quantization


def test_full_network_maml_and_reptile_are_refused_in_one_line(tmp_path):
    for learner in (compiled(tfmeta.MAML(head_model())), compiled(tfmeta.Reptile(head_model()))):
        with pytest.raises(ValueError) as error:
            learner.export_litert(tmp_path / "m.tflite")
        message = str(error.value)
        assert "\n" not in message and "adapt_layers" in message and "ProtoNet" in message
    assert not (tmp_path / "m.tflite").exists()


@pytest.mark.parametrize("kwargs, match", [
    ({"quantization": "int4"}, "`quantization`"),
    ({"quantization": "int8"}, "representative_episodes"),
])
def test_bad_options_are_refused_in_one_line(kwargs, match, tmp_path):
    with pytest.raises(ValueError, match=match) as error:
        export_litert(LEARNERS["protonet"](), tmp_path / "m.tflite", **kwargs)
    assert "\n" not in str(error.value)


def test_a_model_needing_flex_ops_is_refused_in_one_line(tmp_path):
    keras.utils.set_random_seed(0)
    encoder = keras.Sequential([keras.Input((FEATURES,)),  # Cumprod has no builtin kernel.
                                keras.layers.Lambda(lambda x: tf.math.cumprod(x, axis=-1)),
                                keras.layers.Dense(4)])
    with pytest.raises(ValueError, match="needs Cumprod.*Flex") as error:
        tfmeta.ProtoNet(encoder).export_litert(tmp_path / "m.tflite")
    assert "\n" not in str(error.value)
    assert not (tmp_path / "m.tflite").exists()


def test_transductive_batch_norm_converts(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((4, 4, 1)), keras.layers.Conv2D(2, 3), tfmeta.layers.BatchNormalization(),
        keras.layers.Flatten(), keras.layers.Dense(WAYS, name="head")])
    # The episode's batch statistics at evaluation (MAML's protocol).
    learner = compiled(tfmeta.MAML(model, adapt_layers=["head"], transductive=True,
                                   inner_learning_rate=0.5))
    learner.export_litert(tmp_path / "m.tflite")
    rng = np.random.default_rng(0)
    support_x, query_x = (rng.normal(size=(n, 4, 4, 1)).astype(np.float32) for n in (6, 5))
    support_y = np.arange(6, dtype=np.int32) % WAYS
    expected = learner.predict_on_batch({"support_x": support_x[None],
                                         "support_y": support_y[None],
                                         "query_x": query_x[None]})[0]
    got = LiteRTLearner(tmp_path / "m.tflite")(support_x, support_y, query_x)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_existing_file_needs_overwrite(tmp_path):
    (tmp_path / "m.tflite").write_bytes(b"x")
    with pytest.raises(ValueError, match="overwrite=True"):
        export_litert(LEARNERS["protonet"](), tmp_path / "m.tflite")


@pytest.fixture(scope="module")
def protonet_device(tmp_path_factory):
    path = tmp_path_factory.mktemp("device") / "protonet.tflite"
    tfmeta.ProtoNet(encoder()).export_litert(path)
    return LiteRTLearner(path)


@pytest.mark.parametrize("call, match", [
    (lambda d, x, y, q: d.adapt(x.astype(np.int32), y), "dtype float32"),
    (lambda d, x, y, q: d.adapt(x, y.astype(np.float32)), "dtype int32"),
    (lambda d, x, y, q: d.adapt(x[:, :4], y), r"shape \[None, 6\]"),
    (lambda d, x, y, q: d.adapt(x[None], y), r"support_x.shape=\[1, 9, 6\]"),
    (lambda d, x, y, q: d.adapt(x[:5], y), "same number of support examples"),
    (lambda d, x, y, q: d.adapt(x, y - 1), "labels must be in"),
    (lambda d, x, y, q: d.adapt(x, y + 5), "no example of class"),
    (lambda d, x, y, q: d.adapt(x[:0], y[:0]), "empty"),
    (lambda d, x, y, q: d.adapt(x, np.where(y == 1, 2, y)), "no example of class"),
    (lambda d, x, y, q: d.predict_adapted(d.adapt(x, y), q[:, :2]), "query_x"),
    (lambda d, x, y, q: d(x, y, q[:0]), "`query_x` is empty"),
])
def test_interpreter_inputs_are_checked_in_one_line(protonet_device, call, match):
    support_x, support_y, query_x = episode(9, 4, seed=0)
    with pytest.raises(ValueError, match=match) as error:
        call(protonet_device, support_x, support_y, query_x)
    assert "\n" not in str(error.value)


def test_not_a_tfmeta_export_is_refused(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        LiteRTLearner(tmp_path / "missing.tflite")
