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
