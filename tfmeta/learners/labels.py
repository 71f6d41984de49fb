"""The checks of an episode's sizes and labels, shared by the step functions and the SavedModel.

A meta-batch passes through `fit`, `evaluate`, `predict` and an exported SavedModel with
the same checks: a non-empty support and query set, and, for classification, integer
labels in `0..N-1` (whole numbers when given as floats). Sizes known when a step is traced
fail at once with a `ValueError`; values fail when the step runs, as a
`tf.errors.InvalidArgumentError` whose message starts with `Invalid episode:`, which the
learners' `fit` / `evaluate` / `predict` turn back into a one-line `ValueError`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import tensorflow as tf

# Names (as Keras spells them for strings, `Loss.name` and functions) of the losses that
# make a gradient-based learner a regressor: float targets.
REGRESSION_LOSSES = frozenset(
    {
        "mse", "mae", "mape", "msle", "huber", "log_cosh", "logcosh",
        "mean_squared_error", "mean_absolute_error", "mean_absolute_percentage_error",
        "mean_squared_logarithmic_error", "huber_loss",
    }
)

# Losses of classifiers whose labels may come as floats.
CLASSIFICATION_LOSSES = frozenset({"sparse_categorical_crossentropy"})

PREFIX = "Invalid episode:"


def loss_name(learner: Any) -> str | None:
    """The compiled loss' name, lower case (`"mse"`, `"sparse_categorical_crossentropy"`)."""
    loss = getattr(learner, "loss", None)
    name = loss if isinstance(loss, str) else (
        getattr(loss, "name", None) or getattr(loss, "__name__", None))
    return name.lower() if isinstance(name, str) else None


def is_regression(learner: Any) -> bool:
    """Whether a learner's compiled loss is a regression loss (float targets).

    ProtoNet and every learner compiled with another loss (or none) classify.

    Example:
    >>> is_regression(object())
    False
    """
    if getattr(learner, "encoder", None) is not None:  # ProtoNet classifies.
        return False
    return loss_name(learner) in REGRESSION_LOSSES


def is_classifier(learner: Any) -> bool:
    """Whether a learner surely classifies: ProtoNet, or a sparse categorical loss.

    Example:
    >>> is_classifier(object())
    False
    """
    if getattr(learner, "encoder", None) is not None:
        return True
    return loss_name(learner) in CLASSIFICATION_LOSSES


def static_size_checks(support_x: tf.Tensor, query_x: tf.Tensor, query_y: Any,
                       needs_targets: bool) -> None:
    """Raises a `ValueError` for what the shapes already show: S = 0, Q = 0, no targets."""
    if needs_targets and query_y is None:
        raise ValueError(
            "Invalid value for argument `y`: training and evaluation need the query targets "
            "`query_y` [tasks, queries] (a dataset of `(inputs, query_y)` pairs, or "
            "`fit(x, y)`). Received: y=None"
        )
    for name, tensor in (("support_x", support_x), ("query_x", query_x)):
        if tensor.shape.rank is not None and tensor.shape.rank >= 2 and tensor.shape[1] == 0:
            what = "support" if name == "support_x" else "query"
            raise ValueError(
                f"{PREFIX} the {what} set is empty: `{name}` must hold at least one example "
                f"per task ([tasks, examples, ...]). Received: {name}.shape={tensor.shape}"
            )


def label_checks(labels: tf.Tensor, ways: Any, name: str) -> list[tf.Operation]:
    """Run-time assertions that classification `labels` are whole numbers in `0..ways-1`.

    The label -1 (padding of a variable episode) is accepted.

    Args:
        labels: Labels of any shape, integer or floating.
        ways: The number of classes N (an int or a scalar tensor), or None for no upper bound.
        name: The labels' name in the message, e.g. "support_y".

    Returns:
        The assertion ops.

    Example:
    >>> checks = label_checks(tf.constant([0, 1]), 2, "support_y")
    """
    labels = tf.convert_to_tensor(labels)
    if not (labels.dtype.is_integer or labels.dtype.is_floating):
        return []
    checks = []
    if labels.dtype.is_floating:
        fractional = tf.not_equal(labels, tf.round(labels))
        checks.append(tf.debugging.Assert(
            tf.logical_not(tf.reduce_any(fractional)),
            [f"{PREFIX} `{name}` labels must be whole numbers (class indices), as fractional "
             "labels would be truncated. Received: a label of",
             tf.boolean_mask(labels, fractional)[:1]],
            summarize=1))
    # -1 marks a padded entry of a variable episode (see `tfmeta.learners.padding`).
    low, high = tf.reduce_min(labels), tf.reduce_max(labels)
    if ways is None:
        checks.append(tf.debugging.Assert(
            low >= -1, [f"{PREFIX} `{name}` labels must be >= 0 (or -1 for padding). "
                        "Received: a label of", low]))
    else:
        described = (f"0..{ways - 1} (the learner has {ways} ways)" if isinstance(ways, int)
                     else "0..N-1 with N = max(support_y) + 1")
        checks.append(tf.debugging.Assert(
            tf.logical_and(low >= -1, high < tf.cast(ways, labels.dtype)),
            [f"{PREFIX} `{name}` labels must be in {described} (or -1 for padding). "
             "Received: labels from", low, "to", high]))
    return checks


def size_checks(support_x: tf.Tensor, query_x: tf.Tensor, axis: int = 1) -> list[tf.Operation]:
    """Run-time assertions that the support and query sets are not empty.

    Example:
    >>> checks = size_checks(tf.zeros([1, 2, 3]), tf.zeros([1, 1, 3]))
    """
    return [
        tf.debugging.Assert(
            tf.shape(tensor)[axis] > 0,
            [f"{PREFIX} the {what} set is empty: `{name}` must hold at least one example. "
             f"Received: {name} with shape", tf.shape(tensor)])
        for what, name, tensor in (("support", "support_x", support_x),
                                   ("query", "query_x", query_x))
    ]


def gate(checks: list[Any], *tensors: tf.Tensor) -> tuple[tf.Tensor, ...]:
    """`tensors` that depend on `checks`, so that nothing runs before the checks pass.

    Example:
    >>> (x,) = gate([], tf.constant(1))
    """
    if not checks:
        return tensors
    with tf.control_dependencies(checks):
        return tuple(tf.identity(t) for t in tensors)


@contextlib.contextmanager
def episode_errors_as_value_errors() -> Iterator[None]:
    """Turns the run-time failure of an episode check into a one-line `ValueError`.

    Example:
    >>> with episode_errors_as_value_errors():
    ...     pass
    """
    try:
        yield
    except tf.errors.InvalidArgumentError as error:
        line = _check_line(error.message)
        if line is None:
            raise
        raise ValueError(line) from None


def _check_line(message: str) -> str | None:
    """The line of a TensorFlow error message that one of the episode checks wrote."""
    for marker in (PREFIX, "Invalid `support_labels`"):
        start = message.find(marker)
        if start >= 0:
            line = message[start:].splitlines()[0].split("] [Condition x")[0]
            return " ".join(line.replace("] [", " ").rstrip("]").split())
    return None
