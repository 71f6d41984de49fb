"""MirroredStrategy over two logical CPU devices: the same update as one device.

Logical devices must be configured before TensorFlow starts, so each check
runs `mirrored_step.py` in a subprocess (one process for several learners).
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).parent
# float32 sums in another order: observed differences are ~1e-7 after two SGD steps.
TOLERANCE = 1e-5


def run_mirrored(*learners, replicas=2, timeout=240):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, str(HERE / "mirrored_step.py"), str(replicas), *learners],
        capture_output=True, text=True, timeout=timeout, cwd=HERE, env=env, check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    for line in lines:
        assert "error" not in line, line
    assert [line["learner"] for line in lines] == list(learners)
    return {line["learner"]: line for line in lines}


@pytest.fixture(scope="module")
def results():
    return run_mirrored("maml", "fomaml", "reptile", "reptile_adam", "protonet", "protonet_conv")


@pytest.mark.parametrize("learner", ["maml", "fomaml", "reptile", "reptile_adam", "protonet"])
def test_two_replicas_give_the_one_device_update(results, learner):
    result = results[learner]
    assert result["replicas"] == 2
    assert result["per_replica_meta_batch"] == [2, 2]  # Static: tasks can be unrolled.
    # The steps changed the weights, and both runs changed them alike.
    assert result["trainable_variables_max_change"] > 1e-2
    assert result["trainable_variables_max_diff"] < TOLERANCE
    assert result["non_trainable_variables_max_diff"] < TOLERANCE
    assert result["replica_spread"] == 0.0


@pytest.mark.parametrize("learner", ["maml", "reptile"])
def test_batch_norm_statistics_follow_the_whole_meta_batch(results, learner):
    # The moving statistics moved, to the one-device mean over all tasks (checked above),
    # identically on both replicas.
    result = results[learner]
    assert result["non_trainable_variables_count"] == 2
    assert result["non_trainable_variables_max_change"] > 1e-2
    assert result["replica_spread"] == 0.0


def test_keras_batch_norm_copies_stay_in_sync(results):
    # ProtoNet's conv4 normalises over each replica's examples (so weights legitimately
    # differ from one device's), but the replicas' copies of every variable stay equal.
    result = results["protonet_conv"]
    assert result["non_trainable_variables_max_change"] > 1e-3
    assert result["replica_spread"] == 0.0


@pytest.mark.slow
def test_learned_inner_rates_and_unrolled_conv_tasks():
    results = run_mirrored("meta_sgd", "maml_conv", timeout=400)
    for result in results.values():
        assert result["trainable_variables_max_change"] > 1e-3
        assert result["trainable_variables_max_diff"] < TOLERANCE
        assert result["non_trainable_variables_max_diff"] < TOLERANCE
        assert result["replica_spread"] == 0.0
