"""Meta-learners: MAML (FOMAML, MAML++), Reptile, ProtoNet, and the pre-training Baseline."""

from tfmeta.learners.baseline import Baseline
from tfmeta.learners.gradient_learner import GradientLearner
from tfmeta.learners.maml import MAML
from tfmeta.learners.meta_learner import MetaLearner
from tfmeta.learners.protonet import ProtoNet
from tfmeta.learners.reptile import Reptile
from tfmeta.learners.test_time_adaptation import TestTimeAdaptation

__all__ = ["MAML", "Baseline", "GradientLearner", "MetaLearner", "ProtoNet", "Reptile",
           "TestTimeAdaptation"]
