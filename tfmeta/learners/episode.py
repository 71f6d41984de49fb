"""Validation and unpacking of episodes (the DESIGN.md episode contract)."""

from typing import Any

import tensorflow as tf

EPISODE_KEYS = ("support_x", "support_y", "query_x")


def unpack_episode(
    inputs: Any, argument: str = "inputs", model: Any = None
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Returns `(support_x, support_y, query_x)` after checking the episode's structure.

    Checks what is known when the step is traced: the three keys, the ranks,
    and that support and query agree on the meta-batch size and the example
    shape, and support_x and support_y on the support size. With `model`, also
    that text examples (`tf.string`) go to a model that takes text and numbers
    to a model that takes numbers (see `check_example_dtype`).

    Args:
        inputs: the episode dict `{"support_x", "support_y", "query_x"}`.
        argument: the argument name to use in error messages.
        model: the Keras model that will take the examples, or None.

    Returns:
        The three tensors, converted with `tf.convert_to_tensor`.

    Raises:
        ValueError: if a key is missing or the shapes do not agree.

    """
    if not isinstance(inputs, dict):
        raise ValueError(
            f"Invalid `{argument}`: expected an episode dict with keys {list(EPISODE_KEYS)}. "
            f"Received: {type(inputs).__name__}"
        )
    missing = [key for key in EPISODE_KEYS if key not in inputs]
    if missing:
        raise ValueError(
            f"Invalid `{argument}`: the episode has no {missing}. Expected keys "
            f"{list(EPISODE_KEYS)}. Received keys: {sorted(inputs)}"
        )
    support_x = tf.convert_to_tensor(inputs["support_x"])
    support_y = tf.convert_to_tensor(inputs["support_y"])
    query_x = tf.convert_to_tensor(inputs["query_x"])
    if support_x.shape.rank is not None and support_x.shape.rank < 2:
        raise ValueError(
            f"Invalid `{argument}['support_x']`: expected shape [tasks, support, *example_shape] "
            f"(rank >= 2; rank 2 for raw text). Received: shape={support_x.shape}"
        )
    if support_y.shape.rank is not None and support_y.shape.rank < 2:
        raise ValueError(
            f"Invalid `{argument}['support_y']`: expected shape [tasks, support] or "
            f"[tasks, support, *target_shape]. Received: shape={support_y.shape}"
        )
    if query_x.shape.rank is not None and support_x.shape.rank is not None:
        if query_x.shape.rank != support_x.shape.rank:
            raise ValueError(
                f"Invalid `{argument}`: `query_x` must have the rank of `support_x` "
                "([tasks, examples, *example_shape]). Received: "
                f"support_x.shape={support_x.shape}, query_x.shape={query_x.shape}"
            )
        if not support_x.shape[2:].is_compatible_with(query_x.shape[2:]):
            raise ValueError(
                f"Invalid `{argument}`: support and query examples differ in shape. "
                f"Received: support_x.shape={support_x.shape}, query_x.shape={query_x.shape}"
            )
    if not support_x.shape[:2].is_compatible_with(support_y.shape[:2]):
        raise ValueError(
            f"Invalid `{argument}`: `support_x` and `support_y` must agree on [tasks, support]. "
            f"Received: support_x.shape={support_x.shape}, support_y.shape={support_y.shape}"
        )
    if not support_x.shape[:1].is_compatible_with(query_x.shape[:1]):
        raise ValueError(
            f"Invalid `{argument}`: support and query must have the same number of tasks. "
            f"Received: support_x.shape={support_x.shape}, query_x.shape={query_x.shape}"
        )
    if model is not None:
        check_example_dtype(support_x, model, f"{argument}['support_x']")
        check_example_dtype(query_x, model, f"{argument}['query_x']")
    return support_x, support_y, query_x


def model_input_dtype(model: Any) -> tf.DType | None:
    """The dtype of a Keras model's (single) input, or None when it is not known.

    Example:
    >>> import keras
    >>> model_input_dtype(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))
    tf.float32
    """
    try:
        inputs = list(model.inputs or [])
    except (AttributeError, TypeError, ValueError):
        return None
    if len(inputs) != 1:
        return None
    return tf.as_dtype(inputs[0].dtype)


def check_example_dtype(examples: tf.Tensor, model: Any, argument: str) -> None:
    """Raises a one-line `ValueError` when text meets a model of numbers, or the reverse.

    A model whose input is `tf.string` (it starts with e.g. `TextVectorization`) takes
    raw text; any other takes numbers. `examples` `[tasks, examples, *example_shape]`
    must also have the rank of the model's examples plus two. Models without a known
    (single) input pass.

    Example:
    >>> import keras
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> check_example_dtype(tf.zeros([1, 3, 2]), model, "support_x")
    """
    expected = model_input_dtype(model)
    if expected is None:
        return
    if (expected == tf.string) != (examples.dtype == tf.string):
        wanted = "raw text (tf.string)" if expected == tf.string else f"numbers ({expected.name})"
        raise ValueError(
            f"Invalid `{argument}`: the model {model.name!r} takes {wanted} examples. "
            f"Received: {argument} of dtype {examples.dtype.name}, shape {examples.shape}"
        )
    example_rank = len(model.inputs[0].shape) - 1
    if examples.shape.rank is not None and examples.shape.rank != 2 + example_rank:
        raise ValueError(
            f"Invalid `{argument}`: expected shape [tasks, examples, *example_shape] with the "
            f"model's example shape {tuple(model.inputs[0].shape[1:])} (rank "
            f"{2 + example_rank}). Received: shape={examples.shape}"
        )


def check_query_targets(query_x: tf.Tensor, query_y: Any) -> None:
    """Raises a `ValueError` when `query_y` does not match `query_x` on [tasks, queries]."""
    if query_y is None:
        return
    query_y = tf.convert_to_tensor(query_y)
    if not query_x.shape[:2].is_compatible_with(query_y.shape[:2]):
        raise ValueError(
            "Invalid `query_y`: expected shape [tasks, queries, ...] matching `query_x`. "
            f"Received: query_x.shape={query_x.shape}, query_y.shape={query_y.shape}"
        )


def embed_examples(encoder, examples, training=False, example_rank=None):
    """Embeddings `[..., D]` of examples `[..., *example_shape]` (any leading dims).

    One `encoder` call on every example at once (leading axes flattened, then restored).
    The rank of one example is `example_rank`, else the encoder's input rank, else (a
    subclassed encoder) `examples` is taken as `[B, S, *example_shape]`.
    """
    examples = tf.convert_to_tensor(examples)
    encoder_inputs = getattr(encoder, "inputs", None)  # None when subclassed.
    input_rank = example_rank
    if input_rank is None and encoder_inputs:
        input_rank = len(encoder_inputs[0].shape) - 1
    if input_rank is None:
        input_rank = examples.shape.rank - 2
    # Slices by position, not from the end: an example of rank 0 (a sentence) has no
    # example axes.
    batch_rank = examples.shape.rank - input_rank
    leading = tf.shape(examples)[:batch_rank]
    flat = tf.reshape(examples, tf.concat([[-1], tf.shape(examples)[batch_rank:]], 0))
    embeddings = encoder(flat, training=training)
    embeddings = tf.reshape(embeddings, [tf.shape(embeddings)[0], -1])
    return tf.reshape(embeddings, tf.concat([leading, [-1]], 0))
