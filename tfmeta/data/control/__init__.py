"""Robot control: Meta-World demonstrations as imitation episodes, and simulator rollouts.

`tfmeta.data.metaworld` gives the episodes; `evaluate_rollouts` adapts a policy once to K
demonstrations of each held-out goal and measures its success in the simulator.
"""

from tfmeta.data.control.demonstrations import Demonstrations as Demonstrations
from tfmeta.data.control.demonstrations import load_demonstrations as load_demonstrations
from tfmeta.data.control.evaluation import RolloutResult as RolloutResult
from tfmeta.data.control.evaluation import evaluate_rollouts as evaluate_rollouts
from tfmeta.data.control.evaluation import learner_policy as learner_policy
from tfmeta.data.control.rollouts import Rollouts as Rollouts
from tfmeta.data.control.rollouts import expert_policy as expert_policy
from tfmeta.data.control.rollouts import rollout as rollout
from tfmeta.data.control.rollouts import wilson_interval as wilson_interval
from tfmeta.data.control.simulator import goals as goals

__all__ = [
    "Demonstrations",
    "RolloutResult",
    "Rollouts",
    "evaluate_rollouts",
    "expert_policy",
    "goals",
    "learner_policy",
    "load_demonstrations",
    "rollout",
    "wilson_interval",
]
