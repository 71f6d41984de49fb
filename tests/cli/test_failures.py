"""No success reported for a failed run, and one-line errors (issue 17, items 1, 5, 6, 9)."""

import errno
import json
import os
import shutil

import keras
import numpy as np
import pytest
from cli_helpers import CONFIGS, run_in_process

from tfmeta.cli import evaluate, export, paths, train
from tfmeta.cli.evaluation import EvaluationResult
from tfmeta.data.omniglot import source as omniglot_source

SINE = [f"--flagfile={CONFIGS / 'sinusoid_maml.cfg'}", "--meta_batch_size=2", "--verbose=0"]


def one_line_error(capsys, program):
    error = capsys.readouterr().err
    assert error.startswith(f"{program}: error: ") and error.count("\n") == 1, error
    return error


def fails(module, argv):
    with pytest.raises(SystemExit) as info:
        run_in_process(module, argv)
    return info.value.code


@pytest.fixture
def diverged_run(sinusoid_run, tmp_path):
    """A copy of `sinusoid_run` whose learner.keras holds a NaN weight."""
    model_dir = tmp_path / "diverged"
    shutil.copytree(sinusoid_run, model_dir)
    learner = keras.saving.load_model(model_dir / "learner.keras", compile=False)
    variable = learner.model.trainable_variables[0]
    variable.assign(np.full(variable.shape, np.nan, "float32"))
    learner.save(model_dir / "learner.keras")
    return model_dir


# === Item 1: a diverged run ===


def test_a_diverged_run_stops_with_an_error_and_writes_no_learner(tmp_path, capsys):
    model_dir = tmp_path / "run"
    code = fails(train, [*SINE, f"--model_dir={model_dir}", "--inner_learning_rate=1e6",
                         "--train_steps=20", "--steps_per_epoch=5"])
    error = one_line_error(capsys, "tfmeta-train")
    assert code == 1 and "Training diverged: the loss was not finite at step" in error
    assert not (model_dir / "learner.keras").exists()
    assert "Trained" not in capsys.readouterr().out


def test_evaluate_and_export_refuse_non_finite_weights(diverged_run, tmp_path, capsys):
    assert fails(evaluate, [f"--model_dir={diverged_run}", "--episodes=2"]) == 1
    assert "NaN or infinite weights" in one_line_error(capsys, "tfmeta-evaluate")
    assert fails(export, [f"--model_dir={diverged_run}", f"--export_dir={tmp_path / 'x'}"]) == 1
    assert "NaN or infinite weights" in one_line_error(capsys, "tfmeta-export")
    assert not (tmp_path / "x").exists()


def test_a_non_finite_evaluation_fails_instead_of_printing_nan(diverged_run):
    from tfmeta.cli import builders
    from tfmeta.cli.evaluation import evaluate as evaluate_learner
    from tfmeta.cli.experiment import Experiment

    experiment = Experiment.load(diverged_run)
    learner = keras.saving.load_model(diverged_run / "learner.keras", compile=False)
    builders.compile_learner(learner, experiment)
    with pytest.raises(FloatingPointError, match="3 of 3 episodes gave a NaN or infinite mse"):
        evaluate_learner(learner, experiment, episodes=3)


def test_the_json_is_always_valid(tmp_path):
    result = EvaluationResult("mse", float("nan"), float("inf"), 3, None, 1)
    path = result.write_json(tmp_path / "r.json")
    assert json.loads(path.read_text())["mean"] is None


# === Item 5: --test_ways with a fixed head ===


def test_test_ways_other_than_ways_for_maml_is_refused_at_start(tmp_path, capsys):
    assert fails(train, [f"--model_dir={tmp_path / 'run'}", "--dataset=omniglot",
                         "--learner=maml", "--ways=5", "--test_ways=20"]) == 1
    error = one_line_error(capsys, "tfmeta-train")
    assert "`--test_ways`" in error and "--test_ways=20" in error
    assert not (tmp_path / "run").exists()


# === Item 6: an empty export path ===


def test_an_empty_export_dir_is_refused(sinusoid_run, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    assert fails(export, [f"--model_dir={sinusoid_run}", "--export_dir="]) == 1
    assert "`filepath`" in one_line_error(capsys, "tfmeta-export")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_learner_export_to_an_empty_path_is_refused(sinusoid_learner):
    learner, _ = sinusoid_learner
    with pytest.raises(ValueError, match="`filepath`"):
        learner.export("")


# === Item 9: OS errors, a corrupt learner.keras, atomic writes, retries ===


def test_a_file_as_model_dir_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert fails(train, [*SINE, f"--model_dir={tmp_path / 'file'}"]) == 1
    assert "`--model_dir`" in one_line_error(capsys, "tfmeta-train")
    assert fails(train, [*SINE, f"--model_dir={tmp_path / 'file' / 'run'}"]) == 1
    assert "`--model_dir`" in one_line_error(capsys, "tfmeta-train")


def test_an_os_error_is_one_line(tmp_path, capsys, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("tfmeta.cli.training._train", full)
    assert fails(train, [*SINE, f"--model_dir={tmp_path / 'run'}"]) == 1
    assert "No space left on device" in one_line_error(capsys, "tfmeta-train")


def test_a_failed_final_save_leaves_no_truncated_learner(tmp_path, capsys, monkeypatch):
    def save_half(self, filepath, *args, **kwargs):
        with open(filepath, "wb") as file:
            file.write(b"PK\x03\x04 truncated")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(keras.Model, "save", save_half)
    model_dir = tmp_path / "run"
    assert fails(train, [*SINE, f"--model_dir={model_dir}", "--train_steps=2"]) == 1
    assert "No space left on device" in one_line_error(capsys, "tfmeta-train")
    assert sorted(p.name for p in model_dir.glob("*learner*")) == []


def test_a_corrupt_learner_is_not_reported_as_missing(sinusoid_run, tmp_path, capsys):
    model_dir = tmp_path / "corrupt"
    shutil.copytree(sinusoid_run, model_dir)
    (model_dir / "learner.keras").write_bytes(b"not a zip")
    assert fails(evaluate, [f"--model_dir={model_dir}"]) == 1
    error = one_line_error(capsys, "tfmeta-evaluate")
    assert "not a readable Keras model" in error and "No trained model" not in error


def test_an_unwritable_output_fails_before_evaluating(sinusoid_run, tmp_path, capsys,
                                                      monkeypatch):
    monkeypatch.setattr("tfmeta.cli.evaluate.evaluate", lambda *a, **k: pytest.fail("ran"))
    (tmp_path / "file").write_text("")
    assert fails(evaluate, [f"--model_dir={sinusoid_run}",
                            f"--output={tmp_path / 'file' / 'r.json'}"]) == 1
    assert "`--output`" in one_line_error(capsys, "tfmeta-evaluate")


def test_a_failed_export_leaves_nothing_and_the_retry_works(sinusoid_run, tmp_path, capsys,
                                                            monkeypatch):
    export_dir = tmp_path / "exported"
    archive_class = type(keras.export.ExportArchive())  # the backend's subclass
    original = archive_class.write_out

    def write_half(self, filepath, **kwargs):  # as a full disk would stop write_out
        (tmp_path / "half").mkdir(exist_ok=True)
        os.makedirs(f"{filepath}/variables", exist_ok=True)
        with open(f"{filepath}/saved_model.pb", "wb") as file:
            file.write(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(archive_class, "write_out", write_half)
    assert fails(export, [f"--model_dir={sinusoid_run}", f"--export_dir={export_dir}"]) == 1
    one_line_error(capsys, "tfmeta-export")
    assert not export_dir.exists() and [p.name for p in tmp_path.iterdir()] == ["half"]
    monkeypatch.setattr(archive_class, "write_out", original)
    run_in_process(export, [f"--model_dir={sinusoid_run}", f"--export_dir={export_dir}"])
    assert (export_dir / "saved_model.pb").is_file()


# === Questionable items ===


def test_a_second_trainer_on_the_same_folder_is_locked_out(tmp_path, capsys):
    model_dir = tmp_path / "run"
    model_dir.mkdir()
    with paths.locked_folder(model_dir):
        assert fails(train, [*SINE, f"--model_dir={model_dir}", "--train_steps=2"]) == 1
    assert "in use by another tfmeta-train" in one_line_error(capsys, "tfmeta-train")
    run_in_process(train, [*SINE, f"--model_dir={model_dir}", "--train_steps=2"])


def test_fewer_train_steps_than_trained_says_already_trained(sinusoid_run, capsys):
    before = (sinusoid_run / "experiment.json").read_text()
    run_in_process(train, [*SINE, f"--model_dir={sinusoid_run}", "--train_steps=10",
                           "--steps_per_epoch=10", "--eval_inner_steps=3"])
    out = capsys.readouterr().out
    assert "Already trained" in out and "Trained" not in out.replace("Already trained", "")
    assert (sinusoid_run / "experiment.json").read_text() == before


def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(tmp_path):
    steps = ["--train_steps=8", "--steps_per_epoch=2"]
    run_in_process(train, [*SINE, f"--model_dir={tmp_path / 'whole'}", *steps])
    run_in_process(train, [*SINE, f"--model_dir={tmp_path / 'parts'}", "--train_steps=4",
                           "--steps_per_epoch=2"])
    run_in_process(train, [*SINE, f"--model_dir={tmp_path / 'parts'}", *steps])
    whole, parts = (keras.saving.load_model(tmp_path / name / "learner.keras")
                    for name in ("whole", "parts"))
    for a, b in zip(whole.weights, parts.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_one_episode_says_the_interval_is_undefined(sinusoid_run, tmp_path, capsys):
    output = tmp_path / "r.json"
    run_in_process(evaluate, [f"--model_dir={sinusoid_run}", "--episodes=1",
                              f"--output={output}"])
    assert "95% CI is undefined" in capsys.readouterr().out
    assert json.loads(output.read_text())["ci95"] is None


def test_missing_data_leaves_no_model_dir_behind(tmp_path, capsys, monkeypatch):
    def offline(split):
        raise ConnectionError("no network (test)")

    monkeypatch.setattr(omniglot_source, "_tfds_examples", offline)
    (tmp_path / "empty").mkdir()
    assert fails(train, [f"--model_dir={tmp_path / 'run'}", "--dataset=omniglot",
                         f"--data_dir={tmp_path / 'empty'}"]) == 1
    assert f"No Omniglot was found in {tmp_path / 'empty'}" in one_line_error(capsys,
                                                                              "tfmeta-train")
    assert not (tmp_path / "run").exists()
