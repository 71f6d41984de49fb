"""Loading a trained learner and evaluating it: mean and 95% interval over test episodes."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tfmeta import data, metrics
from tfmeta.cli import builders, paths
from tfmeta.cli.experiment import EXPERIMENT_FILE, Experiment
from tfmeta.cli.training import LEARNER_FILE, evaluation_batch_size
from tfmeta.data.episode_shape import MAX_WAYS
from tfmeta.learners import GradientLearner, MetaLearner, ProtoNet
from tfmeta.learners.finite import non_finite_weights
from tfmeta.learners.padding import QUERY_MASK, real_mask


@dataclasses.dataclass(frozen=True)
class EvaluationResult:
    """The mean of a per-episode metric over test episodes and its 95% confidence interval.

    Attributes:
        metric: "accuracy" (classification) or "mse" (regression).
        mean: The mean over episodes.
        ci95: The half-width `1.96 * std / sqrt(episodes)`, or None for one episode
            (the interval is undefined).
        episodes: The number of episodes.
        ways: Classes per episode (None for regression and for variable ways).
        shots: Support examples per class (per task for regression; None for variable
            episodes, Meta-Dataset's).
        test_time_adaptation: The `tfmeta.TestTimeAdaptation` config the learner adapted
            with at test time, or None (then left out of `to_dict`).

    Example:
    >>> print(EvaluationResult("accuracy", 0.98712, 0.00213, 1000, 5, 1))
    accuracy: 0.9871 ± 0.0021 (95% CI, 1000 episodes, 5-way 1-shot)
    >>> print(EvaluationResult("accuracy", 0.8, None, 1, 5, 1))
    accuracy: 0.8000 (1 episode: the 95% CI is undefined, 5-way 1-shot)

    """

    metric: str
    mean: float
    ci95: float | None
    episodes: int
    ways: int | None
    shots: int | None
    test_time_adaptation: dict[str, Any] | None = None

    def __str__(self) -> str:
        setting = "variable-shot" if self.shots is None else f"{self.shots}-shot"
        if self.ways is not None:
            setting = f"{self.ways}-way {setting}"
        elif self.metric == "accuracy":
            setting = f"variable-way {setting}"
        adaptation = self.test_time_adaptation
        if adaptation is not None:
            setting += (f", test-time adaptation {adaptation['method']}: {adaptation['steps']} "
                        f"steps at {adaptation['learning_rate']:g}")
        if self.ci95 is None:
            return (f"{self.metric}: {self.mean:.4f} ({self.episodes} episode: the 95% CI is "
                    f"undefined, {setting})")
        return (f"{self.metric}: {self.mean:.4f} ± {self.ci95:.4f} "
                f"(95% CI, {self.episodes} episodes, {setting})")

    def to_dict(self) -> dict[str, Any]:
        """`{"metric", "mean", "ci95", "episodes", "ways", "shots"}`, ready for JSON.

        Also `"test_time_adaptation"` (its config) when the learner adapted at test time.
        A value that is not a finite number (never produced by `evaluate`) becomes None,
        so the JSON is always valid.
        """
        result = {name: None if isinstance(value, float) and not math.isfinite(value) else value
                  for name, value in dataclasses.asdict(self).items()}
        if result["test_time_adaptation"] is None:
            del result["test_time_adaptation"]
        return result

    def write_json(self, path: str | os.PathLike[str]) -> Path:
        """Writes `to_dict()` as JSON to `path` (parent folders created) and returns it."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return paths.write_text_atomically(
            path, json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n")


def trained_experiment(model_dir: str | os.PathLike[str]) -> Experiment | None:
    """The `Experiment` of the run in `model_dir` (its experiment.json), or None.

    Runs no TensorFlow operation, so a command can choose its threads from it first.
    """
    if not (Path(model_dir) / EXPERIMENT_FILE).is_file():
        return None  # load_trained says what is missing.
    return Experiment.load(model_dir)


def load_trained(model_dir: str | os.PathLike[str]) -> tuple[MetaLearner, Experiment]:
    """Loads `<model_dir>/learner.keras` and its `experiment.json`, compiled for evaluation.

    A run folder is code-equivalent input, like any `.keras` file: its `experiment.json`
    decides which folders are read (the data root, an image folder, the dataset), and
    nothing here second-guesses it. Load only run folders you wrote or trust.

    Args:
        model_dir: A folder written by `tfmeta-train` / `tfmeta.cli.training.train`.

    Returns:
        `(learner, experiment)`; the learner is compiled with the experiment's loss
        (which MAML and Reptile adapt with) and metric.

    Raises:
        FileNotFoundError: If the folder holds no trained learner.
        ValueError: If `learner.keras` cannot be read, or holds NaN or infinite
            weights (a diverged run).

    """
    model_dir = Path(model_dir)
    learner_path = model_dir / LEARNER_FILE
    missing = [path.name for path in (learner_path, model_dir / EXPERIMENT_FILE)
               if not path.is_file()]
    if missing:
        where = "does not exist" if not model_dir.exists() else f"has no {' or '.join(missing)}"
        raise FileNotFoundError(
            f"No trained model in --model_dir={model_dir}: the folder {where}. Train one "
            f"first with `tfmeta-train --model_dir={model_dir} ...`."
        )
    experiment = Experiment.load(model_dir)
    try:
        learner = keras.saving.load_model(learner_path, compile=False)
    except Exception as error:  # noqa: BLE001 - any failure means an unusable file.
        reason = " ".join(str(error).split())[:300] or type(error).__name__
        raise ValueError(
            f"Invalid `--model_dir`: {learner_path} is not a readable Keras model (corrupt or "
            f"truncated: {type(error).__name__}: {reason}). Train again with `tfmeta-train "
            f"--model_dir={model_dir}` (the backup/ folder resumes it)."
        ) from None
    bad = non_finite_weights(learner)
    if bad:
        raise ValueError(
            f"Invalid `--model_dir`: {learner_path} holds NaN or infinite weights ({len(bad)} "
            f"of {len(learner.weights)}, e.g. {bad[0]}): the run diverged, so it can be "
            "neither evaluated nor exported. Train again with a lower --learning_rate or "
            "--inner_learning_rate."
        )
    builders.compile_learner(learner, experiment)
    return learner, experiment


def evaluate(
    learner: MetaLearner,
    experiment: Experiment,
    *,
    split: str = "test",
    ways: int | None = None,
    shots: int | None = None,
    queries: int | None = None,
    episodes: int | None = None,
    inner_steps: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    data_dir: str | os.PathLike[str] | None = None,
    dataset: str | None = None,
    image_size: int | None = None,
    intent_dataset: str | None = None,
    class_split: int | None = None,
    variable: str | None = None,
    max_support: int | None = None,
    max_queries: int | None = None,
    test_time_adaptation: Any = None,
) -> EvaluationResult:
    """Evaluates `learner` on `episodes` new episodes of `split`, in meta-batches.

    Every episode counts once: its query accuracy (or MSE) is one value, and
    the result is their mean with the interval of
    `tfmeta.metrics.mean_confidence_interval`. The episodes depend only on
    `seed`, so two evaluations of the same setting see the same episodes.

    Args:
        learner: A compiled learner (see `load_trained`).
        experiment: Its experiment, which gives the dataset and the defaults.
        split: "test" (default), "validation" or "train".
        ways: Classes per episode (default: the experiment's test ways).
        shots: Support examples per class (default: the experiment's test shots).
        queries: Query examples per class (default: the experiment's test queries).
        episodes: How many episodes (default: the experiment's `test_episodes`).
        inner_steps: Adaptation steps of MAML / Reptile, 0 for none (default:
            the learner's `eval_inner_steps`).
        batch_size: Episodes per batch (default: about a training step's worth).
        seed: Seed of the episode stream.
        data_dir: The data root (default: the one the run was trained on, its
            experiment's `data_dir`, else `$TFMETA_DATA_DIR`).
        dataset: Cross-domain evaluation: another registered dataset (e.g. "omniglot" for
            a model trained on "tiny_imagenet"); its images are converted to the model's
            example shape (size and channels, `tfmeta.data.convert_images`) with one
            warning. Refused where it cannot work (text against images, regression
            against classification).
        image_size: The side at which `dataset`'s images are read (default: the run's).
        intent_dataset: Cross-domain evaluation of a text model: another folder under
            `<root>/intent/` (e.g. "clinc150" for a model trained on "banking77"); its
            sentences need no conversion, and the run's `drop_intents` (its training
            side's) do not apply to it.
        class_split: The class split of the intent dataset evaluated (default: the run's).
        variable: Meta-Dataset's variable episodes instead of the run's own kind: "none",
            "shots" (`ways` fixed) or "ways_and_shots" (`ways` is then the most ways,
            default 50; `shots` and `queries` are sampled).
        max_support: With variable shots, the most support examples (default: the run's).
        max_queries: With variable episodes, the most queries per class (default: the
            run's).
        test_time_adaptation: None, "finetune", "tsa" or a `tfmeta.TestTimeAdaptation`:
            evaluate the trained ProtoNet adapting to each support set at test time
            (`ProtoNet.with_test_time_adaptation`, on the same encoder).

    Returns:
        An `EvaluationResult`.

    Raises:
        ValueError: For settings the learner or the data cannot serve.

    """
    data_dir = experiment.data_dir if data_dir is None else data_dir
    source = _evaluation_source(experiment, dataset, image_size, intent_dataset, class_split)
    source = _episode_kind(source, variable, max_support, max_queries)
    ways_given = ways is not None
    # A run trained on other episodes gets Meta-Dataset's most ways, min(50, the split's
    # classes): the sampler's default (MAX_WAYS bounds the batch size here).
    sampler_ways = not ways_given and source.variable == "ways_and_shots" != experiment.variable
    if sampler_ways:
        ways = MAX_WAYS
    ways = experiment.eval_ways if ways is None else ways
    shots = experiment.eval_shots if shots is None else shots
    queries = experiment.eval_queries if queries is None else queries
    episodes = experiment.test_episodes if episodes is None else episodes
    for name, value in (("ways", ways), ("shots", shots), ("queries", queries),
                        ("episodes", episodes)):
        _check_positive(name, value)
    if batch_size is not None:
        _check_positive("batch_size", batch_size)
    if inner_steps is not None and (isinstance(inner_steps, bool) or inner_steps < 0):
        raise ValueError(
            "Invalid value for flag `--inner_steps`: expected a non-negative integer. "
            f"Received: --inner_steps={inner_steps}"
        )
    if inner_steps is not None and not isinstance(learner, GradientLearner):
        raise ValueError(
            "Invalid value for flag `--inner_steps`: only MAML and Reptile adapt with inner "
            f"steps. Received: --inner_steps={inner_steps} for {type(learner).__name__}"
        )
    _check_ways(learner, experiment, ways, given=ways_given)
    if test_time_adaptation is not None:
        learner = _adapting_at_test_time(learner, experiment, test_time_adaptation)
    batch = batch_size or evaluation_batch_size(experiment, episodes, ways, shots, queries)
    batch = min(batch, episodes)

    # Episodes are drawn one at a time, so they depend on the seed and not on the batch size.
    episode_stream = builders.episodes(source, split, ways=None if sampler_ways else ways,
                                       shots=shots, queries=queries, meta_batch_size=1,
                                       seed=seed, data_dir=data_dir)
    if source is not experiment:
        episode_stream = _converted(episode_stream, source, experiment)
    dataset = builders.dynamic_meta_batch(episode_stream, batch)
    episode_values = _episode_values_fn(learner, experiment, inner_steps)
    values = []
    for inputs, query_y in dataset.take(math.ceil(episodes / batch)):
        values.append(episode_values(inputs, query_y).numpy())
    values = np.concatenate(values)[:episodes]
    metric = "mse" if experiment.regression else "accuracy"
    non_finite = int(np.count_nonzero(~np.isfinite(values)))
    if non_finite:
        raise FloatingPointError(
            f"Evaluation failed: {non_finite} of {values.size} episodes gave a NaN or infinite "
            f"{metric} (NaN or infinite weights or data); no result was written."
        )
    mean, ci95 = metrics.mean_confidence_interval(values)
    return EvaluationResult(
        metric=metric,
        mean=mean,
        ci95=ci95 if values.size > 1 else None,
        episodes=int(values.size),
        ways=None if experiment.regression or source.variable == "ways_and_shots" else ways,
        shots=None if source.variable != "none" and not experiment.regression else shots,
        test_time_adaptation=None if test_time_adaptation is None
        else learner.test_time_adaptation.get_config(),
    )


def _adapting_at_test_time(learner: MetaLearner, experiment: Experiment,
                           test_time_adaptation: Any) -> MetaLearner:
    """The learner on the same weights, compiled, adapting at test time."""
    if not hasattr(learner, "with_test_time_adaptation"):
        raise ValueError(
            "Invalid value for flag `--test_time_adaptation`: test-time adaptation (finetune, "
            "tsa) is an option of ProtoNet (Baseline in Python), whose support loss is "
            f"the prototype loss. Received: --test_time_adaptation for "
            f"{type(learner).__name__}"
        )
    return builders.compile_learner(learner.with_test_time_adaptation(test_time_adaptation),
                                    experiment)


def _evaluation_source(experiment: Experiment, dataset: str | None, image_size: int | None,
                       intent_dataset: str | None = None,
                       class_split: int | None = None) -> Experiment:
    """The experiment whose dataset gives the evaluation episodes (`dataset`, if given)."""
    if dataset is None and image_size is None and intent_dataset is None and (
            class_split is None):
        return experiment
    if image_size is not None:
        _check_positive("image_size", image_size)
    if class_split is not None:
        _check_positive("class_split", class_split)
    name = experiment.dataset if dataset is None else dataset
    try:
        target = data.get_datasets(name)[0]
    except ValueError as error:
        raise ValueError(str(error).replace("argument `dataset`", "flag `--dataset`").replace(
            "Received: dataset=", "Received: --dataset=")) from None
    trained = data.get_datasets(experiment.dataset)[0]
    if (trained.example, trained.task) != (target.example, target.task):
        raise ValueError(
            f"Invalid value for flag `--dataset`: the model was trained on "
            f"{experiment.dataset} ({trained.example} {trained.task}) and cannot take "
            f"{target.example} {target.task} episodes. Received: --dataset={name}"
        )
    texts = {"intent_dataset": intent_dataset, "class_split": class_split}
    for flag, value in texts.items():
        if value is not None and "intent_dataset" not in target.options:
            raise ValueError(
                f"Invalid value for flag `--{flag}`: it chooses the sentences of "
                f"--dataset=intents, and {name} has none. Received: --{flag}={value}")
    if image_size is not None and target.example != "image":
        raise ValueError(
            f"Invalid value for flag `--image_size`: {name} examples are {target.example}, not "
            f"images. Received: --image_size={image_size}")
    changes = {"dataset": name}
    if image_size is not None:
        changes["image_size"] = image_size
    if class_split is not None:
        changes["class_split"] = class_split
    if intent_dataset is not None and intent_dataset != experiment.intent_dataset:
        # The intents dropped from the training side are the source dataset's.
        changes.update(intent_dataset=intent_dataset, drop_intents=())
    return dataclasses.replace(experiment, **changes)


def _episode_kind(source: Experiment, variable: str | None, max_support: int | None,
                  max_queries: int | None) -> Experiment:
    """`source` with the evaluation's kind of episodes (fixed or Meta-Dataset's variable)."""
    changes = {name: value for name, value in (("variable", variable),
                                               ("max_support", max_support),
                                               ("max_queries", max_queries))
               if value is not None}
    if not changes:
        return source
    if source.regression:
        name = sorted(changes)[0]
        raise ValueError(
            f"Invalid value for flag `--{name}`: variable episodes are classification episodes "
            f"and {source.dataset} is a regression dataset. Received: --{name}={changes[name]!r}"
        )
    return dataclasses.replace(source, **changes)  # Experiment checks the values.


def _converted(episodes: tf.data.Dataset, source: Experiment,
               experiment: Experiment) -> tf.data.Dataset:
    """`source`'s episodes in the example shape the model of `experiment` takes."""
    wanted, given = builders.example_shape(experiment), builders.example_shape(source)
    if wanted == given:
        return episodes
    if len(wanted) != 3:
        raise ValueError(
            f"Invalid value for flag `--dataset`: {source.dataset} examples of shape {given} "
            f"cannot be converted to the model's {wanted}. Received: --dataset={source.dataset}"
        )
    warnings.warn(
        f"Cross-domain evaluation: {source.dataset} images {given} are converted to the "
        f"model's {wanted} (bilinear resizing; greyscale and RGB by repeating or averaging "
        "channels).", stacklevel=3)
    return data.convert_images(episodes, wanted)


def query_predictions(learner: MetaLearner, inputs: Any, inner_steps: int | None = None) -> Any:
    """The learner's query predictions for a meta-batch, optionally with `inner_steps`.

    With `inner_steps=None` this is `learner(inputs, training=False)`; for MAML
    and Reptile an explicit number of adaptation steps (0: the
    meta-initialisation's predictions) replaces `eval_inner_steps`.
    """
    if inner_steps is None:
        return learner(inputs, training=False)
    predictions, _, _ = learner.adapt_and_predict(
        inputs, inner_steps, first_order=True, training=learner.transductive
    )
    return predictions


def _episode_values_fn(learner: MetaLearner, experiment: Experiment, inner_steps: int | None):
    metric = (metrics.EpisodicMeanSquaredError() if experiment.regression
              else metrics.EpisodicAccuracy())

    @tf.function(reduce_retracing=True)
    def episode_values(inputs, query_y):
        if not experiment.regression:  # Padded queries (label -1) stay out of every batch.
            inputs = {**inputs, QUERY_MASK: real_mask(query_y)}
        return metric.episode_values(query_y, query_predictions(learner, inputs, inner_steps))

    return episode_values


def _check_ways(learner: MetaLearner, experiment: Experiment, ways: int,
                given: bool = True) -> None:
    """Raises a `ValueError` when the learner's output cannot be `ways`-way."""
    if experiment.regression:
        return
    if isinstance(learner, ProtoNet):
        fixed = learner.ways
        reason = "it was trained with a static number of ways (--jit_compile)"
    elif experiment.head_init == "prototypes":
        # Proto-MAML's head is set from each episode's prototypes: any ways up to its units.
        if ways > experiment.ways:
            raise ValueError(
                f"Invalid value for flag `--ways`: this Proto-MAML's output layer has "
                f"{experiment.ways} units, so it classifies episodes of at most "
                f"{experiment.ways} ways. Received: --ways={ways}"
                + ("" if given else " (the experiment's test_ways, as --ways was not given)"))
        return
    else:
        fixed = experiment.ways
        reason = f"its model ends in a {experiment.ways}-way logits layer"
    if fixed is not None and fixed != ways:
        raise ValueError(
            f"Invalid value for flag `--ways`: this {type(learner).__name__} can only "
            f"classify {fixed}-way episodes, as {reason}. Received: --ways={ways}"
            + ("" if given else " (the experiment's test_ways, as --ways was not given)")
        )


def _check_positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(
            f"Invalid value for flag `--{name}`: expected a positive integer. "
            f"Received: --{name}={value!r}"
        )
