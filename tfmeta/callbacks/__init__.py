"""Keras callbacks (and a learning-rate schedule) for meta-learning with `fit`.

Standard Keras callbacks (`ModelCheckpoint`, `EarlyStopping`, `TensorBoard`,
`BackupAndRestore`, `CSVLogger`) work with every tfmeta learner as they are;
these add what episodic training needs.
"""

from tfmeta.callbacks.episode_evaluation import EpisodeEvaluation
from tfmeta.callbacks.episode_step_decay import EpisodeStepDecay

__all__ = ["EpisodeEvaluation", "EpisodeStepDecay"]
