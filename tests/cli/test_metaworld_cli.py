"""tfmeta-train's Meta-World experiments: the policy network and the flags."""

import json

import pytest
from cli_helpers import run_in_process

from tfmeta.cli import builders, evaluate
from tfmeta.cli.experiment import Experiment


def test_the_policy_is_an_mlp_from_39_states_to_4_actions_in_the_unit_box():
    experiment = Experiment(dataset="metaworld", backbone="mlp", hidden_units=(256, 256),
                            output_activation="tanh")
    policy = builders.backbone(experiment)
    assert policy.input_shape == (None, 39) and policy.output_shape == (None, 4)
    assert policy.get_layer("output").get_config()["activation"] == "tanh"


def test_anil_adapts_the_output_layer_only():
    experiment = Experiment(dataset="metaworld", backbone="mlp", adapt_layers="output")
    learner = builders.learner(experiment)
    assert experiment.adapt_layers == ("output",)
    adapted = [learner.model.trainable_variables[i].path for i in learner._adapted_indices]
    assert adapted == ["output/kernel", "output/bias"]


@pytest.mark.parametrize("settings, flag", [
    ({"metaworld_benchmark": "ML2"}, "`--metaworld_benchmark`"),
    ({"metaworld_horizon": 0}, "`--metaworld_horizon`"),
    ({"metaworld_action_noise": -1.0}, "`--metaworld_action_noise`"),
    ({"metaworld_query_starts": "elsewhere"}, "`--metaworld_query_starts`"),
    ({"metaworld_moved_demonstrations": 0}, "`--metaworld_moved_demonstrations`"),
    ({"output_activation": "relu"}, "`--output_activation`"),
    ({"backbone": "conv4"}, "metaworld examples are vectors"),
    ({"learner": "reptile", "adapt_layers": ("output",)}, "`--adapt_layers`"),
])
def test_bad_metaworld_settings_name_the_flag(settings, flag):
    with pytest.raises(ValueError, match=flag):
        Experiment(**{"dataset": "metaworld", "backbone": "mlp", **settings})


def tiny_run(root, flags):
    """Trains a tiny MAML behaviour-cloning run in `root / "run"` through tfmeta-train."""
    from tfmeta.cli import train

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TFMETA_CACHE_DIR", str(root / "cache"))
        run_in_process(train, [
            "--dataset=metaworld", "--metaworld_goals=2", "--metaworld_horizon=100",
            "--backbone=mlp", "--hidden_units=16", "--output_activation=tanh", "--shots=1",
            "--queries=1", "--meta_batch_size=2", "--train_steps=2", "--steps_per_epoch=2",
            "--verbose=0", f"--model_dir={root / 'run'}", *flags])
    return root


@pytest.fixture(scope="module")
def reach_run(tmp_path_factory):
    """A tiny run on two reach goals."""
    return tiny_run(tmp_path_factory.mktemp("metaworld_run"),
                    ["--metaworld_task=reach-v3", "--metaworld_demonstrations=2"])


def evaluate_rollouts(root, flags, tmp_path, monkeypatch, capsys):
    """Runs tfmeta-evaluate --rollouts on the run under `root`: (printed line, JSON)."""
    monkeypatch.setenv("TFMETA_CACHE_DIR", str(root / "cache"))
    output = tmp_path / "success.json"
    run_in_process(evaluate, [f"--model_dir={root / 'run'}", *flags, f"--output={output}"])
    return capsys.readouterr().out.strip().splitlines()[-1], json.loads(output.read_text())


def test_evaluate_rollouts_writes_the_success_json(reach_run, tmp_path, monkeypatch, capsys):
    line, result = evaluate_rollouts(reach_run, ["--rollouts=2", "--shots=1", "--starts=own"],
                                     tmp_path, monkeypatch, capsys)
    assert line.startswith("success: ") and "(95% Wilson, 2 rollouts, 1-shot, reach-v3 ML1" in line
    assert result["metric"] == "success" and result["episodes"] == 2 and result["shots"] == 1
    low, high = result["interval"]
    assert 0 <= low <= result["mean"] <= high <= 1 and result["starts"] == "own"


def test_rollouts_of_a_run_on_other_data_are_refused_in_one_line(sinusoid_run, capsys):
    with pytest.raises(SystemExit):
        run_in_process(evaluate, [f"--model_dir={sinusoid_run}", "--rollouts=2"])
    error = capsys.readouterr().err.strip()
    assert error.startswith("tfmeta-evaluate: error: ") and "\n" not in error
    assert "need a run trained with --dataset=metaworld" in error


@pytest.fixture(scope="module")
def ml10_run(tmp_path_factory):
    """A tiny ML10 run (2 goals of each of the 10 training types) meta-trained on episodes of
    one task type across its goals (--metaworld_starts=other_tasks)."""
    return tiny_run(tmp_path_factory.mktemp("metaworld_ml10_run"), [
        "--metaworld_task=all", "--metaworld_benchmark=ML10", "--metaworld_demonstrations=1",
        "--metaworld_starts=other_tasks"])


@pytest.mark.slow  # Building ML10 costs ~9 s of CPU per process, recording 15 task types.
def test_evaluate_rollouts_on_ml10_adapts_on_other_tasks_of_each_held_out_type(
        ml10_run, tmp_path, monkeypatch, capsys):
    line, result = evaluate_rollouts(
        ml10_run, ["--rollouts=5", "--shots=1", "--starts=other_tasks"], tmp_path, monkeypatch,
        capsys)
    assert line.startswith("success: ") and "1-shot, all ML10, other_tasks starts)" in line
    assert result["starts"] == "other_tasks" and result["benchmark"] == "ML10"
    # One held-out goal of each of the five test types (each with a sibling to adapt on).
    assert set(result["per_task"]) == {"drawer-open-v3", "door-close-v3", "shelf-place-v3",
                                       "sweep-into-v3", "lever-pull-v3"}
    assert result["episodes"] == 5
