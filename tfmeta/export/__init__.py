"""SavedModel export of learners, with the one-episode serving signature."""

from tfmeta.export.export_learner import export_learner
from tfmeta.export.serving_checks import check_served_episode

__all__ = ["check_served_episode", "export_learner"]
