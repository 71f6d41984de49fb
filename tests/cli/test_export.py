"""tfmeta-export in-process: the SavedModel adapts like the learner."""

import numpy as np
import pytest
import tensorflow as tf
from cli_helpers import run_in_process

from tfmeta.cli import export
from tfmeta.cli.evaluation import query_predictions


def test_exports_a_savedmodel_that_adapts_like_the_learner(sinusoid_run, sinusoid_learner,
                                                          tmp_path, capsys):
    export_dir = tmp_path / "exported"
    run_in_process(export, [f"--model_dir={sinusoid_run}", f"--export_dir={export_dir}"])
    assert f"Exported the SavedModel to {export_dir}" in capsys.readouterr().out

    serving = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
    rng = np.random.default_rng(0)
    support_x = rng.uniform(-5, 5, (10, 1)).astype("float32")
    support_y = (2.0 * np.sin(support_x - 1.0)).astype("float32")
    query_x = rng.uniform(-5, 5, (7, 1)).astype("float32")
    outputs = serving(support_x=support_x, support_y=support_y, query_x=query_x)
    served = next(iter(outputs.values())).numpy()

    learner, _ = sinusoid_learner
    episode = {"support_x": support_x[None], "support_y": support_y[None],
               "query_x": query_x[None]}
    np.testing.assert_allclose(served, query_predictions(learner, episode).numpy()[0],
                               atol=1e-5)


def test_a_non_empty_export_dir_is_one_line(sinusoid_run, tmp_path, capsys):
    (tmp_path / "something").write_text("in the way")
    with pytest.raises(SystemExit):
        run_in_process(export, [f"--model_dir={sinusoid_run}", f"--export_dir={tmp_path}"])
    error = capsys.readouterr().err
    assert error.startswith("tfmeta-export: error: ") and error.count("\n") == 1


def test_exports_a_litert_model_with_full_int8(photo_folder, tmp_path, capsys):
    from tfmeta.cli import train
    from tfmeta.export import LiteRTLearner

    model_dir = tmp_path / "run"
    run_in_process(train, [
        "--dataset=image_folder", f"--image_folder={photo_folder}", "--image_size=16",
        "--learner=protonet", "--ways=2", "--shots=1", "--queries=2", "--meta_batch_size=2",
        "--train_steps=2", "--steps_per_epoch=2", "--verbose=0", f"--model_dir={model_dir}"])
    path = tmp_path / "protonet.tflite"
    run_in_process(export, [f"--model_dir={model_dir}", f"--export_dir={path}",
                            "--format=litert", "--quantization=int8",
                            "--representative_episodes=2"])
    assert f"Exported the LiteRT model to {path}" in capsys.readouterr().out
    device = LiteRTLearner(path)
    assert device.description["quantization"] == "int8"
    rng = np.random.default_rng(0)
    logits = device(rng.uniform(size=(2, 16, 16, 3)), np.array([0, 1]),
                    rng.uniform(size=(3, 16, 16, 3)))
    assert logits.shape == (3, 2) and np.all(np.isfinite(logits))


def test_litert_refuses_full_network_maml_in_one_line(sinusoid_run, tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_in_process(export, [f"--model_dir={sinusoid_run}",
                                f"--export_dir={tmp_path / 'sine.tflite'}", "--format=litert"])
    error = capsys.readouterr().err
    assert error.startswith("tfmeta-export: error: ") and error.count("\n") == 1
    assert "adapt_layers" in error
