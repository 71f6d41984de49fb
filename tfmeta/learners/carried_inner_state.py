"""The inner optimizer's state carried across tasks (openai/supervised-reptile's Adam).

By default the inner optimizer starts every task from fresh state. Reptile's published code
instead keeps one Adam whose moments and step count persist across the training tasks (only
the model's weights are restored after each task), and evaluates each task from the state
training has reached, restoring it afterwards. `CarriedInnerState` holds that state in
non-trainable variables of the learner: every task of a meta-batch starts from it, and after
the meta-batch it becomes the mean over the tasks of their final states, with the step count
advanced by the inner steps. (The paper's code runs the tasks of a meta-batch one after the
other, so its later tasks start from the state the earlier ones left; tfmeta runs them in
parallel, and the mean weighs each task's steps as one task's would be.)
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from tfmeta.learners.inner_optimizers import InnerOptimizer


class CarriedInnerState:
    """Variables with the inner optimizer's state of each adapted weight, and its step count.

    Args:
        learner: the learner that owns the variables (its `add_weight` creates them).
        rule: the inner optimizer's update rule.
        weights: the adapted weights (Keras variables), in the inner loop's order.

    Example:
    >>> import keras, tfmeta
    >>> learner = tfmeta.Reptile(tfmeta.backbones.mlp(), inner_optimizer="adam",
    ...                          carry_inner_optimizer_state=True)
    >>> float(learner.carried_inner_state.steps)
    0.0
    """

    def __init__(self, learner: keras.Model, rule: InnerOptimizer, weights: list):
        self.variables = []
        for position, weight in enumerate(weights):
            parts = rule.initial_state(tf.zeros(weight.shape, weight.dtype))
            self.variables.append(tuple(
                learner.add_weight(shape=weight.shape, dtype=weight.dtype, initializer="zeros",
                                   trainable=False, name=f"inner_state_{position}_{part}")
                for part in range(len(parts))
            ))
        self.steps = learner.add_weight(shape=(), dtype="float32", initializer="zeros",
                                        trainable=False, name="inner_state_steps")

    def flat_dtypes(self) -> list[tf.DType]:
        return [part.dtype for part in self.flatten(self.variables)]

    @staticmethod
    def flatten(state: list[tuple[Any, ...]]) -> list[Any]:
        return [part for parts in state for part in parts]
