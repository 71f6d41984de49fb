"""Backbones shared by every learner."""

from tfmeta.backbones.conv4 import conv4
from tfmeta.backbones.mlp import mlp
from tfmeta.backbones.resnet12 import resnet12

__all__ = ["conv4", "mlp", "resnet12"]
