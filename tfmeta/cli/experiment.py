"""`Experiment`: every setting of a training run, checked, and saved as JSON in the model folder."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tfmeta import data
from tfmeta.backbones.initialization import DEFAULT_KERNEL_INITIALIZER, KERNEL_INITIALIZERS
from tfmeta.data.class_splits import class_split_changes

VARIABLE_EPISODES = ("none", "shots", "ways_and_shots")
LEARNERS = ("maml", "fomaml", "proto_maml", "reptile", "protonet")
# Learners built as tfmeta.MAML (proto_maml: MAML with --head_init=prototypes).
MAML_LEARNERS = ("maml", "fomaml", "proto_maml")
HEAD_INITS = ("none", "prototypes")
OPTIMIZERS = ("adam", "sgd")
LR_DECAYS = ("none", "step", "linear", "cosine")
INNER_OPTIMIZERS = ("sgd", "adam")
LEARNED_RATES = ("none", "per_parameter", "per_step")
SCHEMES = ("vinyals", "maml", "lake")
BACKBONES = ("conv4", "resnet12", "mlp", "bag_of_ngrams")
# Backbones whose input is raw text (tf.string); every other backbone takes numbers.
TEXT_BACKBONES = ("bag_of_ngrams",)
DISTANCES = ("squared_euclidean", "cosine")
OUTPUT_ACTIVATIONS = ("linear", "tanh")
METAWORLD_BENCHMARKS = ("ML1", "ML10", "ML45")
METAWORLD_STARTS = ("own", "other_tasks")
METAWORLD_QUERY_STARTS = ("own", "moved")

EXPERIMENT_FILE = "experiment.json"
# The key of experiment.json holding the recorded class split (not a setting, not a flag).
CLASS_SPLITS_KEY = "class_splits"

# Settings that may change when an interrupted run is continued in the same model folder:
# they do not change the model, the optimizer state or the meaning of an epoch.
RESUMABLE_CHANGES = frozenset(
    {
        "train_steps",
        "eval_inner_steps",
        "test_ways",
        "test_shots",
        "test_queries",
        "test_episodes",
        "validation_episodes",
        "jit_compile",
        "data_dir",
    }
)


@dataclasses.dataclass(frozen=True)
class Experiment:
    """The settings of one meta-training run (what `tfmeta-train`'s flags describe).

    Field names are the flag names of `tfmeta-train`. `train` writes the experiment to
    `<model_dir>/experiment.json`, so `tfmeta-evaluate` and `tfmeta-export` need only the
    model folder. The `test_*` settings are the defaults of `tfmeta-evaluate` (`None`: the
    training value), so a ProtoNet trained on 60-way episodes evaluates 5-way.

    Args:
        dataset: A registered dataset (`tfmeta.data.list_datasets()`), e.g. "omniglot" or
            "sinusoid" (regression).
        learner: "maml", "fomaml" (first-order MAML), "proto_maml" (MAML with
            `head_init="prototypes"`; with `first_order`, Meta-Dataset's fo-Proto-MAML),
            "reptile" or "protonet".
        ways: Classes per training episode (classification).
        shots: Support examples per class (per task for sinusoid) in training.
        queries: Query examples per class (per task for sinusoid) in training.
        test_ways: Classes per evaluation episode (default: `ways`).
        test_shots: Support examples per class in evaluation (default: `shots`).
        variable: Meta-Dataset's variable episodes, in training and evaluation: "none"
            (fixed N-way K-shot), "shots" (`ways` fixed, shots and queries sampled) or
            "ways_and_shots" (ways uniform in [5, `ways`], so `ways` is the most ways and
            the size of a MAML head; shots and queries sampled).
        max_support: With variable shots, the most support examples of an episode.
        max_queries: With variable episodes, the most query examples per class.
        test_queries: Query examples per class in evaluation (default: `queries`).
        test_episodes: Episodes `tfmeta-evaluate` samples by default.
        meta_batch_size: Episodes per optimizer step.
        inner_steps: SGD steps on the support set in meta-training (MAML, Reptile).
        inner_learning_rate: Step size of those inner SGD steps.
        eval_inner_steps: Adaptation steps in evaluation and serving (default: `inner_steps`).
        first_order: First-order MAML (`learner="fomaml"` implies it).
        transductive: Batch norm uses the episode's statistics in evaluation (MAML, Reptile).
        inner_optimizer: The inner loop's optimizer, "sgd" or "adam" (state fresh per task;
            Reptile's paper uses Adam with `inner_adam_beta_1=0`).
        inner_adam_beta_1: `beta_1` of the inner Adam.
        carry_inner_optimizer_state: The inner Adam's moments and step count carry across
            training tasks, and evaluation starts from them (supervised-reptile's code).
        inner_batch_size: Support examples per inner step, cycling through the support set
            (default: all of it).
        learn_inner_learning_rate: "none", "per_parameter" (Meta-SGD) or "per_step" (MAML++
            LSLR): learned inner learning rates (MAML).
        multi_step_loss_steps: MAML++ multi-step loss, annealed over this many steps.
        first_order_steps: MAML++ derivative-order annealing: first order for this many
            steps, then second order.
        per_step_batch_norm: MAML++ per-step batch-norm weights, biases and statistics.
        optimizer: The meta-optimizer, "adam" or "sgd" (Reptile's outer step is SGD).
        learning_rate: Its (initial) learning rate.
        lr_decay: "none"; "step": times `lr_decay_rate` every `lr_decay_episodes` training
            episodes; "linear": down to `final_learning_rate` at `train_steps`; "cosine":
            cosine annealing to `final_learning_rate` at `train_steps` (MAML++).
        lr_decay_episodes: Training episodes between two "step" decays.
        lr_decay_rate: Factor of each "step" decay.
        final_learning_rate: Learning rate at the end of a "linear" decay.
        train_steps: Meta-optimizer steps in all.
        steps_per_epoch: Steps between two checkpoints / validations / log lines.
        validation_episodes: Validation episodes after each epoch (0: none).
        image_size: Side of the (square) images.
        image_folder: The folder (or zip) of `--dataset=image_folder`, `<class>/<image>`.
        data_dir: The data root the run reads (`--data_dir`, made absolute), so
            `tfmeta-evaluate` finds the same data without being told; None: the environment
            variable `TFMETA_DATA_DIR` at the time of use.
        scheme: Omniglot class split, "vinyals", "maml" or "lake".
        intent_dataset: The folder under `<root>/intent/` of the "intents" dataset, e.g.
            "banking77", "hwu64", "clinc150" or your own.
        class_split: Which class split of the "intents" dataset (`splits/0<class_split>/`).
        drop_intents: Intents (or groups of `tfmeta.data.text.intents.INTENT_GROUPS`) left
            out of the "intents" dataset, e.g. a cross-domain target's (IntentBERT drops
            CLINC150's "clinc150_banking" and "clinc150_credit_cards" before testing on
            BANKING77).
        metaworld_task: The Meta-World task type of `--dataset=metaworld`, e.g. "push-v3",
            or "all" (every type of the split; ML10, ML45).
        metaworld_benchmark: "ML1" (goals of one type), "ML10" or "ML45" (held-out types).
        metaworld_horizon: Steps of each demonstration (and of each rollout).
        metaworld_action_noise: Standard deviation of the demonstrations' action noise.
        metaworld_demonstrations: Demonstrations recorded per goal.
        metaworld_goals: Use only the first this many goals of each task type (default: all).
        metaworld_starts: "own" (an episode's demonstrations are of one goal) or
            "other_tasks" (of one task type, across its goals: ML10's new starts).
        metaworld_query_starts: "own" (query demonstrations from the support's start) or
            "moved" (from other goals' object starts: the moved-start protocol's objective).
        metaworld_moved_demonstrations: With "moved": demonstrations recorded per goal from
            moved starts, one start each.
        backbone: "conv4" or "resnet12" (images), "mlp" (images, vectors), "bag_of_ngrams"
            (raw text: TF-IDF
            n-grams adapted to the training split's sentences, and a learned projection).
        embedding_dim: Width of the bag_of_ngrams projection.
        hash_buckets: bag_of_ngrams: hashed word and character n-grams in this many buckets
            beside the vocabulary's, so that unseen words get features (0: none).
        distance: ProtoNet's "squared_euclidean" (the paper) or "cosine" (with a learned
            scale).
        filters: Filters of each conv4 convolution.
        kernel_initializer: How conv4's and ResNet-12's weights start: "keras" (Glorot
            uniform kernels, zero biases) or "torch" (PyTorch's uniform(+-1/sqrt(fan_in))).
        hidden_units: Widths of the MLP's hidden layers.
        output_activation: The regression MLP's output, "linear" or "tanh" (actions in
            [-1, 1]).
        adapt_layers: MAML: names of the only layers the inner loop adapts (ANIL: the
            output layer, "output"); empty: every layer.
        head_init: MAML: "none" (the meta-learned output layer) or "prototypes"
            (Proto-MAML: the output layer starts each task from the support prototypes;
            `learner="proto_maml"` implies it).
        seed: Seed of the weights and of the training episodes.
        jit_compile: Compile the train step with XLA.

    Example:
    >>> experiment = Experiment(dataset="sinusoid", learner="maml", backbone="mlp", shots=10,
    ...                         queries=10, meta_batch_size=25, train_steps=1000)
    >>> experiment.epochs, experiment.regression
    (10, True)

    """

    dataset: str = "omniglot"
    learner: str = "maml"
    # === Episodes ===
    ways: int = 5
    shots: int = 1
    queries: int = 15
    test_ways: int | None = None
    test_shots: int | None = None
    test_queries: int | None = None
    test_episodes: int = 600
    meta_batch_size: int = 32
    variable: str = "none"
    max_support: int = 500
    max_queries: int = 10
    # === Inner loop (MAML, Reptile) ===
    inner_steps: int = 1
    inner_learning_rate: float = 0.01
    eval_inner_steps: int | None = None
    first_order: bool = False
    transductive: bool = True
    inner_optimizer: str = "sgd"
    inner_adam_beta_1: float = 0.9
    carry_inner_optimizer_state: bool = False
    inner_batch_size: int | None = None
    # === MAML++ (Antoniou et al., 2019) ===
    learn_inner_learning_rate: str = "none"
    multi_step_loss_steps: int | None = None
    first_order_steps: int | None = None
    per_step_batch_norm: bool = False
    # === Meta-optimizer ===
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    lr_decay: str = "none"
    lr_decay_episodes: int = 2000
    lr_decay_rate: float = 0.5
    final_learning_rate: float = 0.0
    # === Budget ===
    train_steps: int = 1000
    steps_per_epoch: int = 100
    validation_episodes: int = 0
    # === Data and model ===
    image_size: int = 28
    image_folder: str | None = None
    data_dir: str | None = None
    scheme: str = "vinyals"
    intent_dataset: str = "banking77"
    class_split: int = 1
    drop_intents: tuple[str, ...] = ()
    metaworld_task: str = "push-v3"
    metaworld_benchmark: str = "ML1"
    metaworld_horizon: int = 200
    metaworld_action_noise: float = 0.1
    metaworld_demonstrations: int = 10
    metaworld_goals: int | None = None
    metaworld_starts: str = "own"
    metaworld_query_starts: str = "own"
    metaworld_moved_demonstrations: int = 4
    backbone: str = "conv4"
    embedding_dim: int = 256
    hash_buckets: int = 0
    distance: str = "squared_euclidean"
    filters: int = 64
    kernel_initializer: str = DEFAULT_KERNEL_INITIALIZER
    hidden_units: tuple[int, ...] = (40, 40)
    output_activation: str = "linear"
    adapt_layers: tuple[str, ...] = ()
    head_init: str = "none"
    seed: int = 0
    jit_compile: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden_units", _int_tuple("hidden_units", self.hidden_units))
        if isinstance(self.data_dir, str | os.PathLike):
            # Absolute, so an evaluation from another working directory reads the same data.
            object.__setattr__(self, "data_dir",
                               str(Path(self.data_dir).absolute()) if str(self.data_dir) else None)
        object.__setattr__(self, "adapt_layers", _name_tuple("adapt_layers", self.adapt_layers))
        object.__setattr__(self, "drop_intents", _name_tuple("drop_intents", self.drop_intents))
        if self.learner == "fomaml":
            object.__setattr__(self, "first_order", True)
        if self.learner == "proto_maml":
            object.__setattr__(self, "head_init", "prototypes")
        # An epoch never holds more steps than the whole run.
        if _is_int(self.steps_per_epoch) and _is_int(self.train_steps):
            object.__setattr__(
                self, "steps_per_epoch", max(1, min(self.steps_per_epoch, self.train_steps))
            )
        self._check()

    # === Derived values ===

    @property
    def regression(self) -> bool:
        """Whether tasks are regression tasks (sinusoid) rather than classification."""
        return data.get_datasets(self.dataset)[0].regression

    @property
    def eval_ways(self) -> int:
        """Classes per evaluation episode."""
        return self.test_ways or self.ways

    @property
    def eval_shots(self) -> int:
        """Support examples per class in evaluation."""
        return self.test_shots or self.shots

    @property
    def eval_queries(self) -> int:
        """Query examples per class in evaluation."""
        return self.test_queries or self.queries

    @property
    def epochs(self) -> int:
        """Keras epochs of `steps_per_epoch` steps (rounded up to cover `train_steps`)."""
        return math.ceil(self.train_steps / self.steps_per_epoch)

    # === Serialization ===

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict.

        Example:
        >>> Experiment().to_dict()["learner"]
        'maml'
        """
        config = dataclasses.asdict(self)
        config["hidden_units"] = list(self.hidden_units)
        config["adapt_layers"] = list(self.adapt_layers)
        return config

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> Experiment:
        """Builds an experiment from `to_dict()`'s output (unknown keys are an error).

        Example:
        >>> Experiment.from_dict({"learner": "protonet"}).learner
        'protonet'
        """
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(config) - names)
        if unknown:
            raise ValueError(
                f"Invalid experiment: unknown settings {unknown}. Expected names among "
                f"{sorted(names)}."
            )
        return cls(**config)

    def save(self, model_dir: str | os.PathLike[str],
             class_splits: Mapping[str, Sequence[str]] | None = None) -> Path:
        """Writes `<model_dir>/experiment.json` (atomically) and returns its path.

        Args:
            model_dir: The run's folder.
            class_splits: The dataset's `{split: class names}` when the split is derived
                from the data (`DatasetSpec.class_splits`), recorded beside the settings
                under "class_splits" so evaluation can check the data still gives it.
        """
        path = Path(model_dir) / EXPERIMENT_FILE
        config = self.to_dict()
        if class_splits is not None:
            config[CLASS_SPLITS_KEY] = {split: sorted(names)
                                        for split, names in class_splits.items()}
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        os.replace(temporary, path)
        return path

    @classmethod
    def load(cls, model_dir: str | os.PathLike[str]) -> Experiment:
        """Reads `<model_dir>/experiment.json`.

        The file is trusted like code: its settings choose the data root, image folder
        and dataset that evaluation and export read, so a run folder is code-equivalent
        input (like a `.keras` file). Its values are checked for consistency, not for
        where they point.

        Raises:
            FileNotFoundError: If the file is missing.
            ValueError: If it is not a valid experiment.

        """
        config = _read_config(model_dir)
        config.pop(CLASS_SPLITS_KEY, None)
        return cls.from_dict(config)

    def differences(self, other: Experiment) -> dict[str, tuple[Any, Any]]:
        """The settings that differ from `other`'s, as `{name: (self's, other's)}`."""
        mine, theirs = self.to_dict(), other.to_dict()
        return {name: (mine[name], theirs[name]) for name in mine if mine[name] != theirs[name]}

    # === Checks ===

    def _check(self) -> None:
        try:
            data.get_datasets(self.dataset)  # One name, or several to mix ("a,b").
        except ValueError as error:
            raise ValueError(str(error).replace("argument `dataset`", "flag `--dataset`").replace(
                "Received: dataset=", "Received: --dataset=")) from None
        _choice("learner", self.learner, LEARNERS)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("lr_decay", self.lr_decay, LR_DECAYS)
        _choice("inner_optimizer", self.inner_optimizer, INNER_OPTIMIZERS)
        _choice("learn_inner_learning_rate", self.learn_inner_learning_rate, LEARNED_RATES)
        _choice("head_init", self.head_init, HEAD_INITS)
        self._check_inner_loop_options()
        _choice("scheme", self.scheme, SCHEMES)
        _choice("backbone", self.backbone, BACKBONES)
        _choice("distance", self.distance, DISTANCES)
        _choice("kernel_initializer", self.kernel_initializer, KERNEL_INITIALIZERS)
        if self.data_dir is not None and not isinstance(self.data_dir, str):
            raise _invalid("data_dir", "a folder path or None", self.data_dir)
        _choice("output_activation", self.output_activation, OUTPUT_ACTIVATIONS)
        _choice("metaworld_benchmark", self.metaworld_benchmark, METAWORLD_BENCHMARKS)
        _choice("metaworld_query_starts", self.metaworld_query_starts, METAWORLD_QUERY_STARTS)
        if not isinstance(self.metaworld_task, str) or not self.metaworld_task:
            raise _invalid("metaworld_task", "a Meta-World task such as push-v3, or all",
                           self.metaworld_task)
        if self.metaworld_goals is not None:
            _positive_int("metaworld_goals", self.metaworld_goals)
        _choice("metaworld_starts", self.metaworld_starts, METAWORLD_STARTS)
        _positive_float("metaworld_action_noise", self.metaworld_action_noise, zero=True)
        if not isinstance(self.intent_dataset, str) or not self.intent_dataset:
            raise _invalid("intent_dataset", "a folder name under <root>/intent/",
                           self.intent_dataset)
        _choice("variable", self.variable, VARIABLE_EPISODES)
        if self.variable == "ways_and_shots" and _is_int(self.ways) and self.ways < 5:
            raise _invalid("ways", "at least 5 with --variable=ways_and_shots (the most ways; "
                           "Meta-Dataset samples 5 or more)", self.ways)
        for name in ("ways", "shots", "queries", "test_episodes", "meta_batch_size",
                     "max_support", "max_queries",
                     "inner_steps", "lr_decay_episodes", "train_steps", "steps_per_epoch",
                     "image_size", "filters", "class_split", "embedding_dim",
                     "metaworld_horizon", "metaworld_demonstrations",
                     "metaworld_moved_demonstrations"):
            _positive_int(name, getattr(self, name))
        for name in ("test_ways", "test_shots", "test_queries", "eval_inner_steps"):
            if getattr(self, name) is not None:
                _positive_int(name, getattr(self, name))
        if not _is_int(self.hash_buckets) or self.hash_buckets < 0:
            raise _invalid("hash_buckets", "a non-negative integer (0: no hashed n-grams)",
                           self.hash_buckets)
        if self.hash_buckets and self.backbone != "bag_of_ngrams":
            raise _invalid("hash_buckets", "0 unless --backbone=bag_of_ngrams",
                           self.hash_buckets)
        if not _is_int(self.validation_episodes) or self.validation_episodes < 0:
            raise _invalid("validation_episodes", "a non-negative integer",
                           self.validation_episodes)
        if not _is_int(self.seed) or not 0 <= self.seed < 2**32:
            # Keras' set_random_seed (the initial weights) takes seeds below 2**32.
            raise _invalid("seed", "an integer between 0 and 2**32 - 1", self.seed)
        for name in ("inner_learning_rate", "learning_rate", "lr_decay_rate"):
            _positive_float(name, getattr(self, name))
        final = self.final_learning_rate
        if (isinstance(final, bool) or not isinstance(final, (int, float)) or not final >= 0
                or not math.isfinite(final)):
            raise _invalid("final_learning_rate", "a non-negative number",
                           self.final_learning_rate)
        if self.regression:
            if self.learner == "protonet":
                raise ValueError(
                    "Invalid value for flag `--learner`: ProtoNet classifies, so it needs a "
                    "classification dataset (--dataset=omniglot). Received: --learner=protonet "
                    f"with --dataset={self.dataset}"
                )
            if self.backbone != "mlp":
                raise ValueError(
                    f"Invalid value for flag `--backbone`: {self.dataset} examples are "
                    "vectors, so they need --backbone=mlp. Received: "
                    f"--backbone={self.backbone}"
                )
        wider_head = self.head_init == "prototypes" and self.eval_ways <= self.ways
        if (self.learner != "protonet" and not self.regression and self.eval_ways != self.ways
                and not wider_head):
            raise ValueError(
                f"Invalid value for flag `--test_ways`: {self.learner}'s model ends in a "
                f"{self.ways}-way logits layer, so it evaluates {self.ways}-way episodes only "
                f"and --test_ways must equal --ways (or be unset; with --head_init=prototypes, "
                f"at most --ways). Received: --ways={self.ways}, "
                f"--test_ways={self.test_ways}"
            )
        text = data.get_datasets(self.dataset)[0].example == "text"
        if text != (self.backbone in TEXT_BACKBONES):
            wanted = ("raw text, so they need a text backbone (--backbone="
                      + "|".join(TEXT_BACKBONES) + ")") if text else (
                "numbers, so they need --backbone=conv4, resnet12 or mlp (a text backbone takes "
                "strings)")
            raise ValueError(
                f"Invalid value for flag `--backbone`: {self.dataset} examples are {wanted}. "
                f"Received: --backbone={self.backbone} with --dataset={self.dataset}"
            )
        if (self.jit_compile and self.learner == "protonet" and not self.regression
                and self.eval_ways != self.ways):
            raise ValueError(
                "Invalid value for flag `--test_ways`: with --jit_compile, ProtoNet's number of "
                "ways is fixed when it is built, so --test_ways must equal --ways. Received: "
                f"--ways={self.ways}, --test_ways={self.test_ways} (or leave --jit_compile off)"
            )

    def _check_inner_loop_options(self) -> None:
        """Refuses inner-loop and MAML++ settings that the chosen learner cannot honour."""
        for name in ("inner_batch_size", "multi_step_loss_steps", "first_order_steps"):
            if getattr(self, name) is not None:
                _positive_int(name, getattr(self, name))
        beta = self.inner_adam_beta_1
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0 <= beta < 1:
            raise _invalid("inner_adam_beta_1", "a number in [0, 1)", beta)
        maml_only = {"learn_inner_learning_rate": self.learn_inner_learning_rate != "none",
                     "adapt_layers": bool(self.adapt_layers),
                     "multi_step_loss_steps": self.multi_step_loss_steps is not None,
                     "first_order_steps": self.first_order_steps is not None,
                     "per_step_batch_norm": self.per_step_batch_norm,
                     "head_init": self.head_init != "none"}
        inner = {"inner_optimizer": self.inner_optimizer != "sgd",
                 "inner_batch_size": self.inner_batch_size is not None,
                 "carry_inner_optimizer_state": self.carry_inner_optimizer_state}
        refused = {name for name, used in maml_only.items()
                   if used and self.learner not in MAML_LEARNERS}
        refused |= {name for name, used in inner.items() if used and self.learner == "protonet"}
        if self.carry_inner_optimizer_state and self.inner_optimizer == "sgd":
            raise ValueError(
                "Invalid value for flag `--carry_inner_optimizer_state`: plain SGD has no state "
                "to carry; it needs --inner_optimizer=adam. Received: "
                "--carry_inner_optimizer_state=True, --inner_optimizer=sgd"
            )
        if refused:
            name = sorted(refused)[0]
            raise ValueError(
                f"Invalid value for flag `--{name}`: --learner={self.learner} cannot honour it "
                f"(it is an option of {'MAML' if name in maml_only else 'MAML and Reptile'}). "
                f"Received: --{name}={getattr(self, name)!r}"
            )


def recorded_class_splits(model_dir: str | os.PathLike[str]) -> dict[str, list[str]] | None:
    """The `{split: class names}` the run in `model_dir` recorded, or None if it has none."""
    path = Path(model_dir) / EXPERIMENT_FILE
    if not path.is_file():
        return None
    recorded = _read_config(model_dir).get(CLASS_SPLITS_KEY)
    if recorded is None:
        return None
    if not isinstance(recorded, dict) or not all(
            isinstance(names, list) and all(isinstance(name, str) for name in names)
            for names in recorded.values()):
        raise ValueError(f'{path}: "{CLASS_SPLITS_KEY}" should map split names to lists of '
                         "class names.")
    return recorded


def check_class_splits(model_dir: str | os.PathLike[str],
                       current: Mapping[str, Sequence[str]] | None, action: str) -> None:
    """Refuses data whose class split is not the one the run in `model_dir` recorded.

    Args:
        model_dir: The run's folder.
        current: The data's `{split: class names}` today, or None (nothing to compare).
        action: What would be done with the run ("evaluated", "continued").

    Raises:
        ValueError: In one line naming the classes added, removed or moved.
    """
    recorded = recorded_class_splits(model_dir)
    if recorded is None or current is None:
        return
    changes = class_split_changes(recorded, current)
    if changes:
        raise ValueError(
            f"Invalid data for the run in {model_dir}: the dataset no longer gives the class "
            f"split the run was trained on (recorded in its {EXPERIMENT_FILE}): {changes}. The "
            f"run cannot be {action} on it, as its splits would share classes; restore the "
            "data as it was trained on, or train a new run."
        )


def _read_config(model_dir: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(model_dir) / EXPERIMENT_FILE
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path} should hold a JSON object of settings.")
    return config


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _invalid(name: str, expected: str, value: Any) -> ValueError:
    return ValueError(
        f"Invalid value for flag `--{name}`: expected {expected}. Received: --{name}={value!r}"
    )


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise _invalid(name, "one of " + ", ".join(choices), value)


def _positive_int(name: str, value: Any) -> None:
    if not _is_int(value) or value < 1:
        raise _invalid(name, "a positive integer", value)


def _positive_float(name: str, value: Any, zero: bool = False) -> None:
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not (value >= 0 if zero else value > 0) or not math.isfinite(value)):
        raise _invalid(name, f"a {'non-negative' if zero else 'positive'} finite number", value)


def _int_tuple(name: str, value: Any) -> tuple[int, ...]:
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    try:
        units = tuple(int(unit) for unit in value)
    except (TypeError, ValueError):
        raise _invalid(name, "a comma-separated list of positive integers", value) from None
    if not units or min(units) < 1:
        raise _invalid(name, "a comma-separated list of positive integers", value)
    return units


def _name_tuple(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = value.split(",")
    try:
        names = tuple(str(part).strip() for part in value)
    except TypeError:
        raise _invalid(name, "a comma-separated list of layer names", value) from None
    return tuple(part for part in names if part)
