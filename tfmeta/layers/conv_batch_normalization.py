"""A convolution and its batch norm, folded into one convolution in training where cheaper."""

import keras
import tensorflow as tf

from tfmeta.layers.batch_normalization import BatchNormalization

# A patch of at most this many values (3x3 RGB) makes its statistics cheap to gather.
_MAX_FOLDED_PATCH_SIZE = 27


@keras.saving.register_keras_serializable(package="tfmeta")
class ConvBatchNormalization(keras.layers.Layer):
    """`conv` then `batch_norm`, computed as one convolution when the input has few channels.

    The output is `batch_norm(conv(x), training)`, exactly. In training, batch
    norm needs the mean and variance of every output channel over the batch; when
    a patch of the input is small (at most 27 values: a 3x3 kernel on greyscale or
    RGB images, as in the first layer of most image backbones), they come from the
    mean and covariance of the input's patches instead
    (`mean = mu @ W + b`, `variance = diag(W^T C W)`), and the normalisation is
    folded into the convolution's kernel and offset. The layer then makes one pass
    over its large output where the separate layers make several (the batch norm's
    statistics, normalisation and gradient): on Omniglot-shaped episodes, conv4 MAML
    and ProtoNet took 13-21% less CPU time per task (`benchmarks/throughput.py`). Its
    derivatives of every order are those of the separate layers; the statistics
    move as `batch_norm`'s own rule says. Outside training, and whenever the fold
    does not apply (other strides, dilation, groups, an activation in `conv`, or
    larger patches), the two layers simply run in turn.

    The two layers keep their own weights and names, so `batch_norm` is found and
    handled like any batch norm (e.g. by MAML's per-step batch norm).

    Args:
        conv: a `keras.layers.Conv2D` (channels last).
        batch_norm: a `tfmeta.layers.BatchNormalization` over the convolution's
            channels.
        **kwargs: passed to `keras.layers.Layer` (e.g. `name`).

    Example:
    >>> import keras, numpy as np, tfmeta
    >>> layer = tfmeta.layers.ConvBatchNormalization(
    ...     keras.layers.Conv2D(8, 3, padding="same"),
    ...     tfmeta.layers.BatchNormalization(momentum=0.9))
    >>> y = layer(np.ones((2, 5, 5, 1), "float32"), training=True)
    >>> tuple(y.shape)
    (2, 5, 5, 8)

    """

    def __init__(self, conv, batch_norm, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(conv, keras.layers.Conv2D):
            raise ValueError(
                "Invalid value for argument `conv`: expected a keras.layers.Conv2D. "
                f"Received: conv={conv!r}"
            )
        if not isinstance(batch_norm, BatchNormalization):
            raise ValueError(
                "Invalid value for argument `batch_norm`: expected a "
                f"tfmeta.layers.BatchNormalization. Received: batch_norm={batch_norm!r}"
            )
        if conv.data_format != "channels_last":
            raise ValueError(
                "Invalid value for argument `conv`: expected data_format='channels_last'. "
                f"Received: data_format={conv.data_format!r}"
            )
        self.conv = conv
        self.batch_norm = batch_norm

    def build(self, input_shape):
        if not self.conv.built:
            self.conv.build(input_shape)
        if not self.batch_norm.built:
            self.batch_norm.build(self.conv.compute_output_shape(input_shape))

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(input_shape)

    def _folds(self, inputs) -> bool:
        conv = self.conv
        kernel_height, kernel_width = conv.kernel_size
        return (
            len(inputs.shape) == 4
            and inputs.shape[-1] is not None
            and kernel_height * kernel_width * inputs.shape[-1] <= _MAX_FOLDED_PATCH_SIZE
            and tuple(conv.strides) == (1, 1)
            and tuple(conv.dilation_rate) == (1, 1)
            and conv.groups == 1
            and conv.activation is keras.activations.linear
            and conv.padding in ("same", "valid")
        )

    def call(self, inputs, training=None):
        inputs = tf.convert_to_tensor(inputs)
        if not training or not self._folds(inputs):
            return self.batch_norm(self.conv(inputs), training=training)
        return self._folded(inputs)

    def _folded(self, inputs):
        conv, batch_norm = self.conv, self.batch_norm
        stats_dtype = tf.float64 if inputs.dtype == tf.float64 else tf.float32
        kernel = tf.cast(conv.kernel, stats_dtype)
        centre, variance = self._output_statistics(inputs, kernel)
        gamma, beta = batch_norm._scale_and_offset(stats_dtype)
        scale = gamma * tf.math.rsqrt(variance + batch_norm.epsilon)
        offset = beta - centre * scale
        if conv.use_bias:
            # Batch norm removes the bias: its gradient is zero, and stays a zero tensor
            # (not None) for optimizers and inner loops.
            offset += 0.0 * tf.cast(conv.bias, stats_dtype)
        # The offset is the weight of an extra input channel of ones at the kernel's centre
        # tap, which never reads padding: a bias add here would make TensorFlow's filter
        # gradient compute the bias gradient too, which took 2.6x as long on 2 CPU threads.
        kernel_height, kernel_width = conv.kernel_size
        centre_tap = tf.reshape(
            tf.one_hot((kernel_height - 1) // 2 * kernel_width + (kernel_width - 1) // 2,
                       kernel_height * kernel_width, dtype=stats_dtype),
            [kernel_height, kernel_width, 1, 1])
        folded_kernel = tf.concat([kernel * scale, centre_tap * offset], axis=2)
        ones = tf.ones_like(inputs[..., :1])
        outputs = tf.nn.conv2d(tf.concat([inputs, ones], axis=-1),
                               tf.cast(folded_kernel, inputs.dtype), strides=1,
                               padding=conv.padding.upper())
        mean = centre + tf.cast(conv.bias, stats_dtype) if conv.use_bias else centre
        batch_norm._move_statistics(mean, variance)
        return outputs

    def _output_statistics(self, inputs, kernel):
        """The convolution's batch mean without its bias, and its biased batch variance.

        Every output position is `patch @ W + b`, so these are the mean and covariance of
        the input's patches mapped through the kernel.
        """
        patch_size = kernel.shape[0] * kernel.shape[1] * kernel.shape[2]
        # The patches, gathered by a convolution with one-hot filters (several times faster
        # on CPU than tf.image.extract_patches); rows in (row, column, channel) order.
        one_hot = tf.reshape(tf.eye(patch_size, dtype=kernel.dtype), [*kernel.shape[:3], -1])
        patches = tf.nn.conv2d(tf.cast(inputs, kernel.dtype), one_hot, strides=1,
                               padding=self.conv.padding.upper())
        patches = tf.reshape(patches, [-1, patch_size])
        weights = tf.reshape(kernel, [patch_size, -1])
        patch_mean = tf.reduce_mean(patches, axis=0)
        centred = patches - patch_mean
        covariance = tf.matmul(centred, centred, transpose_a=True) / tf.cast(
            tf.shape(patches)[0], kernel.dtype)
        centre = tf.linalg.matvec(weights, patch_mean, transpose_a=True)
        variance = tf.reduce_sum(weights * tf.matmul(covariance, weights), axis=0)
        return centre, variance

    def get_config(self):
        return {
            **super().get_config(),
            "conv": keras.saving.serialize_keras_object(self.conv),
            "batch_norm": keras.saving.serialize_keras_object(self.batch_norm),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for argument in ("conv", "batch_norm"):
            # Built by this layer's `build`, so that their weights keep this layer's path.
            layer_config = {k: v for k, v in config[argument].items() if k != "build_config"}
            config[argument] = keras.saving.deserialize_keras_object(layer_config)
        return cls(**config)
