"""Run-time checks of one served episode, as assertions inside the serving graph."""

from __future__ import annotations

import tensorflow as tf

from tfmeta.learners.labels import label_checks, size_checks


def check_served_episode(
    support_x: tf.Tensor,
    support_y: tf.Tensor,
    query_x: tf.Tensor,
    classification: bool,
    ways: int | None = None,
    every_class: bool = False,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Returns the episode's tensors, gated on assertions that it is well formed.

    A SavedModel cannot raise a Python `ValueError` at serving time, so the
    checks are `tf.debugging` assertions: a bad episode fails with an
    `InvalidArgumentError` whose message starts with `Invalid episode:`. The
    returned tensors depend on the assertions, so no adaptation or distance
    runs before they pass.

    Checks: the support set is not empty; `support_x` and `support_y` hold the
    same number of examples; for classification, labels are in `0..N-1`
    (`N = ways` when known) and, with `every_class=True`, every class has a
    support example (prototypes need one).

    Args:
        support_x: `[S, ...]` support examples of one episode.
        support_y: `[S]` labels or `[S, ...]` regression targets.
        query_x: `[Q, ...]` query examples.
        classification: whether `support_y` holds integer class labels.
        ways: the number of classes fixed by the learner, or None.
        every_class: check that each class `0..N-1` has a support example.

    Returns:
        `(support_x, support_y, query_x)` with control dependencies on the checks.

    Example:
    >>> import tensorflow as tf
    >>> x, y, q = check_served_episode(tf.zeros([2, 1]), tf.constant([0, 1]), tf.zeros([3, 1]),
    ...                                classification=True, ways=2, every_class=True)
    >>> y.numpy().tolist()
    [0, 1]

    """
    checks = support_checks(support_x, support_y, classification, ways, every_class)
    checks += size_checks(support_x[None], query_x[None])
    with tf.control_dependencies(checks):
        return tf.identity(support_x), tf.identity(support_y), tf.identity(query_x)


def check_served_support(
    support_x: tf.Tensor,
    support_y: tf.Tensor,
    classification: bool,
    ways: int | None = None,
    every_class: bool = False,
) -> tuple[tf.Tensor, tf.Tensor]:
    """`check_served_episode` for the support set alone (the `adapt` signature).

    Example:
    >>> import tensorflow as tf
    >>> x, y = check_served_support(tf.zeros([2, 1]), tf.constant([0, 1]), True, ways=2)
    >>> y.numpy().tolist()
    [0, 1]
    """
    checks = support_checks(support_x, support_y, classification, ways, every_class)
    with tf.control_dependencies(checks):
        return tf.identity(support_x), tf.identity(support_y)


def check_served_queries(query_x: tf.Tensor) -> tf.Tensor:
    """`query_x` `[Q, ...]`, gated on an assertion that it is not empty.

    Example:
    >>> import tensorflow as tf
    >>> check_served_queries(tf.zeros([3, 1])).shape
    TensorShape([3, 1])
    """
    checks = size_checks(query_x[None], query_x[None])[1:]
    with tf.control_dependencies(checks):
        return tf.identity(query_x)


def support_checks(support_x: tf.Tensor, support_y: tf.Tensor, classification: bool,
                   ways: int | None, every_class: bool) -> list:
    """The assertions on one served support set (see `check_served_episode`)."""
    support_size = tf.shape(support_x)[0]
    checks = [
        tf.debugging.assert_positive(
            support_size, message="Invalid episode: the support set is empty (S=0)"
        ),
        tf.debugging.assert_equal(
            tf.shape(support_y)[0],
            support_size,
            message=(
                "Invalid episode: `support_x` and `support_y` must hold the same number of "
                "support examples S (first dimension): [support_y rows, support_x rows] ="
            ),
        ),
    ]
    if classification:
        # The same label checks as the learners' fit, evaluate and predict.
        checks += label_checks(support_y, ways, "support_y")
        if every_class:
            with tf.control_dependencies(checks):
                num_classes = ways if ways is not None else tf.reduce_max(support_y) + 1
                real = tf.boolean_mask(support_y, support_y >= 0)  # -1: padding.
                counts = tf.math.bincount(
                    tf.cast(real, tf.int32), minlength=num_classes, maxlength=num_classes
                )
                checks.append(
                    tf.debugging.assert_positive(
                        counts,
                        message="Invalid episode: every class 0..N-1 needs at least one "
                        "support example (labels are remapped to 0..N-1 per episode); the support "
                        "examples per class are",
                    )
                )
    return checks
