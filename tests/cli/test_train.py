"""tfmeta-train in-process: outputs, resuming, and errors as one line."""

import csv
import json

import keras
import pytest
from cli_helpers import CONFIGS, run_in_process

from tfmeta.cli import train, training
from tfmeta.cli.experiment import Experiment

SINE = [f"--flagfile={CONFIGS / 'sinusoid_maml.cfg'}", "--meta_batch_size=2", "--verbose=0"]


def epochs_in_history(model_dir):
    with open(model_dir / "history.csv") as file:
        return [int(row["epoch"]) for row in csv.DictReader(file)]


def test_a_run_writes_the_model_folder(sinusoid_run):
    names = {path.name for path in sinusoid_run.iterdir()}
    assert {"experiment.json", "learner.keras", "history.csv", "backup"} <= names
    experiment = json.loads((sinusoid_run / "experiment.json").read_text())
    assert experiment["dataset"] == "sinusoid" and experiment["train_steps"] == 20
    assert epochs_in_history(sinusoid_run) == [0, 1]
    learner = keras.saving.load_model(sinusoid_run / "learner.keras", compile=False)
    assert type(learner).__name__ == "MAML" and learner.eval_inner_steps == 3


def test_rerun_with_more_steps_resumes_from_the_last_epoch(tmp_path, capsys):
    model_dir = tmp_path / "run"
    run_in_process(train, [*SINE, f"--model_dir={model_dir}", "--train_steps=10",
                           "--steps_per_epoch=5"])
    assert "Resuming" not in capsys.readouterr().out
    run_in_process(train, [*SINE, f"--model_dir={model_dir}", "--train_steps=20",
                           "--steps_per_epoch=5"])
    assert "Resuming from epoch 2/4 (step 10)" in capsys.readouterr().out
    assert epochs_in_history(model_dir) == [0, 1, 2, 3]
    learner = keras.saving.load_model(model_dir / "learner.keras")
    assert int(learner.optimizer.iterations) == 20  # the optimizer state was restored too


def test_a_finished_run_reruns_as_a_no_op(sinusoid_run, capsys):
    before = (sinusoid_run / "history.csv").read_text()
    learner = training.train(Experiment.load(sinusoid_run), sinusoid_run, verbose=0)
    assert "holds 2 epochs (20 steps) and --train_steps=20 needs 2; nothing is left to train" \
        in capsys.readouterr().out
    assert (sinusoid_run / "history.csv").read_text() == before
    assert int(learner.optimizer.iterations) == 20


def test_another_experiment_in_the_same_folder_is_refused(sinusoid_run, capsys):
    with pytest.raises(SystemExit) as info:
        run_in_process(train, [*SINE, f"--model_dir={sinusoid_run}", "--train_steps=20",
                               "--steps_per_epoch=10", "--inner_learning_rate=0.5"])
    assert info.value.code == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("tfmeta-train: error: Invalid `--model_dir`")
    assert "--inner_learning_rate=0.5 (was 0.01)" in error


def test_inconsistent_flags_are_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_in_process(train, [*SINE, f"--model_dir={tmp_path}", "--learner=protonet"])
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "`--learner`" in error and "sinusoid" in error
    assert not (tmp_path / "experiment.json").exists()


def test_shots_the_data_cannot_supply(tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_in_process(train, [f"--model_dir={tmp_path / 'run'}", "--dataset=omniglot",
                               "--shots=15", "--queries=15", "--data_dir=/nonexistent"])
    error = capsys.readouterr().err
    assert error.startswith("tfmeta-train: error: ") and error.count("\n") == 1
    assert "shots" in error and "queries" in error and "20" in error


def test_missing_data_names_the_folder_and_the_variable(tmp_path, capsys, monkeypatch):
    from tfmeta.data.omniglot import source as omniglot_source

    def offline(split):
        raise ConnectionError("no network (test)")

    monkeypatch.setattr(omniglot_source, "_tfds_examples", offline)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit):
        run_in_process(train, [f"--model_dir={tmp_path / 'run'}", "--dataset=omniglot",
                               f"--data_dir={empty}"])
    error = capsys.readouterr().err
    assert error.startswith("tfmeta-train: error: ") and error.count("\n") == 1
    assert str(empty) in error and "TFMETA_DATA_DIR" in error
