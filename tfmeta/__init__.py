"""tfmeta: TensorFlow/Keras-native meta-learning.

Meta-train few-shot learners (MAML, first-order MAML, Reptile, Prototypical
Networks) with `model.fit` on `tf.data` episode pipelines, evaluate them with
confidence intervals, and export SavedModels that adapt inside the serving
graph.
"""

from tfmeta import backbones, callbacks, data, export, layers, metrics
from tfmeta.learners import MAML, GradientLearner, MetaLearner, ProtoNet, Reptile

__version__ = "0.1.0"

__all__ = [
    "MAML",
    "GradientLearner",
    "MetaLearner",
    "ProtoNet",
    "Reptile",
    "__version__",
    "backbones",
    "callbacks",
    "data",
    "export",
    "layers",
    "metrics",
]
