"""tfmeta-train --strategy: two logical CPU devices, and two workers on localhost."""

import csv
import json
import os
import pathlib
import socket
import subprocess
import sys

import keras
import pytest

import tfmeta  # noqa: F401 (registers the learners for loading)

HERE = pathlib.Path(__file__).parent
REPO = HERE.parents[1]
TINY = ["--flagfile=configs/sinusoid_maml.cfg", "--train_steps=4", "--steps_per_epoch=2",
        "--meta_batch_size=4", "--validation_episodes=4", "--verbose=2"]


def train_command(replicas, *flags):
    return [sys.executable, str(HERE / "cli_train.py"), str(replicas), *flags]


def run(command, timeout=240):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("TF_CONFIG", None)
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          env=env, check=False)


def history_rows(model_dir):
    with open(model_dir / "history.csv") as f:
        return list(csv.DictReader(f))


def test_mirrored_over_two_devices_trains_and_saves(tmp_path):
    result = run(train_command(2, *TINY, f"--model_dir={tmp_path}", "--strategy=mirrored"))
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Trained maml for 4 steps" in result.stdout
    assert len(history_rows(tmp_path)) == 2
    learner = keras.saving.load_model(tmp_path / "learner.keras")
    assert learner.inner_steps == 1


def test_a_meta_batch_that_does_not_split_evenly_is_one_line(tmp_path):
    result = run(train_command(2, *TINY, "--meta_batch_size=3", f"--model_dir={tmp_path}",
                               "--strategy=mirrored"))
    assert result.returncode == 1
    assert "tfmeta-train: error: Invalid value for argument `meta_batch_size`" in result.stderr
    assert "Received: meta_batch_size=3" in result.stderr


@pytest.mark.slow
def test_two_workers_write_one_run(tmp_path):
    sockets = [socket.socket() for _ in range(2)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    hosts = [f"127.0.0.1:{sock.getsockname()[1]}" for sock in sockets]
    for sock in sockets:
        sock.close()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    workers = []
    for index in range(2):
        config = {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}}
        workers.append(subprocess.Popen(
            train_command(1, *TINY, f"--model_dir={tmp_path}", "--strategy=multi_worker"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
            env={**env, "TF_CONFIG": json.dumps(config)},
        ))
    try:
        outputs = [worker.communicate(timeout=300) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    for worker, (stdout, stderr) in zip(workers, outputs):
        assert worker.returncode == 0, stderr[-4000:]
        assert "Trained maml for 4 steps" in stdout
    # One history, written by the chief: two epochs, not four rows from two writers.
    assert len(history_rows(tmp_path)) == 2
    assert (tmp_path / "learner.keras").exists()
    assert json.loads((tmp_path / "backup" / "training_metadata.json").read_text())["epoch"] == 2
