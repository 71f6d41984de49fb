"""Tests of tfmeta.metrics: per-episode means with 95% intervals, in eager, XLA and fit."""

import doctest
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfmeta.metrics
from tfmeta.metrics import (
    EpisodicAccuracy,
    EpisodicMeanSquaredError,
    confidence,
    episodic_accuracy,
    episodic_mean_squared_error,
    mean_confidence_interval,
)

WAYS = 3
SPARSE_CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def numpy_ci(values):
    values = np.asarray(values, dtype=np.float64)
    return values.mean(), 1.96 * values.std() / np.sqrt(values.size)


def logits_for(labels, correct):
    """One-hot logits [B, Q, WAYS] that hit `labels` where `correct` and miss elsewhere."""
    predicted = np.where(correct, labels, (labels + 1) % WAYS)
    return np.eye(WAYS, dtype=np.float32)[predicted]


def random_episodes(rng, episodes, queries):
    labels = rng.integers(0, WAYS, size=(episodes, queries)).astype(np.int32)
    logits = rng.normal(size=(episodes, queries, WAYS)).astype(np.float32)
    return labels, logits


def per_episode_accuracy(labels, logits):
    return (logits.argmax(-1) == labels).mean(axis=1)


def as_floats(result):
    return {key: float(value) for key, value in result.items()}


# === mean_confidence_interval ===


def test_mean_confidence_interval_hand_computed():
    mean, ci95 = mean_confidence_interval(np.array([0.5, 0.75, 1.0]))
    assert mean == pytest.approx(0.75)
    # Population std of (0.5, 0.75, 1.0) is sqrt(1/24).
    assert ci95 == pytest.approx(1.96 * np.sqrt(1 / 24) / np.sqrt(3))
    assert isinstance(mean, float) and isinstance(ci95, float)


def test_mean_confidence_interval_single_episode_has_zero_interval():
    assert mean_confidence_interval([0.4]) == (pytest.approx(0.4), 0.0)


@pytest.mark.parametrize("values", [[], [[0.5, 1.0]], 0.5])
def test_mean_confidence_interval_rejects_non_vectors(values):
    with pytest.raises(ValueError, match="Invalid `values` for mean_confidence_interval"):
        mean_confidence_interval(values)


# === EpisodicAccuracy ===


def test_accuracy_hand_computed_episodes():
    labels = np.array([[0, 1, 2, 0], [1, 1, 2, 2], [2, 0, 1, 0]], dtype=np.int32)
    correct = np.array([[1, 1, 1, 1], [1, 0, 1, 0], [0, 0, 0, 1]], dtype=bool)
    metric = EpisodicAccuracy()
    metric.update_state(labels, logits_for(labels, correct))
    result = as_floats(metric.result())
    mean, ci95 = mean_confidence_interval([1.0, 0.5, 0.25])
    assert set(result) == {"accuracy", "accuracy_ci95"}
    assert result["accuracy"] == pytest.approx(mean)
    assert result["accuracy_ci95"] == pytest.approx(ci95)
    assert (mean, ci95) == pytest.approx(numpy_ci([1.0, 0.5, 0.25]))


def test_accuracy_accumulates_episodes_not_queries():
    rng = np.random.default_rng(0)
    # Meta-batches with different numbers of episodes and queries: a pooled (per-query)
    # accuracy would weight the 9-query episodes more; the episodic one must not.
    batches = [random_episodes(rng, 2, 3), random_episodes(rng, 5, 9), random_episodes(rng, 1, 3)]
    metric = EpisodicAccuracy()
    for labels, logits in batches:
        metric.update_state(labels, logits)
    values = np.concatenate([per_episode_accuracy(*batch) for batch in batches])
    pooled = np.mean(np.concatenate([(lo.argmax(-1) == la).ravel() for la, lo in batches]))
    result = as_floats(metric.result())
    assert result["accuracy"] == pytest.approx(values.mean())
    assert result["accuracy"] != pytest.approx(pooled)
    assert result["accuracy_ci95"] == pytest.approx(mean_confidence_interval(values)[1])


def test_accuracy_several_updates_equal_one_update_on_the_concatenation():
    rng = np.random.default_rng(1)
    labels, logits = random_episodes(rng, 12, 5)
    split = EpisodicAccuracy()
    for start in range(0, 12, 4):
        split.update_state(labels[start : start + 4], logits[start : start + 4])
    whole = EpisodicAccuracy()
    whole.update_state(labels, logits)
    assert as_floats(split.result()) == pytest.approx(as_floats(whole.result()))


def test_accuracy_under_xla_matches_eager():
    rng = np.random.default_rng(2)
    batches = [random_episodes(rng, 4, 5) for _ in range(3)]
    eager = EpisodicAccuracy()
    for labels, logits in batches:
        eager.update_state(labels, logits)

    compiled = EpisodicAccuracy()

    @tf.function(jit_compile=True)
    def step(labels, logits):
        compiled.update_state(labels, logits)
        return compiled.result()

    for labels, logits in batches:
        result = step(tf.constant(labels), tf.constant(logits))
    assert as_floats(result) == pytest.approx(as_floats(eager.result()))
    values = np.concatenate([per_episode_accuracy(*batch) for batch in batches])
    result = as_floats(result)
    assert (result["accuracy"], result["accuracy_ci95"]) == pytest.approx(numpy_ci(values))


def test_accuracy_reset_state_and_empty_result():
    metric = EpisodicAccuracy(name="acc")
    assert as_floats(metric.result()) == {"acc": 0.0, "acc_ci95": 0.0}
    labels = np.zeros((2, 3), dtype=np.int32)
    metric.update_state(labels, logits_for(labels, np.ones((2, 3), dtype=bool)))
    assert float(metric.result()["acc"]) == 1.0
    metric.reset_state()
    metric.update_state(labels, logits_for(labels, np.zeros((2, 3), dtype=bool)))
    assert as_floats(metric.result()) == {"acc": 0.0, "acc_ci95": 0.0}


@pytest.mark.parametrize(
    "labels_shape, logits_shape, match",
    [
        (
            (2, 5),
            (2, 5),
            r"Invalid `y_pred` for EpisodicAccuracy: expected logits of shape "
            r"\[episodes, queries, ways\] \(rank 3\)\. Received: shape=\(2, 5\)",
        ),
        ((2, 5), (2, 5, 3, 1), r"Invalid `y_pred`.*\(rank 3\)\. Received: shape=\(2, 5, 3, 1\)"),
        (
            (10,),
            (10, 3),
            r"Invalid `y_true` for EpisodicAccuracy.*\(rank 2\)\. Received: "
            r"shape=\(10,\)",
        ),
        ((2, 5), (2, 4, 3), r"Invalid `y_pred`.*y_true.shape=\(2, 5\), y_pred.shape=\(2, 4, 3\)"),
    ],
)
def test_accuracy_rejects_bad_shapes(labels_shape, logits_shape, match):
    with pytest.raises(ValueError, match=match):
        EpisodicAccuracy().update_state(
            np.zeros(labels_shape, np.int32), np.zeros(logits_shape, np.float32)
        )


def test_accuracy_checks_static_shapes_while_tracing():
    metric = EpisodicAccuracy()
    step = tf.function(metric.update_state)
    with pytest.raises(ValueError, match=r"Invalid `y_pred`.*Received: shape=\(None, 5\)"):
        step.get_concrete_function(
            tf.TensorSpec([None, 5], tf.int32), tf.TensorSpec([None, 5], tf.float32)
        )
    # Unknown episode counts are fine.
    step(tf.zeros([2, 5], tf.int32), tf.zeros([2, 5, 3]))


def test_sample_weight_is_rejected():
    labels = np.zeros((2, 3), dtype=np.int32)
    with pytest.raises(ValueError, match="does not support `sample_weight`"):
        EpisodicAccuracy().update_state(labels, np.zeros((2, 3, WAYS)), sample_weight=np.ones(2))


# === EpisodicMeanSquaredError ===


def test_mse_hand_computed_episodes_with_target_dims():
    targets = np.zeros((3, 2, 2), dtype=np.float32)
    predictions = np.array(
        [[[1, 1], [1, 1]], [[2, 0], [0, 0]], [[0, 0], [0, 0]]], dtype=np.float32
    )  # per-episode mse over queries and target dims: 1.0, 1.0, 0.0
    metric = EpisodicMeanSquaredError()
    metric.update_state(targets, predictions)
    result = as_floats(metric.result())
    assert set(result) == {"mse", "mse_ci95"}
    assert (result["mse"], result["mse_ci95"]) == pytest.approx(numpy_ci([1.0, 1.0, 0.0]))


def test_mse_accumulates_per_episode_under_xla():
    rng = np.random.default_rng(3)
    batches = [
        (rng.normal(size=(b, q, 1)).astype(np.float32), rng.normal(size=(b, q, 1)) * s)
        for b, q, s in [(3, 4, 1.0), (2, 10, 3.0), (4, 4, 0.5)]
    ]
    eager = EpisodicMeanSquaredError()
    compiled = EpisodicMeanSquaredError()
    step = tf.function(compiled.update_state, jit_compile=True)
    for targets, predictions in batches:
        eager.update_state(targets, predictions)
        step(tf.constant(targets), tf.constant(predictions, tf.float32))
    values = np.concatenate([((p - t) ** 2).mean(axis=(1, 2)) for t, p in batches])
    expected = numpy_ci(values)
    for metric in (eager, compiled):
        result = metric.result()
        assert (float(result["mse"]), float(result["mse_ci95"])) == pytest.approx(expected, 1e-5)


def test_mse_interval_is_sound_for_large_values_with_small_spread():
    # 100,000 episodes of mse ~1000 with a spread of 1e-2: float32 running sums of squares
    # would lose the variance entirely; the float64 sums must not.
    rng = np.random.default_rng(4)
    values = 1000.0 + 1e-2 * rng.normal(size=100_000)
    metric = EpisodicMeanSquaredError(dtype="float64")
    metric.update_state(np.zeros((values.size, 1)), np.sqrt(values)[:, None])
    result = metric.result()
    mean, ci95 = numpy_ci(((np.sqrt(values).astype(np.float32)) ** 2).astype(np.float64))
    assert float(result["mse"]) == pytest.approx(mean, rel=1e-9)
    assert float(result["mse_ci95"]) == pytest.approx(ci95, rel=1e-3)


def test_mse_rejects_mismatched_predictions():
    with pytest.raises(ValueError, match=r"Invalid `y_pred` for EpisodicMeanSquaredError.*rank 3"):
        EpisodicMeanSquaredError().update_state(np.zeros((2, 5, 1)), np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"y_true.shape=\(2, 5, 1\), y_pred.shape=\(2, 5, 2\)"):
        EpisodicMeanSquaredError().update_state(np.zeros((2, 5, 1)), np.zeros((2, 5, 2)))
    with pytest.raises(ValueError, match=r"Invalid `y_true`.*rank 2 or more"):
        EpisodicMeanSquaredError().update_state(np.zeros((5,)), np.zeros((5,)))


# === Keras integration ===


@keras.saving.register_keras_serializable(package="tfmeta_tests")
class QueryDense(keras.Model):
    """Maps queries [B, Q, D] to [B, Q, units]: stands in for a learner's query logits."""

    def __init__(self, units=WAYS, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.dense = keras.layers.Dense(units)

    def call(self, inputs):
        return self.dense(inputs)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def episode_dataset(seed, episodes=12, queries=5, batch=4):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(episodes, queries, 4)).astype(np.float32)
    y = rng.integers(0, WAYS, size=(episodes, queries)).astype(np.int32)
    return x, y, tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_fit_and_evaluate_log_mean_and_interval(tmp_path, jit_compile):
    keras.utils.set_random_seed(0)
    x, y, dataset = episode_dataset(seed=5)
    model = QueryDense()
    model.compile(
        optimizer="sgd",
        loss=SPARSE_CE,
        metrics=[EpisodicAccuracy()],
        jit_compile=jit_compile,
    )
    checkpoint = keras.callbacks.ModelCheckpoint(
        tmp_path / "best.keras", monitor="val_accuracy", mode="max", save_best_only=True
    )
    history = model.fit(
        dataset, validation_data=dataset, epochs=2, callbacks=[checkpoint], verbose=0
    )
    assert {"accuracy", "accuracy_ci95", "val_accuracy", "val_accuracy_ci95"} <= set(
        history.history
    )
    assert all(len(values) == 2 for values in history.history.values())
    assert checkpoint.best == max(history.history["val_accuracy"])
    assert (tmp_path / "best.keras").exists()

    logs = model.evaluate(dataset, return_dict=True, verbose=0)
    expected = numpy_ci(per_episode_accuracy(y, model.predict(x, verbose=0)))
    assert (logs["accuracy"], logs["accuracy_ci95"]) == pytest.approx(expected)
    # The list form ends with the interval, after the metrics Keras knows by name.
    assert model.evaluate(dataset, verbose=0)[1:] == pytest.approx(list(expected))


def test_evaluate_calls_are_independent():
    model = QueryDense()
    model.compile(loss=SPARSE_CE, metrics=[EpisodicAccuracy()])
    results = []
    for seed in (6, 7):
        x, y, dataset = episode_dataset(seed)
        logs = model.evaluate(dataset, return_dict=True, verbose=0)
        results.append((logs["accuracy"], logs["accuracy_ci95"]))
        expected = numpy_ci(per_episode_accuracy(y, model.predict(x, verbose=0)))
        assert results[-1] == pytest.approx(expected)
    assert results[0] != pytest.approx(results[1])


def test_regression_fit_logs_mse_and_interval():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(8, 5, 4)).astype(np.float32)
    y = rng.normal(size=(8, 5, 1)).astype(np.float32)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    model = QueryDense(units=1)
    model.compile(optimizer="sgd", loss="mse", metrics=[EpisodicMeanSquaredError()])
    history = model.fit(dataset, validation_data=dataset, epochs=1, verbose=0)
    assert {"mse", "mse_ci95", "val_mse", "val_mse_ci95"} <= set(history.history)
    logs = model.evaluate(dataset, return_dict=True, verbose=0)
    values = ((model.predict(x, verbose=0) - y) ** 2).mean(axis=(1, 2))
    assert (logs["mse"], logs["mse_ci95"]) == pytest.approx(numpy_ci(values), rel=1e-5)


def test_compiled_model_round_trips_through_keras_file(tmp_path):
    _, _, dataset = episode_dataset(seed=9)
    model = QueryDense()
    model.compile("sgd", loss=SPARSE_CE, metrics=[EpisodicAccuracy(name="episode_accuracy")])
    before = model.evaluate(dataset, return_dict=True, verbose=0)
    model.save(tmp_path / "model.keras")
    restored = keras.saving.load_model(tmp_path / "model.keras")
    after = restored.evaluate(dataset, return_dict=True, verbose=0)
    assert after["episode_accuracy_ci95"] == pytest.approx(before["episode_accuracy_ci95"])


# === Config ===


@pytest.mark.parametrize("cls", [EpisodicAccuracy, EpisodicMeanSquaredError])
def test_config_round_trip(cls):
    metric = cls(name="custom", dtype="float64")
    config = metric.get_config()
    assert config == {"name": "custom", "dtype": "float64"}
    clone = cls.from_config(config)
    assert (clone.name, clone.dtype) == ("custom", "float64")

    serialized = keras.saving.serialize_keras_object(metric)
    assert serialized["registered_name"] == f"tfmeta>{cls.__name__}"
    restored = keras.saving.deserialize_keras_object(serialized)
    assert type(restored) is cls and restored.get_config() == config


def test_public_surface():
    assert tfmeta.metrics.__all__ == [
        "EpisodicAccuracy",
        "EpisodicMeanSquaredError",
        "mean_confidence_interval",
    ]


@pytest.mark.parametrize("module", [confidence, episodic_accuracy, episodic_mean_squared_error])
def test_docstring_examples(module):
    failures, tried = doctest.testmod(module)
    assert tried > 0 and failures == 0


# === tf.distribute ===


def test_two_replicas_sum_their_episodes():
    # Logical devices must be set before TensorFlow starts, hence a fresh interpreter.
    script = textwrap.dedent(
        """
        import numpy as np, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )
        import keras
        from tfmeta.metrics import EpisodicAccuracy, mean_confidence_interval

        rng = np.random.default_rng(10)
        x = rng.normal(size=(12, 5, 4)).astype(np.float32)
        y = rng.integers(0, 3, size=(12, 5)).astype(np.int32)
        dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        assert strategy.num_replicas_in_sync == 2
        with strategy.scope():
            model = keras.Sequential([keras.Input((5, 4)), keras.layers.Dense(3)])
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            model.compile(loss=loss, metrics=[EpisodicAccuracy()])
        logs = model.evaluate(dataset, return_dict=True, verbose=0)
        values = (model.predict(x, verbose=0).argmax(-1) == y).mean(axis=1)
        mean, ci95 = mean_confidence_interval(values)
        np.testing.assert_allclose([logs["accuracy"], logs["accuracy_ci95"]], [mean, ci95], 1e-6)
        print("OK")
        """
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [repo, env.get("PYTHONPATH")]))
    completed = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        cwd=repo,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.strip().endswith("OK")
