"""Backbone arguments: one-line errors naming the argument (issue 17, item 8)."""

import pytest

import tfmeta


def test_conv4_on_images_too_small_says_which_size_works():
    with pytest.raises(ValueError, match="at least 16") as info:
        tfmeta.backbones.conv4((8, 8, 1))
    assert "\x1b[" not in str(info.value) and "\n" not in str(info.value)
    tfmeta.backbones.conv4((16, 16, 1), filters=2)


@pytest.mark.parametrize(
    "build, argument",
    [
        (lambda: tfmeta.backbones.conv4(input_shape=28), "input_shape"),
        (lambda: tfmeta.backbones.conv4(filters="64"), "filters"),
        (lambda: tfmeta.backbones.mlp(input_shape=4), "input_shape"),
        (lambda: tfmeta.backbones.mlp(hidden_units="40"), "hidden_units"),
        (lambda: tfmeta.backbones.mlp(output_units="1"), "output_units"),
    ],
)
def test_wrong_types_for_backbones_are_value_errors(build, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        build()
