"""Keras layers for meta-learning."""

from tfmeta.layers.batch_normalization import BatchNormalization
from tfmeta.layers.cosine_classifier import CosineClassifier
from tfmeta.layers.drop_block import DropBlock
from tfmeta.layers.prototype_logits import PrototypeLogits

__all__ = ["BatchNormalization", "CosineClassifier", "DropBlock", "PrototypeLogits"]
