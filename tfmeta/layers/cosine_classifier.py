"""A cosine-similarity classifier head (Baseline++, Chen et al., 2019)."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfmeta")
class CosineClassifier(keras.layers.Layer):
    """Logits `scale * cos(x, w_c)`: the cosine similarity of features to each class weight.

    Baseline++ (Chen et al., 2019, "A Closer Look at Few-shot Classification") replaces the
    linear classifier by this head, which reduces intra-class variation of the features.
    Features and class weights are L2-normalised (with `epsilon` added to the norms).

    Args:
        units: Number of classes.
        scale: Temperature multiplying the cosine similarities (Chen et al. use 2 for at
            most 200 classes, 10 above; larger values sharpen the softmax).
        epsilon: Added to the norms.
        kernel_initializer: Initializer of the `[features, units]` class weights.
        **kwargs: Arguments of `keras.layers.Layer`.

    Example:
    >>> import numpy as np
    >>> head = CosineClassifier(3, scale=2.0)
    >>> head(np.ones([4, 8], "float32")).shape
    (4, 3)
    """

    def __init__(self, units: int, scale: float = 10.0, epsilon: float = 1e-6,
                 kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        if isinstance(units, bool) or not isinstance(units, int) or units < 1:
            raise ValueError(
                f"Invalid value for argument `units`: expected a positive integer. "
                f"Received: units={units!r}"
            )
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
            raise ValueError(
                f"Invalid value for argument `scale`: expected a positive number. "
                f"Received: scale={scale!r}"
            )
        self.units = units
        self.scale = float(scale)
        self.epsilon = float(epsilon)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units),
                                      initializer=self.kernel_initializer, name="kernel")

    def call(self, inputs):
        features = inputs / (ops.norm(inputs, axis=-1, keepdims=True) + self.epsilon)
        kernel = ops.cast(self.kernel, inputs.dtype)
        weights = kernel / (ops.norm(kernel, axis=0, keepdims=True) + self.epsilon)
        return self.scale * ops.matmul(features, weights)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "scale": self.scale,
            "epsilon": self.epsilon,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }
