import json

import keras
import numpy as np
import pytest

import tfmeta


def tiny_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.1), loss="mse")
    return model


def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(8, 2)).astype("float32"), rng.normal(size=(8, 1)).astype("float32")


class StopAt(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("interrupted")


def test_on_one_process_it_backs_up_and_resumes_like_keras(tmp_path):
    x, y = data()
    backup = tfmeta.distribute.BackupAndRestore(str(tmp_path / "backup"))
    model = tiny_model()
    with pytest.raises(RuntimeError, match="interrupted"):
        model.fit(x, y, epochs=4, batch_size=4, verbose=0, callbacks=[backup, StopAt(2)])
    saved = json.loads((tmp_path / "backup" / "training_metadata.json").read_text())
    assert saved["epoch"] == 2
    resumed = tiny_model()
    history = resumed.fit(x, y, epochs=4, batch_size=4, verbose=0, callbacks=[backup])
    assert history.epoch == [2, 3]
    assert not (tmp_path / "backup").exists()


def test_a_worker_other_than_the_chief_restores_but_never_writes(tmp_path, monkeypatch):
    x, y = data()
    chief_backup = tfmeta.distribute.BackupAndRestore(str(tmp_path / "backup"))
    model = tiny_model()
    with pytest.raises(RuntimeError):
        model.fit(x, y, epochs=3, batch_size=4, verbose=0, callbacks=[chief_backup, StopAt(1)])
    files = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "backup").iterdir()}

    monkeypatch.setattr(tfmeta.distribute.BackupAndRestore, "_is_chief", lambda self: False)
    worker_backup = tfmeta.distribute.BackupAndRestore(str(tmp_path / "backup"))
    restored = tiny_model()
    history = restored.fit(x, y, epochs=3, batch_size=4, verbose=0, callbacks=[worker_backup])
    assert history.epoch == [1, 2]
    # Its backups and the end-of-training deletion are the chief's: nothing changed.
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "backup").iterdir()} == files
