"""Test-time adaptation for a new domain: what a learner fits on each support set."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import keras

from tfmeta.data.arguments import check_float, check_int_in_range, check_seed, invalid_value
from tfmeta.learners.inner_optimizers import inner_optimizer_from
from tfmeta.learners.support_augmentation import AUGMENTATIONS

METHODS = ("finetune", "tsa")
# P>M>F fine-tunes 50 steps of SGD with momentum 0.9 (its rate searched per domain); TSA
# (Li et al.) takes 40 steps of Adadelta, whose first steps are tiny, which the inner loop
# does not have. Chosen on a conv4 ProtoNet trained on Tiny ImageNet at 32 px, tested on
# Omniglot 5-way 1-/5-shot (100 episodes; benchmarks/RESULTS.md): un-adapted 67.0/88.1%;
# TSA, Adam 5e-4: 69.5/90.1% (at 5e-3: 64.6/86.4%, Adam moves every entry of the alignment
# by about the rate at each step); finetune, Adam 1e-3: 68.7/88.9% (SGD with momentum 0.9
# at 0.01: 66.7/87.7%).
DEFAULTS = {
    "finetune": {"steps": 50, "learning_rate": 0.001, "optimizer": "adam"},
    "tsa": {"steps": 40, "learning_rate": 0.0005, "optimizer": "adam"},
}
OPTIMIZER_NAMES = ("sgd", "sgd_momentum", "adam")


@dataclasses.dataclass(frozen=True)
class TestTimeAdaptation:
    """How a metric or pre-trained learner adapts to each support set at test time.

    Both methods fit weights to the support set by the prototype loss, in the inner loop
    of `tfmeta.GradientLearner` (`steps` optimizer steps on one task, fresh every
    episode): each support example is classified against the prototypes of the support
    set (the learner's distance; softmax cross-entropy), with gradients through both.
    The backbone's batch norm uses its moving statistics, as `predict` does. Then the
    queries are predicted from the adapted features.

    - `"finetune"` (Meta-Dataset's Finetune baseline; P>M>F, Hu et al. CVPR 2022): every
      trainable weight of the encoder is fine-tuned.
    - `"tsa"` (Li, Liu and Bilen, CVPR 2022): the encoder is frozen; a 1x1 convolution
      beside each of its convolutions (`tfmeta.layers.ResidualAdapter`, zero at the start)
      and a linear map of the features (the pre-classifier alignment, the identity at the
      start) are fitted (`tfmeta.learners.task_adapters`). With `steps=0` it is the
      un-adapted learner exactly.

    Meta-training is unchanged: these are test-time options (`fit` trains as without
    them; `evaluate`, `predict`, `adapt_step` and the exports adapt). A task's state
    (`adapt_step`, the export's `adapt`) is the adapted weights (every encoder weight,
    or the adapters and the alignment), then what the learner predicts with (ProtoNet's
    prototypes, Baseline's episode head); an export's `embed` signature stays the
    un-adapted encoder's. LiteRT exports (`builtin_ops`) are refused: the adaptation
    takes gradients through the encoder.

    Args:
        method: "finetune" or "tsa".
        steps: Optimizer steps per support set (0: none). Default 50 (finetune), 40 (tsa).
        learning_rate: The step size. Default 0.001 (finetune), 0.0005 (tsa).
        optimizer: "sgd", "sgd_momentum" (SGD with momentum 0.9), "adam", or a
            `keras.optimizers.SGD`/`Adam` instance (its settings and learning rate).
            Default "adam".
        augmentation: None, or "flip_and_shift": every step sees a new seeded random
            flip and shift of each support image (`tfmeta.learners.support_augmentation`),
            prototypes and classified examples alike; images only.
        seed: Seed of the augmentation (the same seed, the same predictions).

    Example:
    >>> import tfmeta
    >>> adaptation = tfmeta.TestTimeAdaptation("tsa", steps=20)
    >>> adaptation.steps, adaptation.learning_rate, adaptation.optimizer
    (20, 0.0005, 'adam')
    """

    __test__ = False  # Not a pytest test class, whatever its name.

    method: str
    steps: int | None = None
    learning_rate: float | None = None
    optimizer: Any = None
    augmentation: str | None = None
    seed: int = 0

    def __post_init__(self):
        if self.method not in METHODS:
            raise invalid_value("method", f"one of {METHODS}", self.method)
        defaults = DEFAULTS[self.method]
        steps = defaults["steps"] if self.steps is None else self.steps
        steps = check_int_in_range("steps", steps, low=0)
        optimizer = defaults["optimizer"] if self.optimizer is None else self.optimizer
        if isinstance(optimizer, dict):
            optimizer = keras.optimizers.deserialize(optimizer)
        rate = self.learning_rate
        if isinstance(optimizer, keras.optimizers.Optimizer):
            own = float(optimizer.get_config()["learning_rate"])
            if rate is not None and not math.isclose(float(rate), own, rel_tol=1e-6):
                raise ValueError(
                    "Invalid value for argument `learning_rate`: the optimizer instance "
                    f"has its own ({own}); give one or the other. Received: "
                    f"learning_rate={rate!r}"
                )
            rate = own
        elif optimizer not in OPTIMIZER_NAMES:
            raise invalid_value("optimizer", f"one of {OPTIMIZER_NAMES} or a "
                                "keras.optimizers.SGD/Adam instance", optimizer)
        rate = defaults["learning_rate"] if rate is None else rate
        rate = check_float("learning_rate", rate)
        try:
            inner_optimizer_from(_keras_optimizer(optimizer, rate))
        except ValueError as error:
            raise ValueError(str(error).replace("inner_optimizer", "optimizer")) from None
        if self.augmentation is not None and self.augmentation not in AUGMENTATIONS:
            raise invalid_value("augmentation", f"None or one of {AUGMENTATIONS}",
                                self.augmentation)
        for name, value in (("steps", steps), ("learning_rate", rate),
                            ("optimizer", optimizer), ("seed", check_seed(self.seed))):
            object.__setattr__(self, name, value)

    @property
    def inner_optimizer(self) -> Any:
        """The optimizer as the inner loop takes it (a name or a Keras SGD/Adam)."""
        return _keras_optimizer(self.optimizer, self.learning_rate)

    def get_config(self) -> dict[str, Any]:
        optimizer = self.optimizer
        if not isinstance(optimizer, str):
            optimizer = keras.optimizers.serialize(optimizer)
        return {"method": self.method, "steps": self.steps, "learning_rate": self.learning_rate,
                "optimizer": optimizer, "augmentation": self.augmentation, "seed": self.seed}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TestTimeAdaptation:
        return cls(**config)


def _keras_optimizer(optimizer: Any, learning_rate: float) -> Any:
    if optimizer == "sgd_momentum":
        return keras.optimizers.SGD(learning_rate=learning_rate, momentum=0.9)
    return optimizer


def as_test_time_adaptation(value: Any, learner: str,
                            methods: tuple[str, ...] = METHODS) -> TestTimeAdaptation | None:
    """The `test_time_adaptation` argument as a `TestTimeAdaptation` (or None).

    Args:
        value: None, a method name ("finetune", "tsa": its defaults), a config dict, or a
            `TestTimeAdaptation`.
        learner: The learner's class name, for errors.
        methods: The methods that learner can use.

    Raises:
        ValueError: In one line naming `test_time_adaptation`.

    Example:
    >>> as_test_time_adaptation("finetune", "ProtoNet").steps
    50
    """
    if value is None:
        return None
    if isinstance(value, str):
        if value not in methods:
            raise invalid_value("test_time_adaptation",
                                f"None, one of {methods} or a tfmeta.TestTimeAdaptation "
                                f"(for {learner})", value)
        return TestTimeAdaptation(value)
    if isinstance(value, dict):
        value = TestTimeAdaptation.from_config(value)
    if not isinstance(value, TestTimeAdaptation):
        raise invalid_value("test_time_adaptation",
                            f"None, one of {methods} or a tfmeta.TestTimeAdaptation", value)
    if value.method not in methods:
        raise invalid_value("test_time_adaptation", f"a method among {methods} for {learner}",
                            value.method)
    return value
