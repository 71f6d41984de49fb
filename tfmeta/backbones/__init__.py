"""Backbones shared by every learner."""

from tfmeta.backbones.conv4 import conv4
from tfmeta.backbones.mlp import mlp

__all__ = ["conv4", "mlp"]
