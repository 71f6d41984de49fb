"""Run-time checks of one served episode, as assertions inside the serving graph."""

from __future__ import annotations

import tensorflow as tf

from tfmeta.learners.labels import PREFIX, label_checks, size_checks


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
    rows = tf.shape(support_y)[0]
    checks = [
        tf.debugging.Assert(
            support_size > 0, [f"{PREFIX} the support set is empty (S=0)"]),
        tf.debugging.Assert(
            tf.equal(rows, support_size),
            [f"{PREFIX} `support_x` and `support_y` must hold the same number of support "
             "examples S (first dimension). Received:", support_size, "rows of support_x and",
             rows, "of support_y"]),
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
                source = (f"the learner's {ways} ways" if ways is not None
                          else "max(support_y) + 1, as the learner does not fix the ways")
                checks.append(tf.debugging.Assert(
                    tf.reduce_all(counts > 0),
                    [f"{PREFIX} every class 0..N-1 needs at least one support example (labels "
                     f"are remapped to 0..N-1 per episode; N is {source}). Received: N =",
                     num_classes, "with support examples per class", counts],
                    summarize=64))
    return checks


# Examples per call of a served signature, unless the export says otherwise: memory grows with
# them (about 200 KB a sentence for a bag-of-n-grams text model, a few MB an 84x84 image for
# conv4), and a SavedModel cannot refuse work once it has started.
MAX_EXAMPLES_PER_CALL = 1024


def shape_checks(tensor: tf.Tensor, spec: tf.TensorSpec, name: str, what: str) -> list:
    """Assertions that `tensor` has the rank and the known dimensions of `spec`.

    A SavedModel's signature does not enforce the shapes it declares (only dtypes), and a
    wrong rank can abort the whole process in a convolution kernel, so the signatures
    check them first. The message names the argument, the expected and the received shape.

    Example:
    >>> checks = shape_checks(tf.zeros([2, 4]), tf.TensorSpec([None, 4]), "support_x", "examples")
    """
    expected = spec.shape.as_list()
    shape = tf.shape(tensor)
    head, rank_ok = _leading_dimensions(shape, len(expected))
    known = [index for index, size in enumerate(expected) if size is not None]
    ok = rank_ok
    if known:
        ok = tf.logical_and(ok, tf.reduce_all(tf.equal(
            tf.gather(head, known), tf.constant([expected[i] for i in known], tf.int32))))
    described = "[" + ", ".join("?" if size is None else str(size) for size in expected) + "]"
    return [tf.debugging.Assert(
        ok, [f"{PREFIX} `{name}` must be {what} of shape {described} (the exported shape; ? is "
             "any size). Received: shape", shape], summarize=len(expected) + 8)]


def count_checks(tensor: tf.Tensor, maximum: int | None, name: str, argument: str) -> list:
    """An assertion that `tensor` holds at most `maximum` examples (first dimension).

    Example:
    >>> checks = count_checks(tf.zeros([3, 1]), 4, "query_x", "max_queries")
    """
    if maximum is None:
        return []
    count = tf.shape(tensor)[0]
    return [tf.debugging.Assert(
        count <= maximum,
        [f"{PREFIX} `{name}` holds more than {maximum} examples, the most one call takes "
         f"(the export's `{argument}`, which bounds the memory of a call): split them into "
         "several calls (adapt once, then predict_adapted on each part). Received:", count,
         "examples"])]


def task_state_checks(task_state: tf.Tensor, size: int | None) -> list:
    """Assertions that a served `task_state` is a vector of the learner's state size.

    Example:
    >>> checks = task_state_checks(tf.zeros([5]), 5)
    """
    shape = tf.shape(task_state)
    head, ok = _leading_dimensions(shape, 1)
    if size is not None:
        ok = tf.logical_and(ok, tf.equal(head[0], size))
        expected = f"[{size}] (what this SavedModel's `adapt` returns)"
    else:
        expected = "[P] (what this SavedModel's `adapt` returns)"
    return [tf.debugging.Assert(
        ok, [f"Invalid task_state: expected a float32 vector of shape {expected}. "
             "Received: shape", shape], summarize=8)]


def _leading_dimensions(shape: tf.Tensor, rank: int) -> tuple[tf.Tensor, tf.Tensor]:
    """`(the first `rank` sizes of `shape` (-1 where missing), whether it has rank `rank`)`.

    The rank is read from the sizes, not with `tf.rank` / `tf.size`: TensorFlow's graph
    optimizer folds those to the rank the signature declares, which a served call may not
    have.
    """
    padded = tf.concat([shape, tf.fill([rank + 1], -1)], axis=0)
    ok = tf.equal(padded[rank], -1)  # no dimension beyond `rank`
    if rank > 0:
        ok = tf.logical_and(ok, padded[rank - 1] >= 0)  # and none missing
    return padded[:rank], ok
