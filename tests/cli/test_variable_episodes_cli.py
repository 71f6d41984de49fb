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
    support_x = tf.constant(rng.uniform(size=(6, 16, 16, 3)), tf.float32)
    support_y = tf.constant([0, 1, 2, 3, 4, 5])
    query_x = tf.constant(rng.uniform(size=(3, 16, 16, 3)), tf.float32)
    logits = served.signatures["serving_default"](support_x=support_x, support_y=support_y,
                                                  query_x=query_x)["logits"]
    state = served.signatures["adapt"](support_x=support_x, support_y=support_y)["task_state"]
    adapted = served.signatures["predict_adapted"](task_state=state, query_x=query_x)["logits"]
    np.testing.assert_allclose(adapted.numpy(), logits.numpy(), rtol=1e-5, atol=1e-5)
