"""Keras layers for meta-learning."""

from tfmeta.layers.batch_normalization import BatchNormalization
from tfmeta.layers.conv_batch_normalization import ConvBatchNormalization
from tfmeta.layers.cosine_classifier import CosineClassifier
from tfmeta.layers.drop_block import DropBlock
from tfmeta.layers.hashed_ngrams import HashedNgrams
from tfmeta.layers.prototype_logits import PrototypeLogits
from tfmeta.layers.residual_adapter import ResidualAdapter

__all__ = [
    "BatchNormalization",
    "ConvBatchNormalization",
    "CosineClassifier",
    "DropBlock",
    "HashedNgrams",
    "PrototypeLogits",
    "ResidualAdapter",
]
