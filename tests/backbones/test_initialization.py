"""kernel_initializer of conv4 and ResNet-12: Keras' default or PyTorch's +-1/sqrt(fan_in)."""

import math

import keras
import numpy as np
import pytest

import tfmeta


def fan_in(kernel):
    return int(np.prod(kernel.shape[:-1]))


def check_torch_rule(model):
    kernels = [w for w in model.weights if w.path.endswith("kernel")]
    assert kernels
    for layer in model._flatten_layers(include_self=False):
        kernel = getattr(layer, "kernel", None)
        if kernel is None:
            continue
        bound = 1.0 / math.sqrt(fan_in(kernel))
        values = np.asarray(kernel).ravel()
        assert np.abs(values).max() <= bound
        if values.size >= 1000:  # Uniform: std = bound / sqrt(3), mean 0.
            assert abs(values.std() / (bound / math.sqrt(3)) - 1) < 0.1
            assert abs(values.mean()) < 0.1 * bound
        bias = getattr(layer, "bias", None)
        if bias is not None:
            assert np.abs(np.asarray(bias)).max() <= bound and np.any(np.asarray(bias) != 0)


def test_conv4_torch_initialization():
    keras.utils.set_random_seed(0)
    check_torch_rule(tfmeta.backbones.conv4((28, 28, 1), num_classes=5, kernel_initializer="torch"))


def test_resnet12_torch_initialization():
    keras.utils.set_random_seed(0)
    check_torch_rule(tfmeta.backbones.resnet12((16, 16, 3), filters=(8, 8, 8, 16),
                                               num_classes=5, kernel_initializer="torch"))


@pytest.mark.parametrize("build", [tfmeta.backbones.conv4, tfmeta.backbones.resnet12])
def test_default_is_torch(build):
    keras.utils.set_random_seed(0)
    default = build((16, 16, 3), num_classes=5)
    keras.utils.set_random_seed(0)
    torch = build((16, 16, 3), num_classes=5, kernel_initializer="torch")
    for a, b in zip(default.weights, torch.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_keras_rule_on_request():
    keras.utils.set_random_seed(0)
    model = tfmeta.backbones.conv4((28, 28, 1), num_classes=5, kernel_initializer="keras")
    kernel = model.get_layer("block1_conv").kernel
    glorot = math.sqrt(6.0 / (fan_in(kernel) + 9 * kernel.shape[-1]))
    assert np.abs(np.asarray(kernel)).max() <= glorot
    assert np.abs(np.asarray(kernel)).max() > 1.0 / math.sqrt(fan_in(kernel))
    assert not np.any(np.asarray(model.get_layer("logits").bias))


@pytest.mark.parametrize("build", [tfmeta.backbones.conv4, tfmeta.backbones.resnet12])
def test_bad_initializer_is_one_line(build):
    with pytest.raises(ValueError, match=r"`kernel_initializer`: expected one of 'keras', "
                       r"'torch'. Received: kernel_initializer='pytorch'"):
        build((28, 28, 3), kernel_initializer="pytorch")
