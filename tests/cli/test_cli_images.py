"""The command line on natural images: --dataset=image_folder (with --image_folder),
--backbone=resnet12, RGB input shapes from the registry, and one-line errors."""

import json
import shutil

import pytest
from cli_helpers import run_in_process

from tfmeta.cli import builders, evaluate, train
from tfmeta.cli.experiment import Experiment


def image_flags(folder, model_dir, *extra):
    return ["--dataset=image_folder", f"--image_folder={folder}", "--image_size=16",
            "--learner=protonet", "--ways=2", "--shots=1", "--queries=2", "--meta_batch_size=2",
            "--train_steps=2", "--steps_per_epoch=2", "--verbose=0", f"--model_dir={model_dir}",
            *extra]


@pytest.mark.parametrize("backbone", [
    "conv4",
    pytest.param("resnet12", marks=pytest.mark.slow),  # about 90 s on a busy 2-core machine
])
def test_train_and_evaluate_on_an_image_folder(photo_folder, tmp_path, backbone):
    model_dir = tmp_path / "run"
    run_in_process(train, image_flags(photo_folder, model_dir, f"--backbone={backbone}"))
    saved = json.loads((model_dir / "experiment.json").read_text())
    assert saved["image_folder"] == str(photo_folder) and saved["backbone"] == backbone
    output = tmp_path / "result.json"
    run_in_process(evaluate, [f"--model_dir={model_dir}", "--split=test", "--episodes=4",
                              "--ways=2", "--shots=1", "--queries=1", f"--output={output}"])
    result = json.loads(output.read_text())
    assert result["episodes"] == 4 and 0.0 <= result["mean"] <= 1.0


def test_input_shapes_come_from_the_registry():
    experiment = Experiment(dataset="tiny_imagenet", learner="protonet", image_size=32)
    assert builders.example_shape(experiment) == (32, 32, 3)
    assert builders.backbone(experiment).input_shape == (None, 32, 32, 3)
    resnet = Experiment(dataset="tiny_imagenet", learner="maml", backbone="resnet12",
                        image_size=84, ways=5)
    model = builders.backbone(resnet)
    assert model.input_shape == (None, 84, 84, 3) and model.output_shape == (None, 5)


def test_image_folder_flag_missing_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_in_process(train, ["--dataset=image_folder", f"--model_dir={tmp_path / 'run'}",
                               "--verbose=0"])
    error = capsys.readouterr().err
    assert error.startswith("tfmeta-train: error: ") and error.count("\n") == 1
    assert "`image_folder`" in error


def test_image_size_too_small_for_the_backbone_is_one_line(photo_folder, tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_in_process(train, image_flags(photo_folder, tmp_path / "run", "--image_size=8"))
    error = capsys.readouterr().err
    assert error.startswith("tfmeta-train: error: ") and error.count("\n") == 1
    assert "at least 16x16" in error and "--image_size" in error
    assert not (tmp_path / "run" / "learner.keras").exists()


@pytest.mark.parametrize("change", ["a class folder added", "a class folder removed"])
def test_evaluate_refuses_a_folder_that_no_longer_gives_the_trained_split(
        photo_folder, tmp_path, capsys, change):
    """Issue 25, item 2: the seeded split is recorded at training and checked at evaluation,
    so a changed folder cannot put training classes in the test split unnoticed."""
    folder = tmp_path / "photos"
    shutil.copytree(photo_folder, folder)
    model_dir = tmp_path / "run"
    run_in_process(train, image_flags(folder, model_dir))
    saved = json.loads((model_dir / "experiment.json").read_text())
    recorded = saved["class_splits"]
    assert sorted(name for names in recorded.values() for name in names) == [
        f"class_{c}" for c in range(8)]
    assert set(recorded["train"]).isdisjoint(recorded["test"])
    if change == "a class folder added":
        shutil.copytree(folder / "class_0", folder / "class_new")
        expected = "classes added: ['class_new']"
    else:
        shutil.rmtree(folder / "class_7")
        expected = "classes removed: ['class_7']"
    capsys.readouterr()
    with pytest.raises(SystemExit):
        run_in_process(evaluate, [f"--model_dir={model_dir}", "--episodes=2", "--ways=2",
                                  "--shots=1", "--queries=1"])
    error = capsys.readouterr().err
    assert error.startswith("tfmeta-evaluate: error: ") and error.count("\n") == 1, error
    assert expected in error and "class split the run was trained on" in error


def test_a_resumed_run_refuses_a_folder_whose_split_changed(photo_folder, tmp_path, capsys):
    folder = tmp_path / "photos"
    shutil.copytree(photo_folder, folder)
    model_dir = tmp_path / "run"
    run_in_process(train, image_flags(folder, model_dir))
    shutil.copytree(folder / "class_0", folder / "class_new")
    capsys.readouterr()
    with pytest.raises(SystemExit):
        run_in_process(train, image_flags(folder, model_dir, "--train_steps=4"))
    error = capsys.readouterr().err
    assert error.startswith("tfmeta-train: error: ") and error.count("\n") == 1, error
    assert "classes added: ['class_new']" in error and "cannot be continued" in error
