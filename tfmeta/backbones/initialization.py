"""How a backbone's convolutions and dense layers are initialised: Keras' or PyTorch's rule."""

from __future__ import annotations

import math
from typing import Any

import keras

from tfmeta.data.arguments import check_choice

KERNEL_INITIALIZERS = ("keras", "torch")
# The default of conv4 and ResNet-12 (and of tfmeta-train's --kernel_initializer), chosen by
# measurement (issue 28): ProtoNet on Tiny ImageNet learned faster with it (38.67 / 54.26% against
# 37.78 / 52.05% at 1,000 episodes) and no worse on Omniglot (97.88 against 97.68%, same episodes).
DEFAULT_KERNEL_INITIALIZER = "torch"


def check_kernel_initializer(value: Any) -> str:
    """Checks `kernel_initializer`: "keras" (Glorot uniform, zero biases) or "torch".

    Example:
    >>> check_kernel_initializer("torch")
    'torch'
    """
    return check_choice("kernel_initializer", value, KERNEL_INITIALIZERS)


def layer_initializers(kernel_initializer: str, fan_in: int) -> dict[str, Any]:
    """The initializer arguments of a Conv2D or Dense layer whose kernel has `fan_in` inputs.

    "keras": none (Keras' defaults, Glorot uniform kernels and zero biases). "torch":
    PyTorch's default for `nn.Conv2d` and `nn.Linear` (`kaiming_uniform_(a=sqrt(5))`), the
    kernel and the bias uniform in `[-1/sqrt(fan_in), 1/sqrt(fan_in)]`, `fan_in` being the
    inputs of one output unit (kernel height * width * input channels for a convolution).

    Example:
    >>> sorted(layer_initializers("torch", 9))
    ['bias_initializer', 'kernel_initializer']
    """
    if kernel_initializer == "keras":
        return {}
    bound = 1.0 / math.sqrt(fan_in)
    return {"kernel_initializer": keras.initializers.RandomUniform(-bound, bound),
            "bias_initializer": keras.initializers.RandomUniform(-bound, bound)}
