"""`TextVectorization`'s output computed from token ids: for models that cannot take strings."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

OUTPUT_MODES = ("int", "multi_hot", "count", "tf_idf")


@keras.saving.register_keras_serializable(package="tfmeta")
class TokenBag(keras.layers.Layer):
    """Token ids `[batch, L]` (int32, -1 pads) to what a `TextVectorization` layer outputs.

    A text model's `keras.layers.TextVectorization` turns strings into token ids with
    string ops (lower-casing, regular expressions, splitting, n-grams, a hash table), which
    LiteRT's builtin ops cannot run. This layer takes over after the look-up: the ids of a
    sentence's tokens (n-grams included), position `i` being the `i`-th entry of the
    vectorizer's `get_vocabulary()` and `-1` padding, become the same `[batch, vocabulary]`
    counts, multi-hot or TF-IDF vector (`output_mode`), or for `"int"` the same id
    sequence (padding 0). It uses only builtin ops (`scatter_nd` sums the counts).

    Args:
        vocabulary_size: Entries of the vocabulary (`[UNK]` included).
        output_mode: The vectorizer's: "int", "multi_hot", "count" or "tf_idf".
        idf_weights: The `[vocabulary_size]` inverse document frequencies ("tf_idf").
        **kwargs: Arguments of `keras.layers.Layer`.

    Example:
    >>> bag = TokenBag(4, output_mode="count")
    >>> bag(np.array([[1, 3, 1, -1]], "int32")).numpy().tolist()
    [[0.0, 2.0, 0.0, 1.0]]
    """

    def __init__(self, vocabulary_size: int, output_mode: str = "tf_idf", idf_weights=None,
                 **kwargs):
        super().__init__(**kwargs)
        if isinstance(vocabulary_size, bool) or not isinstance(vocabulary_size, int) or (
                vocabulary_size < 1):
            raise ValueError("Invalid value for argument `vocabulary_size`: expected a positive "
                             f"integer. Received: vocabulary_size={vocabulary_size!r}")
        if output_mode not in OUTPUT_MODES:
            raise ValueError(f"Invalid value for argument `output_mode`: expected one of "
                             f"{OUTPUT_MODES}. Received: output_mode={output_mode!r}")
        if (output_mode == "tf_idf") != (idf_weights is not None):
            raise ValueError("Invalid value for argument `idf_weights`: expected them exactly "
                             f"for output_mode='tf_idf'. Received: output_mode={output_mode!r}")
        self.vocabulary_size = vocabulary_size
        self.output_mode = output_mode
        self.idf_weights = None
        if idf_weights is not None:
            self.idf_weights = [float(w) for w in np.asarray(idf_weights).reshape(-1)]
            if len(self.idf_weights) != vocabulary_size:
                raise ValueError(
                    "Invalid value for argument `idf_weights`: expected one per vocabulary "
                    f"entry ({vocabulary_size}). Received: {len(self.idf_weights)} weights")

    def call(self, ids):
        ids = tf.cast(ids, tf.int32)
        if self.output_mode == "int":
            return tf.maximum(ids, 0)  # TextVectorization pads with 0.
        shape = tf.shape(ids)
        rows = tf.broadcast_to(tf.range(shape[0])[:, None], shape)
        # Padding (-1) lands in an extra column that is dropped.
        columns = tf.where(ids < 0, self.vocabulary_size, ids)
        indices = tf.reshape(tf.stack([rows, columns], axis=-1), [-1, 2])
        counts = tf.scatter_nd(indices, tf.ones([tf.size(ids)], self.compute_dtype),
                               tf.stack([shape[0], self.vocabulary_size + 1]))
        counts = counts[:, : self.vocabulary_size]
        if self.output_mode == "multi_hot":
            return tf.minimum(counts, 1.0)
        if self.output_mode == "tf_idf":
            return counts * tf.constant(self.idf_weights, self.compute_dtype)
        return counts

    def compute_output_shape(self, input_shape):
        if self.output_mode == "int":
            return tuple(input_shape)
        return (input_shape[0], self.vocabulary_size)

    def get_config(self):
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size,
                "output_mode": self.output_mode, "idf_weights": self.idf_weights}
