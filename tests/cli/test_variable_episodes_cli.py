"""--variable: Meta-Dataset's variable episodes through tfmeta-train and tfmeta-evaluate."""

import json

import numpy as np
import pytest
import tensorflow as tf
from cli_helpers import run_in_process

from tfmeta.cli import evaluate, export, train


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """12 classes of 8 RGB PNGs (the seeded train split holds 7 of them)."""
    root = tmp_path_factory.mktemp("variable_photos")
    rng = np.random.default_rng(1)
    for c in range(12):
        (root / f"class_{c}").mkdir()
        for i in range(8):
            image = np.clip(rng.integers(0, 256, 3) + rng.integers(-20, 21, (16, 16, 3)), 0, 255)
            (root / f"class_{c}" / f"{i}.png").write_bytes(
                tf.io.encode_png(image.astype(np.uint8)).numpy())
    return root


@pytest.mark.parametrize(("learner", "variable", "ways"),
                         [("protonet", "ways_and_shots", 6),
                          pytest.param("maml", "shots", 3, marks=pytest.mark.slow)])
def test_train_and_evaluate_variable_episodes(photos, tmp_path, learner, variable, ways):
    model_dir = tmp_path / "run"
    run_in_process(train, [
        "--dataset=image_folder", f"--image_folder={photos}", "--image_size=16",
        f"--learner={learner}", f"--variable={variable}", f"--ways={ways}", "--max_support=12",
        "--max_queries=2", "--meta_batch_size=2", "--train_steps=2", "--steps_per_epoch=2",
        "--verbose=0", f"--model_dir={model_dir}",
    ])
    output = tmp_path / "result.json"
    run_in_process(evaluate, [f"--model_dir={model_dir}", "--split=train", "--episodes=4",
                              f"--output={output}"])
    result = json.loads(output.read_text())
    assert result["shots"] is None and result["episodes"] == 4
    assert result["ways"] == (None if variable == "ways_and_shots" else ways)
    assert 0.0 <= result["mean"] <= 1.0


def test_variable_ways_need_five(tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_in_process(train, ["--variable=ways_and_shots", "--ways=3", "--verbose=0",
                               f"--model_dir={tmp_path / 'run'}"])
    error = capsys.readouterr().err
    assert error.startswith("tfmeta-train: error: ") and error.count("\n") == 1
    assert "`--ways`" in error and "at least 5" in error


def test_fo_proto_maml_trains_evaluates_and_exports_variable_ways(photos, tmp_path):
    model_dir, export_dir = tmp_path / "run", tmp_path / "export"
    run_in_process(train, [
        "--dataset=image_folder", f"--image_folder={photos}", "--image_size=16",
        "--learner=proto_maml", "--first_order", "--variable=ways_and_shots", "--ways=6",
        "--backbone=mlp", "--hidden_units=16", "--inner_learning_rate=0.1",
        "--max_support=12", "--max_queries=2", "--meta_batch_size=2", "--train_steps=2",
        "--steps_per_epoch=2", "--verbose=0", f"--model_dir={model_dir}",
    ])
    output = tmp_path / "result.json"
    run_in_process(evaluate, [f"--model_dir={model_dir}", "--split=train", "--episodes=4",
                              f"--output={output}"])
    result = json.loads(output.read_text())
    assert result["ways"] is None and result["episodes"] == 4 and 0.0 <= result["mean"] <= 1.0
    run_in_process(export, [f"--model_dir={model_dir}", f"--export_dir={export_dir}"])
    served = tf.saved_model.load(str(export_dir))
    rng = np.random.default_rng(0)
    support_x = tf.constant(rng.uniform(size=(5, 16, 16, 3)), tf.float32)
    support_y = tf.constant([0, 1, 2, 3, 4])  # a 5-way episode on the 6-unit head
    query_x = tf.constant(rng.uniform(size=(3, 16, 16, 3)), tf.float32)
    logits = served.signatures["serving_default"](support_x=support_x, support_y=support_y,
                                                  query_x=query_x)["logits"]
    state = served.signatures["adapt"](support_x=support_x, support_y=support_y)["task_state"]
    adapted = served.signatures["predict_adapted"](task_state=state, query_x=query_x)["logits"]
    np.testing.assert_allclose(adapted.numpy(), logits.numpy(), rtol=1e-5, atol=1e-5)
    assert np.isneginf(logits.numpy()[:, 5]).all() and np.isfinite(logits.numpy()[:, :5]).all()


def test_evaluate_a_fixed_run_on_variable_episodes(photos, tmp_path, capsys):
    """--variable at evaluation draws the episodes a run trained with --variable would."""
    import dataclasses

    from tfmeta.cli.evaluation import evaluate as evaluate_api
    from tfmeta.cli.evaluation import load_trained

    model_dir = tmp_path / "fixed"
    run_in_process(train, [
        "--dataset=image_folder", f"--image_folder={photos}", "--image_size=16",
        "--learner=protonet", "--ways=5", "--shots=1", "--queries=1", "--meta_batch_size=1",
        "--train_steps=2", "--steps_per_epoch=2", "--verbose=0", f"--model_dir={model_dir}",
    ])
    output = tmp_path / "variable.json"
    flags_ = [f"--model_dir={model_dir}", "--split=train", "--episodes=6", "--ways=6",
              "--max_support=12", "--max_queries=2"]
    run_in_process(evaluate, [*flags_, "--variable=ways_and_shots", f"--output={output}"])
    result = json.loads(output.read_text())
    assert result["ways"] is None and result["shots"] is None and result["episodes"] == 6
    learner, experiment = load_trained(model_dir)
    as_if_trained_variable = dataclasses.replace(
        experiment, variable="ways_and_shots", max_support=12, max_queries=2)
    reference = evaluate_api(learner, as_if_trained_variable, split="train", episodes=6, ways=6)
    assert result["mean"] == pytest.approx(reference.mean, abs=1e-6)
    # Without --ways: Meta-Dataset's min(50, classes), here the split's 7 classes.
    most = evaluate_api(learner, experiment, split="train", episodes=2,
                        variable="ways_and_shots", max_support=12, max_queries=2)
    assert most.ways is None and most.episodes == 2
    fixed = evaluate_api(learner, experiment, split="train", episodes=6, ways=5)
    shots = evaluate_api(learner, experiment, split="train", episodes=6, ways=5,
                         variable="shots", max_support=12, max_queries=2)
    assert (shots.ways, shots.shots, fixed.shots) == (5, None, 1)
    with pytest.raises(SystemExit):
        run_in_process(evaluate, [*flags_, "--variable=ways_and_shots", "--max_queries=0"])
    error = capsys.readouterr().err
    assert error.startswith("tfmeta-evaluate: error: ") and error.count("\n") == 1
    assert "`--max_queries`" in error and "Received: --max_queries=0" in error


def test_kernel_initializer_flag_reaches_the_backbone(tmp_path):
    """--kernel_initializer=torch: every convolution's bias starts uniform in +-1/sqrt(fan_in)."""
    import math

    from tfmeta.cli import builders
    from tfmeta.cli.experiment import Experiment

    experiment = Experiment(dataset="image_folder", learner="protonet", image_size=16,
                            kernel_initializer="torch")
    model = builders.backbone(experiment)
    bias = np.asarray(model.get_layer("block1_conv").bias)
    assert np.any(bias != 0) and np.abs(bias).max() <= 1 / math.sqrt(9 * 64)
    with pytest.raises(ValueError, match=r"`--kernel_initializer`: expected one of keras, "
                       r"torch. Received: --kernel_initializer='pytorch'"):
        Experiment(kernel_initializer="pytorch")
