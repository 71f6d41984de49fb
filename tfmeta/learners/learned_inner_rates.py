"""Learned inner learning rates: Meta-SGD (one per parameter) and MAML++'s LSLR (per step)."""

from typing import Any

import keras

LEARNED_RATE_MODES = (None, "per_parameter", "per_step")


def make_inner_rates(learner: keras.Model, variables: list, mode: str | None, steps: int,
                     initial: float) -> list | None:
    """The learner's weights holding the inner learning rates of `variables`, or None.

    Args:
        learner: The Keras model (layer) that owns the rates (`add_weight`).
        variables: The adapted weights, one rate tensor each.
        mode: `"per_parameter"` (a rate per entry, Meta-SGD), `"per_step"` (a rate per
            weight tensor and inner step, MAML++ LSLR) or None (no learned rates).
        steps: Inner steps of meta-training (the per-step rates).
        initial: The rates' initial value.

    Returns:
        One weight per variable, or None when `mode` is None.

    Example:
    >>> import keras, tfmeta
    >>> learner = tfmeta.MAML(tfmeta.backbones.mlp(), learn_inner_learning_rate="per_step")
    >>> [tuple(r.shape) for r in learner._inner_rates][:1]
    [(1,)]
    """
    if mode is None:
        return None
    rates = []
    for variable in variables:
        shape = variable.shape if mode == "per_parameter" else (steps,)
        name = variable.path.replace("/", "_") + "_inner_learning_rate"
        rates.append(
            learner.add_weight(
                shape=shape,
                initializer=keras.initializers.Constant(initial),
                name=name,
            )
        )
    return rates


def inner_rate(rates: list | None, mode: str | None, position: int, step: int, steps: int,
               constant: float) -> Any:
    """The learning rate of adapted weight `position` at inner step `step`.

    `constant` without learned rates; the last step's rate for steps beyond meta-training's
    `steps` (e.g. more evaluation steps).

    Example:
    >>> inner_rate(None, None, 0, 3, 1, 0.5)
    0.5
    """
    if rates is None:
        return constant
    rate = rates[position]
    if mode == "per_parameter":
        return rate
    return rate[min(step, steps - 1)]
