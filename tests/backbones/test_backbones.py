import keras
import numpy as np
import pytest

import tfmeta


def test_conv4_shapes_and_layers():
    encoder = tfmeta.backbones.conv4((28, 28, 1))
    assert encoder.output_shape == (None, 64)
    convolutions = (3 * 3 * 1 * 64 + 64) + 3 * (3 * 3 * 64 * 64 + 64)
    batch_norms = 4 * (4 * 64)  # gamma, beta, moving mean and variance
    assert encoder.count_params() == convolutions + batch_norms  # 112,448
    classifier = tfmeta.backbones.conv4((84, 84, 3), filters=32, num_classes=5)
    assert classifier.output_shape == (None, 5)
    kinds = [type(layer).__name__ for layer in encoder.layers[1:8]]
    # Block 0's batch norm folds into its convolution in training (few input channels).
    assert kinds == ["ConvBatchNormalization", "ReLU", "MaxPooling2D",
                     "Conv2D", "BatchNormalization", "ReLU", "MaxPooling2D"]
    first = encoder.get_layer("block0_conv_bn")
    assert (first.conv.name, first.batch_norm.name) == ("block0_conv", "block0_bn")
    assert encoder.layers[5].momentum == first.batch_norm.momentum == 0.9
    assert isinstance(encoder.layers[5], tfmeta.layers.BatchNormalization)


def test_mlp_is_the_maml_regressor():
    model = tfmeta.backbones.mlp()
    assert model.output_shape == (None, 1)
    assert model.count_params() == (1 * 40 + 40) + (40 * 40 + 40) + (40 + 1)
    assert model(np.zeros((3, 1), "float32")).shape == (3, 1)


def test_backbones_round_trip_through_config():
    for model in (tfmeta.backbones.conv4(num_classes=5), tfmeta.backbones.mlp()):
        clone = keras.Model.from_config(model.get_config())
        assert clone.count_params() == model.count_params()


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: tfmeta.backbones.conv4((28, 28)), "input_shape"),
        (lambda: tfmeta.backbones.conv4(filters=0), "filters"),
        (lambda: tfmeta.backbones.conv4(num_classes=0), "num_classes"),
        (lambda: tfmeta.backbones.conv4(batch_norm_momentum=1.0), "batch_norm_momentum"),
        (lambda: tfmeta.backbones.mlp(hidden_units=(0,)), "hidden_units"),
        (lambda: tfmeta.backbones.mlp(output_units=0), "output_units"),
    ],
)
def test_bad_arguments(build, match):
    with pytest.raises(ValueError, match=match):
        build()
