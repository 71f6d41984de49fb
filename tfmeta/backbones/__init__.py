"""Backbones shared by every learner."""

from tfmeta.backbones.bag_of_ngrams import bag_of_ngrams, ngram_vectorizer
from tfmeta.backbones.conv4 import conv4
from tfmeta.backbones.mlp import mlp
from tfmeta.backbones.resnet12 import resnet12

__all__ = ["bag_of_ngrams", "conv4", "mlp", "ngram_vectorizer", "resnet12"]
