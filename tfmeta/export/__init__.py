"""SavedModel and LiteRT export of learners, with the one-episode serving signatures."""

from tfmeta.export.export_learner import export_learner
from tfmeta.export.litert import export_litert
from tfmeta.export.litert_model import LiteRTLearner, read_metadata
from tfmeta.export.serving_checks import check_served_episode
from tfmeta.export.token_ids import read_vocabulary, token_id_model, tokenize

__all__ = [
    "LiteRTLearner",
    "check_served_episode",
    "export_learner",
    "export_litert",
    "read_metadata",
    "read_vocabulary",
    "token_id_model",
    "tokenize",
]
