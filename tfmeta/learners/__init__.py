"""Meta-learners: MAML (and first-order MAML), Reptile, Prototypical Networks."""

from tfmeta.learners.gradient_learner import GradientLearner
from tfmeta.learners.maml import MAML
from tfmeta.learners.meta_learner import MetaLearner
from tfmeta.learners.protonet import ProtoNet
from tfmeta.learners.reptile import Reptile

__all__ = ["MAML", "GradientLearner", "MetaLearner", "ProtoNet", "Reptile"]
