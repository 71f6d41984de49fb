"""Standard Keras callbacks with every learner: checkpoints, early stopping, TensorBoard, resume."""

import csv
import glob
import importlib.util

import keras
import numpy as np
import pytest
import tensorflow as tf
from callback_episodes import LEARNERS, episode_dataset, make_learner, weights
from tensorflow.core.util import event_pb2

import tfmeta


class Recorder(keras.callbacks.Callback):
    """Records the weights and optimizer step at train begin and the weights at each epoch end."""

    def __init__(self):
        super().__init__()
        self.begin_weights = None
        self.begin_iterations = None
        self.epoch_weights = []

    def on_train_begin(self, logs=None):
        self.begin_weights = weights(self.model)
        self.begin_iterations = int(self.model.optimizer.iterations)

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_weights.append(weights(self.model))


class InterruptAtStep(keras.callbacks.Callback):
    """Simulates a crash: raises once the optimizer has taken `step` steps."""

    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations) >= self.step:
            raise RuntimeError("interrupted")


# keras.callbacks.TensorBoard needs the `tensorboard` package (a test extra).
TENSORBOARD = importlib.util.find_spec("tensorboard") is not None


def assert_same_weights(actual, expected):
    assert len(actual) == len(expected)
    for a, b in zip(actual, expected):
        np.testing.assert_array_equal(a, b)


def event_tags(directory):
    tags = set()
    for path in glob.glob(f"{directory}/events.out.tfevents.*"):
        for record in tf.data.TFRecordDataset(path):
            event = event_pb2.Event.FromString(record.numpy())
            tags.update(value.tag for value in event.summary.value)
    return tags


@pytest.mark.parametrize("kind", LEARNERS)
def test_checkpoint_early_stopping_tensorboard_csv(kind, tmp_path):
    learner = make_learner(kind)
    validation = episode_dataset(tasks=4, seed=1)
    recorder = Recorder()
    # min_delta above any accuracy gain: stops after the second epoch, but only if
    # EarlyStopping sees `val_accuracy` (otherwise it warns and never stops).
    early_stopping = keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max",
                                                   patience=0, min_delta=1.5)
    history = learner.fit(
        episode_dataset(tasks=8, repeat=True),
        steps_per_epoch=2,
        epochs=4,
        validation_data=validation,
        callbacks=[
            tfmeta.callbacks.EpisodeEvaluation(episode_dataset(tasks=4, seed=2)),
            keras.callbacks.ModelCheckpoint(tmp_path / "best.keras", monitor="val_accuracy",
                                            mode="max", save_best_only=True),
            keras.callbacks.ModelCheckpoint(tmp_path / "best.weights.h5",
                                            monitor="val_accuracy", mode="max",
                                            save_best_only=True, save_weights_only=True),
            keras.callbacks.ModelCheckpoint(tmp_path / "heldout.keras",
                                            monitor="heldout_accuracy", mode="max",
                                            save_best_only=True),
            early_stopping,
            *([keras.callbacks.TensorBoard(tmp_path / "logs")] if TENSORBOARD else []),
            keras.callbacks.CSVLogger(tmp_path / "log.csv"),
            recorder,
        ],
        verbose=0,
    )
    assert history.epoch == [0, 1]
    assert early_stopping.stopped_epoch == 1

    accuracies = history.history["val_accuracy"]
    best = int(np.argmax(accuracies))  # the first maximum, as ModelCheckpoint keeps it
    loaded = keras.saving.load_model(tmp_path / "best.keras")
    assert type(loaded) is type(learner)
    assert_same_weights(weights(loaded), recorder.epoch_weights[best])
    fresh = make_learner(kind, seed=7)
    fresh.optimizer.build(fresh.trainable_variables)  # so that its saved state loads too
    fresh.load_weights(tmp_path / "best.weights.h5")
    assert_same_weights(weights(fresh), recorder.epoch_weights[best])
    assert int(fresh.optimizer.iterations) == 2 * (best + 1)
    heldout_best = int(np.argmax(history.history["heldout_accuracy"]))
    assert_same_weights(weights(keras.saving.load_model(tmp_path / "heldout.keras")),
                        recorder.epoch_weights[heldout_best])

    if TENSORBOARD:
        assert {"epoch_accuracy", "epoch_accuracy_ci95", "epoch_heldout_accuracy",
                "epoch_heldout_accuracy_ci95"} <= event_tags(tmp_path / "logs" / "train")
        assert "epoch_accuracy" in event_tags(tmp_path / "logs" / "validation")

    with open(tmp_path / "log.csv") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 2
    assert {"accuracy_ci95", "val_accuracy", "val_accuracy_ci95", "heldout_loss",
            "heldout_accuracy", "heldout_accuracy_ci95"} <= set(rows[0])


@pytest.mark.parametrize("kind", LEARNERS)
def test_backup_and_restore_resumes_from_the_last_finished_epoch(kind, tmp_path):
    data = episode_dataset(tasks=8, repeat=True)
    interrupted = make_learner(kind)
    recorder = Recorder()
    with pytest.raises(RuntimeError, match="interrupted"):
        interrupted.fit(
            data, steps_per_epoch=2, epochs=4, verbose=0,
            callbacks=[keras.callbacks.BackupAndRestore(tmp_path / "backup"), recorder,
                       InterruptAtStep(5)],  # the first step of the third epoch
        )
    assert len(recorder.epoch_weights) == 2

    # A restarted job: a new learner with other initial weights, the same backup folder.
    restarted = make_learner(kind, seed=1)
    resumed = Recorder()
    history = restarted.fit(
        data, steps_per_epoch=2, epochs=4, verbose=0,
        callbacks=[keras.callbacks.BackupAndRestore(tmp_path / "backup"), resumed],
    )
    assert history.epoch == [2, 3]
    assert resumed.begin_iterations == 4
    assert_same_weights(resumed.begin_weights, recorder.epoch_weights[1])
    assert int(restarted.optimizer.iterations) == 8
