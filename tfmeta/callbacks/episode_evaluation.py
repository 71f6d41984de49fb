"""A callback that evaluates a learner on a fixed set of held-out episodes during `fit`."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras.src.utils import io_utils

from tfmeta.metrics import EpisodicAccuracy, EpisodicMeanSquaredError, mean_confidence_interval
from tfmeta.metrics.episodic_metric import EpisodicMetric

_EPISODE_KEYS = ("support_x", "support_y", "query_x")
# Metric names accepted in `metrics`, as in `learner.compile(metrics=...)`.
_METRIC_NAMES = {
    "accuracy": (EpisodicAccuracy, "accuracy"),
    "acc": (EpisodicAccuracy, "accuracy"),
    "mse": (EpisodicMeanSquaredError, "mse"),
    "mean_squared_error": (EpisodicMeanSquaredError, "mse"),
}


class EpisodeEvaluation(keras.callbacks.Callback):
    """Evaluates the learner on a fixed set of held-out episodes every N steps and/or epoch.

    The episodes are read once, on first use, and kept in memory, so every
    evaluation sees the same episodes (an endless or shuffled episode pipeline
    would otherwise give each evaluation different tasks). Each evaluation
    runs `predict_on_batch` on every cached meta-batch (MAML and Reptile adapt
    with `eval_inner_steps`) and computes, over all episodes, the mean and the
    95% confidence interval (`1.96 * std / sqrt(episodes)`) of each episodic
    metric, plus the mean compiled loss. Unlike `model.evaluate`, it leaves
    the training metrics alone, so it can run in the middle of an epoch.

    Results go into the `logs` of `fit` under `{prefix}_loss`,
    `{prefix}_{metric}` and `{prefix}_{metric}_ci95` (e.g. `heldout_accuracy`
    and `heldout_accuracy_ci95`): in the batch logs of the step where an
    evaluation ran, and in the epoch logs (the latest evaluation), so
    `ModelCheckpoint(monitor="heldout_accuracy")`, `EarlyStopping`,
    `TensorBoard`, `CSVLogger` and `History` see them. Put this callback
    before the callbacks that read its results in the `callbacks` list.

    `history` holds every evaluation, as lists keyed like `History.history`,
    with the optimizer step (`"step"`, which counts across epochs and resumed
    runs) and the epoch (`"epoch"`, 0-based) of each.

    Args:
        episodes: the held-out meta-batches `(inputs, query_y)` of the episode
            contract: a `tf.data.Dataset` (finite, or with `steps`), a list or
            other iterable of meta-batches, or a single meta-batch.
        steps: how many meta-batches to take from `episodes` (required for an
            endless dataset such as `tfmeta.data.omniglot(...)`); None takes all.
        every_n_steps: evaluate every this many training steps (optimizer
            updates); None evaluates only at epoch ends.
        at_epoch_end: whether to evaluate at the end of every epoch (skipped
            when an evaluation already ran at that step).
        metrics: episodic metrics, as names (`"accuracy"`, `"mse"`) or
            `tfmeta.metrics` instances; None picks accuracy for integer
            `query_y` and mse otherwise.
        prefix: the prefix of the keys in the logs.
        verbose: 1 prints one line per evaluation.

    Example:
    >>> import keras, tfmeta
    >>> learner = tfmeta.MAML(tfmeta.backbones.mlp(), inner_steps=1)
    >>> learner.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse", metrics=["mse"])
    >>> heldout = tfmeta.callbacks.EpisodeEvaluation(
    ...     tfmeta.data.sinusoid(meta_batch_size=5, seed=1), steps=4, every_n_steps=2)
    >>> history = learner.fit(tfmeta.data.sinusoid(meta_batch_size=4), steps_per_epoch=4,
    ...                       callbacks=[heldout], verbose=0)
    >>> heldout.history["step"], sorted(history.history)[:3]
    ([2, 4], ['heldout_loss', 'heldout_mse', 'heldout_mse_ci95'])

    """

    def __init__(
        self,
        episodes: Any,
        steps: int | None = None,
        every_n_steps: int | None = None,
        at_epoch_end: bool = True,
        metrics: Sequence[str | EpisodicMetric] | None = None,
        prefix: str = "heldout",
        verbose: int = 0,
    ):
        super().__init__()
        for argument, value in (("steps", steps), ("every_n_steps", every_n_steps)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise ValueError(
                    f"Invalid value for argument `{argument}`: expected a positive integer or "
                    f"None. Received: {argument}={value!r}"
                )
        if every_n_steps is None and not at_epoch_end:
            raise ValueError(
                "Invalid arguments: with every_n_steps=None and at_epoch_end=False the "
                "callback never evaluates. Expected `every_n_steps` or at_epoch_end=True. "
                f"Received: every_n_steps={every_n_steps}, at_epoch_end={at_epoch_end}"
            )
        if not isinstance(prefix, str) or not prefix:
            raise ValueError(
                "Invalid value for argument `prefix`: expected a non-empty string. "
                f"Received: prefix={prefix!r}"
            )
        if isinstance(episodes, (str, bytes, dict)) or not (
            isinstance(episodes, (tf.data.Dataset, tuple)) or isinstance(episodes, Iterable)
        ):
            raise ValueError(
                "Invalid value for argument `episodes`: expected a tf.data.Dataset or an "
                "iterable of meta-batches (inputs, query_y). Received: "
                f"episodes of type {type(episodes).__name__}"
            )
        if (isinstance(episodes, tf.data.Dataset) and steps is None
                and episodes.cardinality() == tf.data.INFINITE_CARDINALITY):
            raise ValueError(
                "Invalid value for argument `steps`: `episodes` is an endless dataset, so the "
                "number of meta-batches to hold out must be given. Received: steps=None"
            )
        self.episodes = episodes
        self.steps = steps
        self.every_n_steps = every_n_steps
        self.at_epoch_end = bool(at_epoch_end)
        self.metrics = None if metrics is None else [_episodic_metric(m) for m in metrics]
        self.prefix = prefix
        self.verbose = verbose
        self.history: dict[str, list] = {}
        self._batches: list | None = None
        self._latest: dict[str, float] = {}
        self._latest_step: int | None = None
        self._next_step: int | None = None
        self._epoch = 0

    # === The held-out episodes ===

    def episode_batches(self) -> list[tuple[dict[str, np.ndarray], np.ndarray]]:
        """The cached held-out meta-batches `(inputs, query_y)`, read on the first call."""
        if self._batches is None:
            self._batches = _read_batches(self.episodes, self.steps)
        return self._batches

    @property
    def num_episodes(self) -> int:
        """The number of held-out episodes (tasks) each evaluation averages over."""
        return sum(len(query_y) for _, query_y in self.episode_batches())

    # === Evaluation ===

    def evaluate(self) -> dict[str, float]:
        """Evaluates `self.model` on the held-out episodes; returns the log entries."""
        batches = self.episode_batches()
        metrics = self.metrics
        if metrics is None:
            integer = np.issubdtype(batches[0][1].dtype, np.integer)
            metrics = [EpisodicAccuracy() if integer else EpisodicMeanSquaredError()]
        values = {metric.name: [] for metric in metrics}
        losses = []
        for inputs, query_y in batches:
            y_pred = self.model.predict_on_batch(inputs)
            for metric in metrics:
                values[metric.name].append(np.asarray(metric.episode_values(query_y, y_pred)))
            if getattr(self.model, "_compile_loss", None) is not None:
                loss = self.model.compute_loss(x=inputs, y=query_y, y_pred=y_pred,
                                               training=False)
                losses.append(float(loss))
        results = {}
        if losses:
            results[f"{self.prefix}_loss"] = float(np.mean(losses))
        for name, per_batch in values.items():
            mean, ci95 = mean_confidence_interval(np.concatenate(per_batch))
            results[f"{self.prefix}_{name}"] = mean
            results[f"{self.prefix}_{name}_ci95"] = ci95
        return results

    def _evaluate_and_record(self, step: int) -> None:
        self._latest = self.evaluate()
        self._latest_step = step
        for key, value in {"step": step, "epoch": self._epoch, **self._latest}.items():
            self.history.setdefault(key, []).append(value)
        if self.verbose:
            summary = ", ".join(f"{key}={value:.4f}" for key, value in self._latest.items())
            io_utils.print_msg(
                f"\nEpisodeEvaluation at step {step} ({self.num_episodes} episodes): {summary}"
            )

    def _current_step(self) -> int:
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None:
            return 0
        return int(keras.ops.convert_to_numpy(optimizer.iterations))

    # === Callback hooks ===

    def on_train_begin(self, logs=None):
        self.episode_batches()
        if self.every_n_steps is not None:
            step = self._current_step()
            self._next_step = (step // self.every_n_steps + 1) * self.every_n_steps

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.every_n_steps is None:
            return
        step = self._current_step()
        if step >= self._next_step:
            self._evaluate_and_record(step)
            self._next_step = (step // self.every_n_steps + 1) * self.every_n_steps
            if logs is not None:
                logs.update(self._latest)

    def on_epoch_end(self, epoch, logs=None):
        step = self._current_step()
        if self.at_epoch_end and self._latest_step != step:
            self._evaluate_and_record(step)
        if logs is not None:
            logs.update(self._latest)


def _episodic_metric(metric: str | EpisodicMetric) -> EpisodicMetric:
    if isinstance(metric, EpisodicMetric):
        return metric
    if isinstance(metric, str) and metric in _METRIC_NAMES:
        metric_class, name = _METRIC_NAMES[metric]
        return metric_class(name=name)
    raise ValueError(
        "Invalid value for argument `metrics`: expected names among "
        f"{sorted(_METRIC_NAMES)} or tfmeta.metrics instances. Received: {metric!r}"
    )


def _read_batches(episodes: Any, steps: int | None) -> list:
    """Reads (and checks) the meta-batches of `episodes` into NumPy arrays, once."""
    if isinstance(episodes, tf.data.Dataset):
        if steps is not None:
            episodes = episodes.take(steps)
        elements: Iterable = episodes.as_numpy_iterator()
    elif isinstance(episodes, tuple) and len(episodes) == 2 and isinstance(episodes[0], dict):
        elements = [episodes]  # A single meta-batch.
    else:
        elements = episodes if steps is None else itertools.islice(episodes, steps)
    batches = []
    for index, element in enumerate(elements):
        if not (isinstance(element, (tuple, list)) and len(element) == 2
                and isinstance(element[0], dict)
                and all(key in element[0] for key in _EPISODE_KEYS)):
            raise ValueError(
                "Invalid value for argument `episodes`: expected meta-batches (inputs, query_y) "
                f"with inputs a dict of {list(_EPISODE_KEYS)}. Received: element {index} of "
                f"type {type(element).__name__}"
            )
        inputs, query_y = element
        batches.append(({key: np.asarray(inputs[key]) for key in _EPISODE_KEYS},
                        np.asarray(query_y)))
    if not batches:
        raise ValueError(
            "Invalid value for argument `episodes`: expected at least one meta-batch. "
            "Received: no elements"
        )
    return batches
