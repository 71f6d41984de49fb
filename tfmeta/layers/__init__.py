"""Keras layers for meta-learning."""

from tfmeta.layers.prototype_logits import PrototypeLogits

__all__ = ["PrototypeLogits"]
