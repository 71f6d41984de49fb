"""Stateless optimizers for the inner loop: SGD (with momentum) and Adam, state fresh per task.

Keras optimizers keep their state in variables and, on TensorFlow, have no stateless form
(`stateless_apply` is refused there), so they cannot run inside the inner loop, where every
task starts from fresh state and every value must stay a tensor that gradients flow through.
`InnerSGD` and `InnerAdam` apply exactly the update rules of `keras.optimizers.SGD` and
`keras.optimizers.Adam` to tensors, with their state (momentum, first and second moments,
the step count) passed in and returned. `inner_optimizer_from` turns the user's argument
(`"sgd"`, `"adam"` or a Keras `SGD`/`Adam` instance) into one of them and its learning rate.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import tensorflow as tf


class InnerOptimizer:
    """The update rule of one inner-loop optimizer, applied to tensors without variables.

    Subclasses define `initial_state` (per weight, fresh for every task) and `update`.

    Attributes:
        smooth: Whether the update is differentiable everywhere, so that second-order
            MAML can differentiate through it (Adam's `sqrt` of the second moment is not
            at zero).
    """

    name = "inner_optimizer"
    smooth = True

    def initial_state(self, weight: tf.Tensor) -> tuple[tf.Tensor, ...]:
        """The state of one weight at the start of a task."""
        raise NotImplementedError

    def update(
        self, weight: tf.Tensor, gradient: tf.Tensor, state: tuple[tf.Tensor, ...], step: Any,
        learning_rate: Any,
    ) -> tuple[tf.Tensor, tuple[tf.Tensor, ...]]:
        """Returns `(new_weight, new_state)` after one step.

        `step` counts the steps the state has seen before this one, from 0: the inner step
        for fresh state, or a tensor when the state is carried across tasks.
        """
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {}

    def to_keras(self, learning_rate: float) -> keras.optimizers.Optimizer:
        """The Keras optimizer with the same rule (what `get_config` of a learner saves)."""
        raise NotImplementedError


class InnerSGD(InnerOptimizer):
    """`keras.optimizers.SGD`'s rule: plain, with momentum, or Nesterov momentum.

    Example:
    >>> sgd = InnerSGD()
    >>> weight, state = sgd.update(tf.constant(1.0), tf.constant(2.0), sgd.initial_state(
    ...     tf.constant(1.0)), step=0, learning_rate=0.1)
    >>> round(float(weight), 6)
    0.8
    """

    name = "sgd"

    def __init__(self, momentum: float = 0.0, nesterov: bool = False):
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)

    def initial_state(self, weight):
        return (tf.zeros_like(weight),) if self.momentum else ()

    def update(self, weight, gradient, state, step, learning_rate):
        step_size = _as(learning_rate, weight.dtype) * tf.cast(gradient, weight.dtype)
        if not self.momentum:
            return weight - step_size, ()
        (velocity,) = state
        velocity = velocity * self.momentum - step_size
        if self.nesterov:
            return weight + velocity * self.momentum - step_size, (velocity,)
        return weight + velocity, (velocity,)

    def get_config(self):
        return {"momentum": self.momentum, "nesterov": self.nesterov}

    def to_keras(self, learning_rate):
        return keras.optimizers.SGD(learning_rate=learning_rate, momentum=self.momentum,
                                    nesterov=self.nesterov)


class InnerAdam(InnerOptimizer):
    """`keras.optimizers.Adam`'s rule (without amsgrad), moments fresh for every task.

    Nichol et al. (2018) adapt with Adam and `beta_1=0` in Reptile's inner loop.

    Example:
    >>> adam = InnerAdam(beta_1=0.0)
    >>> weight, state = adam.update(tf.constant(1.0), tf.constant(2.0), adam.initial_state(
    ...     tf.constant(1.0)), step=0, learning_rate=0.1)
    >>> round(float(weight), 4)
    0.9
    """

    name = "adam"
    smooth = False

    def __init__(self, beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7):
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.epsilon = float(epsilon)

    def initial_state(self, weight):
        return tf.zeros_like(weight), tf.zeros_like(weight)

    def update(self, weight, gradient, state, step, learning_rate):
        first, second = state
        gradient = tf.cast(gradient, weight.dtype)
        alpha = _as(learning_rate, weight.dtype) * _as(
            self._bias_correction(step), weight.dtype)
        first = first + (gradient - first) * (1.0 - self.beta_1)
        second = second + (tf.square(gradient) - second) * (1.0 - self.beta_2)
        return weight - first * alpha / (tf.sqrt(second) + self.epsilon), (first, second)

    def _bias_correction(self, step: Any) -> Any:
        """`sqrt(1 - beta_2^t) / (1 - beta_1^t)` at `t = step + 1`.

        A float64 tensor for a tensor `step` (a step count carried across tasks).
        """
        if not tf.is_tensor(step):
            count = step + 1
            return math.sqrt(1.0 - self.beta_2**count) / (1.0 - self.beta_1**count)
        count = tf.cast(step, tf.float64) + 1.0
        return tf.sqrt(1.0 - tf.pow(tf.constant(self.beta_2, tf.float64), count)) / (
            1.0 - tf.pow(tf.constant(self.beta_1, tf.float64), count))

    def get_config(self):
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}

    def to_keras(self, learning_rate):
        return keras.optimizers.Adam(learning_rate=learning_rate, beta_1=self.beta_1,
                                     beta_2=self.beta_2, epsilon=self.epsilon)


def _as(value: Any, dtype: tf.DType) -> tf.Tensor:
    """`value` in `dtype`; a Python float is converted directly (no float32 rounding)."""
    return tf.cast(value, dtype) if tf.is_tensor(value) else tf.constant(value, dtype)


_BY_NAME = {"sgd": InnerSGD, "adam": InnerAdam}
_UNSUPPORTED_SETTINGS = ("weight_decay", "clipnorm", "global_clipnorm", "clipvalue",
                         "loss_scale_factor", "gradient_accumulation_steps")


def inner_optimizer_from(identifier: Any) -> tuple[InnerOptimizer, float | None]:
    """`(rule, learning_rate)` for an `inner_optimizer` argument.

    Args:
        identifier: `"sgd"` or `"adam"` (default settings; the learning rate comes from
            `inner_learning_rate`), a `keras.optimizers.SGD` or `keras.optimizers.Adam`
            instance (its settings and its float learning rate are used), or a config dict
            of one (`keras.optimizers.serialize`).

    Returns:
        The stateless rule and the instance's learning rate (`None` for a name).

    Raises:
        ValueError: For any other optimizer, a learning-rate schedule, or settings the
            inner loop cannot honour (weight decay, clipping, EMA, amsgrad, ...).

    Example:
    >>> rule, rate = inner_optimizer_from(keras.optimizers.Adam(1e-3, beta_1=0.0))
    >>> rule.name, rule.beta_1, round(rate, 6)
    ('adam', 0.0, 0.001)
    """
    if isinstance(identifier, str):
        if identifier.lower() not in _BY_NAME:
            raise _invalid(identifier)
        return _BY_NAME[identifier.lower()](), None
    if isinstance(identifier, dict):
        try:
            identifier = keras.optimizers.deserialize(identifier)
        except (TypeError, ValueError):
            raise _invalid(identifier) from None
    if not isinstance(identifier, (keras.optimizers.SGD, keras.optimizers.Adam)):
        raise _invalid(identifier)
    config = identifier.get_config()
    if not isinstance(config["learning_rate"], (int, float)):
        raise ValueError(
            "Invalid value for argument `inner_optimizer`: its learning rate must be a number "
            "(the inner loop restarts at every task, so a schedule has no meaning there). "
            f"Received: learning_rate={config['learning_rate']!r}"
        )
    rate = float(config["learning_rate"])
    if not (math.isfinite(rate) and rate > 0):
        raise ValueError(
            "Invalid value for argument `inner_optimizer`: expected a positive, finite "
            f"learning rate. Received: learning_rate={rate!r}"
        )
    unsupported = [name for name in _UNSUPPORTED_SETTINGS if config.get(name)]
    if config.get("use_ema") or config.get("amsgrad"):
        unsupported.append("use_ema" if config.get("use_ema") else "amsgrad")
    if unsupported:
        raise ValueError(
            "Invalid value for argument `inner_optimizer`: the inner loop applies the plain "
            f"SGD/Adam rule and cannot honour {unsupported}. Received: {config}"
        )
    if isinstance(identifier, keras.optimizers.Adam):
        return InnerAdam(config["beta_1"], config["beta_2"], config["epsilon"]), rate
    return InnerSGD(config["momentum"], config["nesterov"]), rate


def _invalid(value: Any) -> ValueError:
    return ValueError(
        "Invalid value for argument `inner_optimizer`: expected 'sgd', 'adam', or a "
        f"keras.optimizers.SGD or keras.optimizers.Adam instance. Received: inner_optimizer="
        f"{value!r}"
    )
