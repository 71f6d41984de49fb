"""`train(experiment, model_dir)`: meta-training with `fit`, resumable after an interruption."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import math
import os
import shutil
from pathlib import Path

import keras
import tensorflow as tf

from tfmeta import distribute
from tfmeta.cli import builders, paths
from tfmeta.cli.experiment import (
    EXPERIMENT_FILE,
    RESUMABLE_CHANGES,
    Experiment,
    check_class_splits,
)
from tfmeta.learners import MetaLearner

LEARNER_FILE = "learner.keras"
BACKUP_DIR = "backup"
LOGS_DIR = "logs"
HISTORY_FILE = "history.csv"

def train(
    experiment: Experiment,
    model_dir: str | os.PathLike[str],
    data_dir: str | os.PathLike[str] | None = None,
    verbose: int | str = 1,
    strategy: tf.distribute.Strategy | None = None,
) -> MetaLearner:
    """Meta-trains the experiment's learner with `fit`, writing everything to `model_dir`.

    `model_dir` receives `experiment.json` (at the start), TensorBoard logs in
    `logs/`, the per-epoch history in `history.csv`, the training state in
    `backup/` (`keras.callbacks.BackupAndRestore`, written after every epoch)
    and, at the end, the trained learner as `learner.keras`.

    Calling `train` again on the same folder resumes from the last finished
    epoch (weights, optimizer state and epoch restored), so an interrupted run
    continues where it stopped, and a finished one with a larger
    `train_steps` trains on. A resumed run continues the episode stream at the
    step where the backup stopped, so it sees the episodes an uninterrupted
    run would. One trainer at a time: a lock file in `model_dir` refuses a
    second one. A non-finite loss stops training with `TrainingDivergedError`;
    the backup keeps the last good epoch and no `learner.keras` is written.

    Args:
        experiment: What to train.
        model_dir: The run's folder, created if needed. It must not hold a
            run of a different experiment (changes to `RESUMABLE_CHANGES`
            settings, such as `train_steps`, are allowed).
        data_dir: The data root (default: the experiment's `data_dir`, else
            `$TFMETA_DATA_DIR`); recorded in `experiment.json`.
        verbose: `fit`'s verbosity: 0 silent, 1 progress bar, 2 one line per epoch.
        strategy: A `tf.distribute.Strategy` (default: the current one) that
            splits each meta-batch across its replicas. Under several workers
            only the chief writes to `model_dir`, which every worker must see
            (a shared disk) to resume.

    Returns:
        The trained learner, compiled.

    Raises:
        ValueError: If `model_dir` holds another experiment, or for settings
            the data cannot supply.
        FileNotFoundError: If the dataset is not where `data_dir` points.
        TrainingDivergedError: If the loss became NaN or infinite.

    Example:
    >>> experiment = Experiment(dataset="sinusoid", backbone="mlp", meta_batch_size=2,
    ...                         train_steps=2, steps_per_epoch=2)
    >>> learner = train(experiment, "/tmp/tfmeta-doctest-run", verbose=0)  # doctest: +SKIP

    """
    if data_dir is not None:
        # Recorded in experiment.json: tfmeta-evaluate reads the same data by default.
        experiment = dataclasses.replace(experiment, data_dir=data_dir)
    data_dir = experiment.data_dir
    strategy = strategy or tf.distribute.get_strategy()
    distribute.per_replica_meta_batch_size(experiment.meta_batch_size, strategy)
    distribute.check_jit_compile(experiment.jit_compile, strategy)
    chief = distribute.is_chief(strategy)
    # Before any work: a folder that cannot be written fails now, not after training.
    created = chief and not Path(model_dir).exists()
    model_dir = paths.writable_folder(model_dir, "model_dir") if chief else Path(model_dir)
    lock = paths.locked_folder(model_dir) if chief else contextlib.nullcontext()
    try:
        with lock:
            return _train(experiment, model_dir, data_dir, verbose, strategy, chief)
    except BaseException:
        if created and {p.name for p in model_dir.iterdir()} <= {paths.LOCK_FILE}:
            shutil.rmtree(model_dir, ignore_errors=True)  # failed before writing anything
        raise


def _train(experiment, model_dir, data_dir, verbose, strategy, chief) -> MetaLearner:
    _check_same_experiment(experiment, model_dir)
    initial_epoch = restored_epoch(model_dir)
    # Batch i of the stream depends only on (seed, i): a resumed run continues the stream
    # at the step where the backup stopped, as an uninterrupted run would.
    initial_step = min(initial_epoch, experiment.epochs) * experiment.steps_per_epoch

    # A split derived from the data (an image folder's) is recorded, and a resumed run
    # must see the same one: checked from the listing, before any example is read.
    splits = builders.class_splits(experiment, data_dir)
    check_class_splits(model_dir, splits, "continued")
    # Build the data first: a missing data folder or impossible shots fail before any work.
    train_data = builders.episodes(
        experiment, "train", ways=experiment.ways, shots=experiment.shots,
        queries=experiment.queries, meta_batch_size=experiment.meta_batch_size,
        seed=experiment.seed, data_dir=data_dir,
    )
    validation_data, validation_steps = None, None
    if experiment.validation_episodes:
        batch = evaluation_batch_size(experiment, experiment.validation_episodes)
        validation_data = builders.dynamic_meta_batch(
            builders.episodes(
                experiment, "validation", ways=experiment.eval_ways,
                shots=experiment.eval_shots, queries=experiment.eval_queries,
                meta_batch_size=1, seed=experiment.seed, data_dir=data_dir,
            ),
            batch,
        )
        validation_steps = math.ceil(experiment.validation_episodes / batch)

    keras.utils.set_random_seed(experiment.seed)
    with strategy.scope():
        learner = builders.learner(experiment, data_dir)
        builders.compile_learner(learner, experiment, builders.optimizer(experiment))
        _build(learner, train_data)

    finished = initial_epoch >= experiment.epochs
    if chief and not (finished and (model_dir / EXPERIMENT_FILE).exists()):
        experiment.save(model_dir, class_splits=splits)
    if finished:
        print(f"Already trained: {model_dir} holds {initial_epoch} epochs "
              f"({initial_epoch * experiment.steps_per_epoch} steps) and --train_steps="
              f"{experiment.train_steps} needs {experiment.epochs}; nothing is left to train "
              f"and {EXPERIMENT_FILE} is unchanged (a larger --train_steps trains on).",
              flush=True)
    elif initial_epoch:
        print(
            f"Resuming from epoch {initial_epoch}/{experiment.epochs} "
            f"(step {initial_step}) in {model_dir}",
            flush=True,
        )
    # The chief alone writes the backup, logs and history (every worker reads the backup).
    guard = _StopOnNonFiniteLoss()
    callbacks = [
        guard,
        distribute.BackupAndRestore(
            str(model_dir / BACKUP_DIR), double_checkpoint=True, delete_checkpoint=False
        ),
    ]
    if chief:
        callbacks.append(keras.callbacks.CSVLogger(str(model_dir / HISTORY_FILE), append=True))
    if chief and _tensorboard_installed():
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(model_dir / LOGS_DIR)))
    elif chief and verbose:
        print("TensorBoard logs skipped: the `tensorboard` package is not installed "
              "(pip install tensorboard); history.csv has the same numbers.", flush=True)
    learner.fit(
        train_data.skip(initial_step),
        epochs=experiment.epochs,
        steps_per_epoch=experiment.steps_per_epoch,
        validation_data=validation_data,
        validation_steps=validation_steps,
        callbacks=callbacks,
        shuffle=False,
        verbose=verbose,
    )
    if guard.diverged_at is not None:
        epoch, step = guard.diverged_at
        kept = restored_epoch(model_dir)
        raise TrainingDivergedError(
            f"Training diverged: the loss was not finite at step {step} (epoch {epoch + 1}/"
            f"{experiment.epochs}), so training stopped and nothing of that epoch was saved; "
            f"{model_dir / BACKUP_DIR} keeps the last good state ({kept} finished epochs) "
            f"and no {LEARNER_FILE} was written. Lower --learning_rate or "
            "--inner_learning_rate, or check the data for NaN or infinite values."
        )
    if chief and not (finished and (model_dir / LEARNER_FILE).exists()):
        # Atomic: a crash or a full disk never leaves a truncated learner.keras.
        with paths.replaced_atomically(model_dir / LEARNER_FILE, suffix=".keras") as temporary:
            learner.save(temporary)
    return learner


class TrainingDivergedError(FloatingPointError):
    """Training stopped at a non-finite loss (tfmeta-train exits with an error)."""


class _StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops `fit` at the first non-finite loss and records where (`diverged_at`)."""

    def __init__(self):
        super().__init__()
        self.diverged_at = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)) and self.diverged_at is None:
            # The refused step counts as an optimizer iteration (with zero gradients).
            step = int(self.model.optimizer.iterations.numpy())
            self.diverged_at = (self._epoch, step)
            self.model.stop_training = True


def restored_epoch(model_dir: str | os.PathLike[str]) -> int:
    """The number of finished epochs recorded in `model_dir`'s backup (0 without one).

    Example:
    >>> restored_epoch("/nonexistent")
    0

    """
    path = Path(model_dir) / BACKUP_DIR / "training_metadata.json"
    if not (Path(model_dir) / BACKUP_DIR / "latest.weights.h5").exists():
        return 0
    try:
        return int(json.loads(path.read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def evaluation_batch_size(experiment: Experiment, episodes: int,
                          ways: int | None = None, shots: int | None = None,
                          queries: int | None = None) -> int:
    """Episodes per evaluation batch: about as many examples as one training step holds.

    Example:
    >>> evaluation_batch_size(Experiment(learner="protonet", ways=60, shots=1, queries=5,
    ...                                  test_ways=5, test_queries=15, meta_batch_size=1), 1000)
    4

    """
    ways = ways or experiment.eval_ways
    shots = shots or experiment.eval_shots
    queries = queries or experiment.eval_queries
    if experiment.regression:
        ways = train_ways = 1
    else:
        train_ways = experiment.ways
    train_examples = experiment.meta_batch_size * train_ways * (experiment.shots
                                                                + experiment.queries)
    episode_examples = ways * (shots + queries)
    return max(1, min(episodes, train_examples // episode_examples))


def _tensorboard_installed() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


def _build(learner: MetaLearner, dataset: tf.data.Dataset) -> None:
    """Creates the learner's weights (BackupAndRestore restores into a built model)."""
    inputs, _ = next(iter(dataset.take(1)))
    learner({key: value[:1] for key, value in inputs.items()}, training=False)


def _check_same_experiment(experiment: Experiment, model_dir: Path) -> None:
    """Raises a `ValueError` when `model_dir` holds a run of another experiment."""
    if not (model_dir / EXPERIMENT_FILE).exists():
        return
    try:
        previous = Experiment.load(model_dir)
    except ValueError as error:
        raise ValueError(
            f"Invalid `--model_dir`: {model_dir} holds an unreadable {EXPERIMENT_FILE} "
            f"({error}). Use a new --model_dir."
        ) from None
    blocking = {
        name: values
        for name, values in experiment.differences(previous).items()
        if name not in RESUMABLE_CHANGES
    }
    if blocking:
        described = ", ".join(
            f"--{name}={new!r} (was {old!r})" for name, (new, old) in sorted(blocking.items())
        )
        raise ValueError(
            f"Invalid `--model_dir`: {model_dir} holds a run of a different experiment, which "
            f"cannot be continued with {described}. Use a new --model_dir, or the run's own "
            "flags to continue it."
        )
