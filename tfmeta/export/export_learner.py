"""SavedModel export of a learner: few-shot adaptation inside the serving graph."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from tfmeta.export.serving_checks import (
    MAX_EXAMPLES_PER_CALL,
    check_served_episode,
    check_served_queries,
    check_served_support,
    count_checks,
    shape_checks,
    task_state_checks,
)
from tfmeta.learners.finite import non_finite_weights
from tfmeta.learners.labels import gate


def export_learner(
    learner: Any,
    filepath: str | os.PathLike,
    *,
    overwrite: bool = False,
    example_shape: Sequence[int | None] | None = None,
    support_y_spec: tf.TensorSpec | None = None,
    max_support: int | None = MAX_EXAMPLES_PER_CALL,
    max_queries: int | None = MAX_EXAMPLES_PER_CALL,
    verbose: bool = False,
    builtin_ops: bool = False,
) -> None:
    """Writes a SavedModel that adapts to one episode and predicts its queries.

    The SavedModel's `serving_default` signature (also named `serve`) takes
    one episode and returns its query predictions:

    | input | shape | dtype |
    | --- | --- | --- |
    | `support_x` | `[S, *example_shape]` | float32 (tf.string for text) |
    | `support_y` | `[S]` (classification) or `[S, *target_shape]` (regression) | int32 / float32 |
    | `query_x` | `[Q, *example_shape]` | float32 (tf.string for text) |

    S and Q are dynamic; the example shape and dtype are the model's input's: a model
    whose input is `tf.string` (e.g. one starting with `keras.layers.TextVectorization`)
    is served raw sentences, `support_x [S]` and `query_x [Q]` tf.string. The
    output is `{"logits": [Q, N]}` for classification and
    `{"predictions": [Q, *target_shape]}` for regression, float32. MAML and
    Reptile take `eval_inner_steps` (default `inner_steps`) SGD steps on the
    support set inside the graph, exactly as `learner.predict` does on a
    meta-batch of one episode; ProtoNet computes prototypes. N is the head
    size for MAML/Reptile, `ways` for `ProtoNet(ways=...)`, and otherwise
    `max(support_y) + 1` at run time.

    Every signature checks its inputs before any work: the shapes it declares
    (a signature's TensorSpec is not enforced by TensorFlow, and a wrong rank
    can abort the process in a convolution kernel), the examples per call
    (`max_support`, `max_queries`), support sizes that differ, labels
    outside `0..N-1`, for ProtoNet a class without support example, and the
    length of a `task_state`. A bad call fails with one
    `InvalidArgumentError` whose message (after TensorFlow's own "Graph
    execution error" header, in Python) is one line starting with
    `Invalid episode:` (or `Invalid task_state:`) that says what was wrong.
    Wrong dtypes are refused by TensorFlow before the call runs.

    Adapt once, predict many: the `adapt` signature takes `support_x` and
    `support_y` and returns `{"task_state": [P]}` float32 (the adapted weights,
    or ProtoNet's prototypes, flattened), and `predict_adapted` takes
    `task_state` and `query_x` and returns the output of `serving_default`:
    `predict_adapted(adapt(s), q) == serving_default(s, q)`. They are the
    learner's `adapt_step` and `predict_adapted_step` on a meta-batch of one.

    The learner describes the rest (`learner.serving_spec()`: the input specs,
    the output key, extra endpoints); export knows no learner type. ProtoNet
    exports also get an `embed` signature: `examples [E, ...]` ->
    `{"embeddings": [E, D]}`.

    Classification or regression: MAML and Reptile whose compiled loss is a
    regression loss (`"mse"`, `"mae"`, `MeanSquaredError()`, Huber, ...)
    are exported as regressors, with float32 `support_y` of shape
    `[S, *model_output_shape]`; every other learner as a classifier with
    int32 labels. `support_y_spec` overrides this.

    Args:
        learner: a tfmeta learner (trained or not). MAML and Reptile must be
            compiled: they adapt with the compiled loss.
        filepath: the SavedModel folder. It must not exist or be empty, or,
            with `overwrite=True`, hold a SavedModel (which is replaced). The
            SavedModel is written beside it and renamed into place, so a
            failed export leaves nothing behind.
        overwrite: whether to replace an existing SavedModel at `filepath`.
        example_shape: the shape of one example, for models whose input shape
            is unknown (e.g. subclassed models); defaults to the model's.
        support_y_spec: a `tf.TensorSpec` for `support_y` `[S, ...]` (its
            first dimension must be None); defaults as described above.
        max_support: the most support examples one call takes (default
            1,024), or None for no bound.
        max_queries: the most query examples one call takes (default 1,024),
            or None for no bound. Memory grows with the examples of a call
            (about 200 KB a sentence for a bag-of-n-grams text model), so a
            call beyond these bounds fails at once, in one line, before any
            work; more queries are served by `adapt` once and
            `predict_adapted` on parts of at most `max_queries`.
        verbose: whether to print the exported endpoints.
        builtin_ops: adapt with LiteRT's builtin ops only in every signature
            (`adapt_step(..., builtin_ops=True)`), for `export_litert`.

    Raises:
        ValueError: for a learner that is not a `MetaLearner`, a MAML/Reptile
            learner that is not compiled or a learner with NaN or infinite
            weights, an unknown example shape, or a `filepath` that is empty
            or in the way.
        OSError: when the folder cannot be written.

    Example:
    >>> import keras, numpy as np, tensorflow as tf, tfmeta
    >>> learner = tfmeta.ProtoNet(tfmeta.backbones.mlp((4,), (8,), 8))
    >>> export_learner(learner, "/tmp/tfmeta_export_example", overwrite=True)
    >>> serving = tf.saved_model.load("/tmp/tfmeta_export_example")
    >>> logits = serving.signatures["serving_default"](
    ...     support_x=tf.zeros([2, 4]), support_y=tf.constant([0, 1]),
    ...     query_x=tf.ones([3, 4]))["logits"]
    >>> logits.shape
    TensorShape([3, 2])

    """
    _check_learner(learner)
    for name, value in (("max_support", max_support), ("max_queries", max_queries)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 1):
            raise ValueError(
                f"Invalid value for argument `{name}`: expected a positive integer (examples "
                f"per call) or None (no bound). Received: {name}={value!r}"
            )
    filepath = os.fspath(filepath)
    _check_filepath(filepath, overwrite)
    spec = learner.serving_spec(example_shape=example_shape, support_y_spec=support_y_spec)
    support_checks = {"classification": spec.classification, "ways": spec.ways,
                      "every_class": spec.every_class}
    support_x_spec = tf.TensorSpec(spec.examples.shape, spec.examples.dtype, name="support_x")
    query_x_spec = tf.TensorSpec(spec.examples.shape, spec.examples.dtype, name="query_x")

    examples = spec.examples

    def checked_shapes(**tensors):
        """The tensors, after their shapes and counts are checked (before any other check)."""
        checks = []
        for name, tensor in tensors.items():
            if name == "task_state":
                checks += task_state_checks(tensor, spec.task_state_size)
            elif name == "support_y":
                checks += shape_checks(tensor, spec.support_y, name, _targets(spec))
            else:
                checks += shape_checks(tensor, examples, name, "examples")
                maximum = max_support if name == "support_x" else max_queries
                argument = "max_support" if name == "support_x" else "max_queries"
                checks += count_checks(tensor, maximum, name, argument)
        return gate(checks, *tensors.values())

    def serve(support_x, support_y, query_x):
        support_x, support_y, query_x = checked_shapes(
            support_x=support_x, support_y=support_y, query_x=query_x)
        support_x, support_y, query_x = check_served_episode(
            support_x, support_y, query_x, **support_checks)
        # A meta-batch of one episode: the static task dimension lets MAML and
        # Reptile unroll their task loop while S and Q stay dynamic.
        episode = {"support_x": support_x[None], "support_y": support_y[None],
                   "query_x": query_x[None]}
        if builtin_ops:
            outputs = learner.predict_adapted_step(
                learner.adapt_step(episode["support_x"], episode["support_y"], builtin_ops=True),
                episode["query_x"])[0]
        else:
            outputs = learner(episode, training=False)[0]
        return {spec.output_key: tf.cast(outputs, tf.float32)}

    def adapt(support_x, support_y):
        support_x, support_y = checked_shapes(support_x=support_x, support_y=support_y)
        support_x, support_y = check_served_support(support_x, support_y, **support_checks)
        task_state = learner.adapt_step(support_x[None], support_y[None], builtin_ops=builtin_ops)
        return {"task_state": task_state[0]}

    def predict_adapted(task_state, query_x):
        task_state, query_x = checked_shapes(task_state=task_state, query_x=query_x)
        query_x = check_served_queries(query_x)
        outputs = learner.predict_adapted_step(task_state[None], query_x[None])[0]
        return {spec.output_key: tf.cast(outputs, tf.float32)}

    archive = keras.export.ExportArchive()
    # TFLiteConverter.from_saved_model keeps only `serving_default` of a SavedModel with a
    # `serve` endpoint (Keras' `model.export`), so the LiteRT one names it directly.
    serve_function = archive.add_endpoint(
        "serving_default" if builtin_ops else "serve", serve,
        input_signature=[support_x_spec, spec.support_y, query_x_spec])
    archive.add_endpoint("adapt", adapt, input_signature=[support_x_spec, spec.support_y])
    archive.add_endpoint(
        "predict_adapted", predict_adapted,
        input_signature=[tf.TensorSpec([None], tf.float32, name="task_state"), query_x_spec])
    for name, (function, input_signature) in spec.endpoints.items():
        archive.add_endpoint(name, function, input_signature=input_signature)
    # Tracing builds a learner that was never called; then its variables can be
    # tracked, so the reloaded object exposes `variables` and `trainable_variables`.
    serve_function.get_concrete_function()
    archive.track(learner)
    _write_atomically(archive, filepath, verbose)


def _targets(spec: Any) -> str:
    return "class labels" if spec.classification else "regression targets"


# === Argument checks ===


def _check_learner(learner: Any) -> None:
    # Any object with the learner interface (`tfmeta.learners.MetaLearner`'s) is exported.
    interface = ("serving_spec", "adapt_step", "predict_adapted_step", "weights")
    if not all(hasattr(learner, name) for name in interface):
        raise ValueError(
            "Invalid value for argument `learner`: expected a tfmeta learner (MAML, Reptile, "
            f"ProtoNet, Baseline, ...). Received: learner={learner!r}"
        )
    bad = non_finite_weights(learner)
    if bad:
        raise ValueError(
            "Invalid value for argument `learner`: its weights hold NaN or infinite values "
            f"({len(bad)} of {len(learner.weights)} weights, e.g. {bad[0]}), so every answer "
            f"of the SavedModel would be meaningless. Received: {type(learner).__name__} with "
            "non-finite weights"
        )


def _write_atomically(archive: keras.export.ExportArchive, filepath: str, verbose: bool) -> None:
    """Writes the SavedModel into a new sibling folder, then renames it onto `filepath`."""
    parent = os.path.dirname(os.path.abspath(filepath))
    os.makedirs(parent, exist_ok=True)
    temporary = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(filepath)}.partial-")
    try:
        archive.write_out(temporary, verbose=verbose)
        os.chmod(temporary, 0o755)  # mkdtemp's folders are private (0o700).
        if os.path.isdir(filepath) and os.listdir(filepath):
            shutil.rmtree(filepath)  # a SavedModel, and overwrite=True (checked before)
        os.replace(temporary, filepath)  # onto a missing or empty folder
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def _check_filepath(filepath: str, overwrite: bool) -> None:
    if not filepath.strip():
        raise ValueError(
            "Invalid value for argument `filepath`: expected the path of a folder for the "
            f"SavedModel (an empty path would write into the current folder). Received: "
            f"filepath={filepath!r}"
        )
    if os.path.exists(filepath) and not os.path.isdir(filepath):
        raise ValueError(
            "Invalid value for argument `filepath`: expected a folder for the SavedModel, "
            f"but it is an existing file. Received: filepath={filepath!r}"
        )
    if not os.path.isdir(filepath) or not os.listdir(filepath):
        return
    if not overwrite:
        raise ValueError(
            "Invalid value for argument `filepath`: expected a folder that does not exist or is "
            f"empty (or pass overwrite=True to replace a SavedModel). Received: "
            f"filepath={filepath!r}, which is not empty"
        )
    if not os.path.exists(os.path.join(filepath, "saved_model.pb")):
        raise ValueError(
            "Invalid value for argument `filepath`: overwrite=True only replaces a SavedModel "
            "folder (with a saved_model.pb), and this folder holds other files. Received: "
            f"filepath={filepath!r}"
        )
