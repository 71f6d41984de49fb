"""`keras.callbacks.BackupAndRestore` that multi-worker training can share: the chief writes."""

from __future__ import annotations

import json
import math

import keras
from keras.src.utils import file_utils

from tfmeta.distribute.strategies import is_chief


class BackupAndRestore(keras.callbacks.BackupAndRestore):
    """Backs up the training state for fault tolerance; safe with several workers.

    Keras' `BackupAndRestore` writes (and at the end deletes) its backup from
    every process, so under `MultiWorkerMirroredStrategy` the workers would
    write the same files at once. Here only the chief (worker 0) writes and
    deletes; every worker restores from `backup_dir` when `fit` starts, so
    after a worker fails, relaunching every worker with the same command
    resumes all of them from the last backup (weights, optimizer state and
    epoch). `backup_dir` must therefore be a folder that every worker reads:
    a shared disk or a cloud bucket (`gs://...`). With one process it behaves
    exactly like `keras.callbacks.BackupAndRestore`, except that once the
    loss is not finite (a diverged run) it writes no more backups, so the last
    good state is what a resumed run starts from.

    Args:
        backup_dir: the folder of the backup (used for nothing else).
        save_freq: `"epoch"` or a number of batches between backups.
        double_checkpoint: keep the previous backup too, to fall back on when
            the last one cannot be read.
        delete_checkpoint: delete the backup when training ends normally.

    Example:
    >>> import tfmeta
    >>> backup = BackupAndRestore(backup_dir="/tmp/tfmeta_backup")
    >>> # learner.fit(dataset, epochs=10, steps_per_epoch=100, callbacks=[backup])
    """

    def _is_chief(self) -> bool:
        return is_chief(self.model.distribute_strategy)

    def on_train_begin(self, logs=None):
        self._diverged = False
        if self._is_chief():
            super().on_train_begin(logs)
            return
        # A worker other than the chief reads the backup but never repairs it.
        try:
            self._load_model()
        except OSError:
            if not file_utils.exists(self._prev_weights_path):
                raise
            self._load_from(self._prev_weights_path, self._prev_training_metadata_path)

    def _load_from(self, weights_path: str, metadata_path: str) -> None:
        self.model.load_weights(weights_path)
        if file_utils.exists(metadata_path):
            with file_utils.File(metadata_path, "r") as f:
                self.model._initial_epoch = json.loads(f.read())["epoch"]

    def _save_model(self):
        if self._is_chief() and not self._diverged:
            super()._save_model()

    # A backup never records a diverged state: after a non-finite loss the last good
    # backup stays, and a resumed run starts from it.
    _diverged = False

    def on_train_batch_end(self, batch, logs=None):
        self._diverged = self._diverged or _non_finite_loss(logs)
        super().on_train_batch_end(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._diverged = self._diverged or _non_finite_loss(logs)
        super().on_epoch_end(epoch, logs)

    def on_train_end(self, logs=None):
        if self._is_chief():
            super().on_train_end(logs)


def _non_finite_loss(logs) -> bool:
    loss = (logs or {}).get("loss")
    try:
        return loss is not None and not math.isfinite(float(loss))
    except (TypeError, ValueError):
        return False
