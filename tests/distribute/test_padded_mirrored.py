"""Padded episodes under MirroredStrategy (two logical CPUs): the step of the unpadded ones."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).parent


@pytest.mark.slow  # A subprocess that traces two learners under a strategy, about a minute.
def test_padded_mirrored_step_equals_the_unpadded_one():
    result = subprocess.run(
        [sys.executable, str(HERE / "padded_step.py"), "protonet", "maml"],
        capture_output=True, text=True, timeout=600, cwd=HERE,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, check=False)
    assert result.returncode == 0, result.stderr[-4000:]
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [line["learner"] for line in lines] == ["protonet", "maml"]
    for line in lines:
        assert line["replicas"] == 2
        assert abs(line["padded_loss"] - line["loss"]) < 1e-5 * max(1.0, abs(line["loss"]))
        assert line["max_weight_diff"] < 1e-5, line
