"""ProtoNet 5-way 1-shot through the CLI on the real Omniglot in $TFMETA_DATA_DIR (slow)."""

import json
import os
from pathlib import Path

import pytest
from cli_helpers import CONFIGS, run_in_process

from tfmeta.cli import evaluate, train


@pytest.fixture
def data_dir():
    value = os.environ.get("TFMETA_DATA_DIR")
    if not value or not (Path(value) / "omniglot").is_dir():
        pytest.skip("real-Omniglot CLI test: TFMETA_DATA_DIR with omniglot/ is not set "
                    "(CI sets it to ../shared/data)")
    return value


@pytest.mark.slow
def test_protonet_5w1s_trains_and_evaluates(data_dir, tmp_path, capsys):
    model_dir, output = tmp_path / "protonet", tmp_path / "result.json"
    run_in_process(train, [f"--flagfile={CONFIGS / 'omniglot_protonet_5w1s.cfg'}",
                           f"--model_dir={model_dir}", "--train_steps=20",
                           "--validation_episodes=20", "--verbose=0"])
    run_in_process(evaluate, [f"--model_dir={model_dir}", "--episodes=20",
                              f"--output={output}"])
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("accuracy: ") and line.endswith("(95% CI, 20 episodes, 5-way 1-shot)")
    result = json.loads(output.read_text())
    assert result["metric"] == "accuracy" and (result["ways"], result["shots"]) == (5, 1)
    assert 0.2 <= result["mean"] <= 1.0  # better than chance after 20 episodes, typically


@pytest.mark.slow
def test_20_way_evaluation_of_the_same_model(data_dir, tmp_path, capsys):
    model_dir = tmp_path / "protonet"
    run_in_process(train, [f"--flagfile={CONFIGS / 'omniglot_protonet_5w1s.cfg'}",
                           f"--model_dir={model_dir}", "--train_steps=2",
                           "--validation_episodes=0", "--verbose=0"])
    run_in_process(evaluate, [f"--model_dir={model_dir}", "--episodes=4", "--ways=20",
                              "--shots=5", "--queries=5"])
    assert "(95% CI, 4 episodes, 20-way 5-shot)" in capsys.readouterr().out
