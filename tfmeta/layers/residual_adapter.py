"""A task-specific residual adapter: a 1x1 convolution beside a frozen convolution (TSA)."""

import keras
import tensorflow as tf

from tfmeta.layers.conv_batch_normalization import ConvBatchNormalization


@keras.saving.register_keras_serializable(package="tfmeta")
class ResidualAdapter(keras.layers.Layer):
    """`conv(x) + x * A`: a convolution plus a parallel 1x1 convolution `A` of its input.

    The parallel residual adapter of Li, Liu and Bilen (CVPR 2022, "Cross-domain Few-shot
    Learning with Task-specific Adapters", after Rebuffi et al. 2018): beside each frozen
    convolution of a backbone, a 1x1 convolution `A` `[1, 1, C_in, C_out]` with the
    convolution's strides is added to the convolution's output, before its bias,
    activation and (for a `tfmeta.layers.ConvBatchNormalization`) batch norm. `A` starts
    at zero, so the adapted network starts as the frozen one exactly (the paper starts
    it at 1e-4 times the identity, which is nearly the same function); its gradient is
    not zero there, so the support loss moves it from the first step.

    The wrapped layer is the caller's own object (its weights are shared, not copied);
    only `A` (`adapter_kernel`) is new.

    Args:
        layer: a built `keras.layers.Conv2D` (channels last, `padding="same"`, or a 1x1
            kernel with `padding="valid"`) or a `tfmeta.layers.ConvBatchNormalization`
            holding one.
        **kwargs: passed to `keras.layers.Layer` (e.g. `name`).

    Example:
    >>> import keras, numpy as np
    >>> conv = keras.layers.Conv2D(4, 3, padding="same")
    >>> conv.build((None, 5, 5, 2))
    >>> adapted = ResidualAdapter(conv)
    >>> x = np.ones((1, 5, 5, 2), "float32")
    >>> bool(np.allclose(adapted(x), conv(x)))
    True
    """

    def __init__(self, layer, **kwargs):
        super().__init__(**kwargs)
        conv = layer.conv if isinstance(layer, ConvBatchNormalization) else layer
        if not isinstance(conv, keras.layers.Conv2D) or type(conv).__name__ != "Conv2D":
            raise ValueError(
                "Invalid value for argument `layer`: expected a keras.layers.Conv2D or a "
                f"tfmeta.layers.ConvBatchNormalization. Received: layer={layer!r}"
            )
        kernel_size = tuple(conv.kernel_size)
        if (conv.data_format != "channels_last" or conv.groups != 1
                or tuple(conv.dilation_rate) != (1, 1)
                or not (conv.padding == "same" or kernel_size == (1, 1))):
            raise ValueError(
                "Invalid value for argument `layer`: a residual adapter goes beside a "
                "channels-last, ungrouped, undilated Conv2D with padding='same' (or a 1x1 "
                f"kernel), whose output a strided 1x1 convolution matches. Received: layer "
                f"{conv.name!r} with kernel_size={kernel_size}, padding={conv.padding!r}, "
                f"groups={conv.groups}, dilation_rate={tuple(conv.dilation_rate)}, "
                f"data_format={conv.data_format!r}"
            )
        if not conv.built:
            raise ValueError(
                f"Invalid value for argument `layer`: expected a built layer. Received: "
                f"layer={conv.name!r} with built=False"
            )
        self.layer = layer
        self._conv = conv
        in_channels = int(conv.kernel.shape[2])
        self.adapter_kernel = self.add_weight(
            shape=(1, 1, in_channels, conv.filters), initializer="zeros",
            name="adapter_kernel")

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def call(self, inputs, training=None):
        conv = self._conv
        outputs = conv.convolution_op(inputs, conv.kernel)
        outputs = outputs + tf.nn.conv2d(inputs, tf.cast(self.adapter_kernel, inputs.dtype),
                                         strides=tuple(conv.strides), padding="SAME")
        if conv.use_bias:
            outputs = outputs + conv.bias
        if conv.activation is not None:
            outputs = conv.activation(outputs)
        if isinstance(self.layer, ConvBatchNormalization):
            outputs = self.layer.batch_norm(outputs, training=training)
        return outputs

    def get_config(self):
        return {**super().get_config(), "layer": keras.saving.serialize_keras_object(self.layer)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layer"] = keras.saving.deserialize_keras_object(config["layer"])
        return cls(**config)
