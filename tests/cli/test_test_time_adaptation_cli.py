"""tfmeta-evaluate --test_time_adaptation=finetune|tsa on a trained ProtoNet."""

import json

import pytest
from cli_helpers import run_in_process

from tfmeta.cli import evaluate, train


@pytest.fixture(scope="module")
def protonet_run(photo_folder, tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("runs") / "protonet"
    run_in_process(train, [
        "--dataset=image_folder", f"--image_folder={photo_folder}", "--image_size=16",
        "--learner=protonet", "--ways=2", "--shots=1", "--queries=1", "--meta_batch_size=2",
        "--train_steps=2", "--steps_per_epoch=2", "--validation_episodes=0", "--verbose=0",
        f"--model_dir={model_dir}"])
    return model_dir


def evaluated(model_dir, output, *extra):
    run_in_process(evaluate, [f"--model_dir={model_dir}", "--split=train", "--episodes=3",
                              "--ways=2", "--shots=1", "--queries=2", f"--output={output}",
                              *extra])
    return json.loads(output.read_text())


def test_tsa_without_steps_equals_the_plain_evaluation_and_steps_change_it(protonet_run,
                                                                           tmp_path):
    plain = evaluated(protonet_run, tmp_path / "plain.json")
    assert "test_time_adaptation" not in plain
    still = evaluated(protonet_run, tmp_path / "tsa0.json", "--test_time_adaptation=tsa",
                      "--adaptation_steps=0")
    assert still["mean"] == plain["mean"] and still["ci95"] == plain["ci95"]
    assert still["test_time_adaptation"]["method"] == "tsa"
    tuned = evaluated(protonet_run, tmp_path / "finetune.json",
                      "--test_time_adaptation=finetune", "--adaptation_steps=2",
                      "--adaptation_learning_rate=0.05", "--adaptation_optimizer=adam",
                      "--adaptation_augmentation=flip_and_shift")
    assert tuned["test_time_adaptation"] == {
        "method": "finetune", "steps": 2, "learning_rate": 0.05, "optimizer": "adam",
        "augmentation": "flip_and_shift", "seed": 0}
    assert 0.0 <= tuned["mean"] <= 1.0


@pytest.mark.parametrize(
    ("flags", "fragments"),
    [
        (["--adaptation_steps=3"], ["`--adaptation_steps`", "--test_time_adaptation"]),
        (["--test_time_adaptation=tsa", "--adaptation_learning_rate=0"],
         ["`--adaptation_learning_rate`", "Received: --adaptation_learning_rate=0"]),
    ],
)
def test_bad_adaptation_flags_fail_in_one_line(protonet_run, tmp_path, capsys, flags,
                                               fragments):
    with pytest.raises(SystemExit):
        run_in_process(evaluate, [f"--model_dir={protonet_run}", "--episodes=2", *flags])
    error = capsys.readouterr().err
    assert error.startswith("tfmeta-evaluate: error: ") and error.count("\n") == 1, error
    for fragment in fragments:
        assert fragment in error


def test_a_learner_without_the_option_is_refused_in_one_line(sinusoid_run, capsys):
    with pytest.raises(SystemExit):
        run_in_process(evaluate, [f"--model_dir={sinusoid_run}", "--episodes=2",
                                  "--test_time_adaptation=finetune"])
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "`--test_time_adaptation`" in error and "MAML" in error
