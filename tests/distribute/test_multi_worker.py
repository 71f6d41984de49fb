"""MultiWorkerMirroredStrategy with two worker processes on localhost.

Each worker is `multi_worker.py` in its own process with its own `TF_CONFIG`
(free ports on 127.0.0.1); another process trains the same learners without a
strategy. One interrupted and resumed job (the `cluster` fixture) serves every
test. Every process runs under a time limit and is killed at the end.
"""

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

# About a minute of process start-up and tracing (90 s on two busy cores): slow.
pytestmark = pytest.mark.slow

HERE = pathlib.Path(__file__).parent
TIMEOUT = 240  # Seconds a process may take (two busy cores shared by three processes).
TOLERANCE = 1e-5


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class Processes:
    """Starts the scripts' processes and makes sure none outlives the test."""

    def __init__(self, directory):
        self.directory = directory
        self.running = []

    def start(self, name, *args, tf_config=None):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        env.pop("TF_CONFIG", None)
        if tf_config is not None:
            env["TF_CONFIG"] = json.dumps(tf_config)
        log = open(self.directory / f"{name}.log", "w")  # The child keeps its own handle.
        process = subprocess.Popen(
            [sys.executable, str(HERE / "multi_worker.py"), *map(str, args)],
            stdout=log, stderr=subprocess.STDOUT, cwd=HERE, env=env,
        )
        log.close()
        process.log_path = self.directory / f"{name}.log"
        self.running.append(process)
        return process

    def start_workers(self, name, *args):
        hosts = [f"127.0.0.1:{port}" for port in free_ports(2)]
        return [
            self.start(f"{name}{index}", "worker", self.directory / f"{name}{index}.npz", *args,
                       tf_config={"cluster": {"worker": hosts},
                                  "task": {"type": "worker", "index": index}})
            for index in range(2)
        ]

    def wait(self, process, expected=0):
        try:
            code = process.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            pytest.fail(f"timed out; log:\n{self.tail(process)}")
        assert code == expected, self.tail(process)

    @staticmethod
    def tail(process):
        return process.log_path.read_text()[-4000:]

    def kill_all(self):
        for process in self.running:
            if process.poll() is None:
                process.kill()
                process.wait()


def weights(arrays, learner):
    names = sorted((k for k in arrays.files if k.startswith(f"{learner}/weight")),
                   key=lambda k: int(k.rsplit("weight", 1)[1]))
    return [arrays[k] for k in names]


def max_difference(first, second):
    return max(float(np.abs(a - b).max()) for a, b in zip(first, second))


LEARNERS = ["maml", "reptile", "protonet"]
EPOCHS = ["--epochs", 3, "--steps", 1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One job, interrupted once: the results of its workers and of one process.

    Both workers start MAML; worker 1 dies at the end of epoch 1, after the chief
    backed that epoch up, and the chief then waits for it in the next all-reduce
    until the job is stopped. The same command, run again on both workers, resumes
    MAML from the backup and trains Reptile and ProtoNet from the start. The
    reference process trains MAML for one epoch, then starts a new `fit` from
    epoch 1 (as the restarted job does), and the other learners in one go.
    """
    directory = tmp_path_factory.mktemp("cluster")
    processes = Processes(directory)
    backup = directory / "backup"
    metadata = backup / "maml" / "training_metadata.json"
    try:
        reference = processes.start("reference", "reference", directory / "reference.npz",
                                    *LEARNERS, *EPOCHS, "--resume", "maml=1")
        chief, worker = processes.start_workers("first", "maml", *EPOCHS, "--backup", backup,
                                                "--exit-after-epoch", 1)
        processes.wait(worker, expected=3)
        deadline = time.monotonic() + TIMEOUT
        while not (metadata.exists()
                   and json.loads(metadata.read_text() or "{}").get("epoch") == 1):
            assert time.monotonic() < deadline, processes.tail(chief)
            time.sleep(0.2)
        if chief.poll() is None:
            chief.send_signal(signal.SIGKILL)
        chief.wait(timeout=TIMEOUT)
        for process in processes.start_workers("second", *LEARNERS, *EPOCHS,
                                               "--backup", backup):
            processes.wait(process)
        processes.wait(reference)
        yield {
            "workers": [np.load(directory / f"second{index}.npz") for index in range(2)],
            "reference": np.load(directory / "reference.npz"),
            "backup": backup,
        }
    finally:
        processes.kill_all()


@pytest.mark.parametrize("learner", LEARNERS)
def test_workers_get_disjoint_halves_of_each_meta_batch(cluster, learner):
    halves = [result[f"{learner}/targets"] for result in cluster["workers"]]
    expected = cluster["reference"][f"{learner}/targets"]
    assert halves[0].shape[1] * 2 == expected.shape[1]
    np.testing.assert_array_equal(np.concatenate(halves, axis=1), expected)


@pytest.mark.parametrize("learner", LEARNERS)
def test_two_workers_train_like_one_process(cluster, learner):
    first, second = (weights(result, learner) for result in cluster["workers"])
    assert max_difference(first, second) == 0.0
    assert max_difference(first, weights(cluster["reference"], learner)) < TOLERANCE


def test_a_killed_worker_resumes_from_the_backup(cluster):
    # Weights, optimizer state and epoch came from the backup: only epochs 2 and 3 ran,
    # ending where one process ends (compared above).
    for result in cluster["workers"]:
        assert int(result["maml/epochs_run"]) == 2
        assert int(result["reptile/epochs_run"]) == 3
    # The chief deleted the backups at the end of training.
    assert not any(cluster["backup"].glob("*/*.json"))
