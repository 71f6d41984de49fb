"""tfmeta-evaluate in-process: the printed line, the JSON file, determinism, errors."""

import json
import re

import numpy as np
import pytest
from cli_helpers import run_in_process

from tfmeta.cli import evaluate
from tfmeta.cli.evaluation import EvaluationResult
from tfmeta.cli.evaluation import evaluate as evaluate_learner

LINE = re.compile(r"^mse: (\d+\.\d{4}) ± (\d+\.\d{4}) \(95% CI, 30 episodes, 10-shot\)$")


def test_prints_mean_and_interval_and_writes_json(sinusoid_run, tmp_path, capsys):
    output = tmp_path / "results" / "r.json"
    run_in_process(evaluate, [f"--model_dir={sinusoid_run}", "--episodes=30",
                              f"--output={output}"])
    line = capsys.readouterr().out.strip()
    match = LINE.match(line)
    assert match, line
    result = json.loads(output.read_text())
    assert set(result) == {"metric", "mean", "ci95", "episodes", "ways", "shots"}
    assert result["metric"] == "mse" and result["episodes"] == 30 and result["shots"] == 10
    assert result["ways"] is None
    assert float(match.group(1)) == pytest.approx(result["mean"], abs=1e-4)
    assert float(match.group(2)) == pytest.approx(result["ci95"], abs=1e-4)


def test_the_same_seed_gives_the_same_episodes(sinusoid_learner):
    learner, experiment = sinusoid_learner
    first = evaluate_learner(learner, experiment, episodes=7, batch_size=3)
    second = evaluate_learner(learner, experiment, episodes=7, batch_size=7)
    assert first.episodes == second.episodes == 7
    assert first.mean == pytest.approx(second.mean, rel=1e-5)
    other = evaluate_learner(learner, experiment, episodes=7, seed=1)
    assert other.mean != pytest.approx(first.mean, rel=1e-5)


def test_adaptation_steps_change_the_result(sinusoid_learner):
    learner, experiment = sinusoid_learner
    results = [evaluate_learner(learner, experiment, episodes=20, inner_steps=steps).mean
               for steps in (0, 3)]
    assert results[0] != pytest.approx(results[1])
    default = evaluate_learner(learner, experiment, episodes=20).mean
    assert default == pytest.approx(results[1], rel=1e-4)  # the run's eval_inner_steps=3


def test_classification_line_format():
    result = EvaluationResult("accuracy", 0.98712, 0.00213, 1000, 5, 1)
    assert str(result) == "accuracy: 0.9871 ± 0.0021 (95% CI, 1000 episodes, 5-way 1-shot)"
    assert result.to_dict() == {"metric": "accuracy", "mean": 0.98712, "ci95": 0.00213,
                                "episodes": 1000, "ways": 5, "shots": 1}


def test_interval_is_the_one_of_the_metrics_package(sinusoid_learner, monkeypatch):
    from tfmeta import metrics

    seen = []

    def spy(values):
        seen.append(np.asarray(values))
        return metrics.mean_confidence_interval(values)

    monkeypatch.setattr("tfmeta.cli.evaluation.metrics",
                        type("M", (), {**vars(metrics), "mean_confidence_interval": spy}))
    learner, experiment = sinusoid_learner
    result = evaluate_learner(learner, experiment, episodes=9, batch_size=4)
    assert seen[0].shape == (9,)
    assert result.ci95 == pytest.approx(1.96 * seen[0].std() / 3)


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--episodes=0"], "`--episodes`"),
        (["--inner_steps=-1"], "`--inner_steps`"),
    ],
)
def test_bad_values_are_one_line(sinusoid_run, capsys, argv, fragment):
    with pytest.raises(SystemExit):
        run_in_process(evaluate, [f"--model_dir={sinusoid_run}", *argv])
    error = capsys.readouterr().err
    assert error.startswith("tfmeta-evaluate: error: ") and error.count("\n") == 1
    assert fragment in error


def test_a_folder_without_a_model(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        run_in_process(evaluate, [f"--model_dir={tmp_path}"])
    assert info.value.code == 1
    error = capsys.readouterr().err
    assert error.startswith("tfmeta-evaluate: error: No trained model in")
    assert "learner.keras" in error and error.count("\n") == 1


def test_the_experiment_of_a_run_is_read_without_loading_the_learner(sinusoid_run, tmp_path):
    from tfmeta.cli.evaluation import trained_experiment

    experiment = trained_experiment(sinusoid_run)
    assert (experiment.learner, experiment.meta_batch_size) == ("maml", 2)
    assert trained_experiment(tmp_path) is None


def test_cpu_threads_choices(sinusoid_run, capsys):
    import tensorflow as tf

    run_in_process(evaluate, [f"--model_dir={sinusoid_run}", "--episodes=5",
                              "--cpu_threads=tensorflow"])
    assert capsys.readouterr().out.startswith("mse: ")
    if tf.config.threading.get_intra_op_parallelism_threads() == 1:
        return  # This process already runs one thread per op: nothing to refuse.
    # TensorFlow has started in this process, with other pools: a clear one-line error.
    with pytest.raises(SystemExit):
        run_in_process(evaluate, [f"--model_dir={sinusoid_run}", "--cpu_threads=task_parallel"])
    error = capsys.readouterr().err
    assert "tfmeta-evaluate: error: Invalid value for argument `cpu_threads`" in error
