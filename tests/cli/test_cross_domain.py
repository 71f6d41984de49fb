"""Cross-domain evaluation (tfmeta-evaluate --dataset) and mixed sources (--dataset=a,b),
on stand-in data: a folder of RGB photos and a fake Omniglot (greyscale, 28 px)."""

import importlib
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from cli_helpers import run_in_process

from tfmeta.cli import evaluate, train

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from fake_omniglot import write_fake_omniglot  # noqa: E402

omniglot_source = importlib.import_module("tfmeta.data.omniglot.source")


@pytest.fixture
def fake_data(tmp_path, monkeypatch):
    """(photo folder, data root with a fake Omniglot)."""
    monkeypatch.setattr(omniglot_source, "EXPECTED_CHARACTERS", {"background": 5, "evaluation": 3})
    monkeypatch.setenv("TFMETA_CACHE_DIR", str(tmp_path / "cache"))
    photos = tmp_path / "photos"
    rng = np.random.default_rng(0)
    for c in range(8):
        (photos / f"class_{c}").mkdir(parents=True)
        for i in range(6):
            image = np.clip(rng.integers(0, 256, 3) + rng.integers(-20, 21, (20, 20, 3)), 0, 255)
            (photos / f"class_{c}" / f"{i}.png").write_bytes(
                tf.io.encode_png(image.astype(np.uint8)).numpy())
    return photos, write_fake_omniglot(tmp_path / "data")


def train_flags(photos, model_dir, *extra):
    return ["--dataset=image_folder", f"--image_folder={photos}", "--image_size=16",
            "--learner=protonet", "--ways=2", "--shots=1", "--queries=1", "--meta_batch_size=2",
            "--train_steps=2", "--steps_per_epoch=2", "--validation_episodes=0", "--verbose=0",
            f"--model_dir={model_dir}", *extra]


def test_evaluate_a_photo_model_on_omniglot_with_one_warning(fake_data, tmp_path, capsys):
    photos, root = fake_data
    run_in_process(train, train_flags(photos, tmp_path / "run"))
    output = tmp_path / "omniglot.json"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_in_process(evaluate, [f"--model_dir={tmp_path / 'run'}", "--dataset=omniglot",
                                  "--image_size=28", "--split=train", f"--data_dir={root}",
                                  "--episodes=4", "--ways=2",
                                  "--shots=1", "--queries=1", f"--output={output}"])
    conversions = [w for w in caught if "Cross-domain evaluation" in str(w.message)]
    assert len(conversions) == 1 and "(28, 28, 1)" in str(conversions[0].message)
    result = json.loads(output.read_text())
    assert result["episodes"] == 4 and 0.0 <= result["mean"] <= 1.0
    # A text dataset cannot be fed to an image model: one line naming --dataset.
    with pytest.raises(SystemExit):
        run_in_process(evaluate, [f"--model_dir={tmp_path / 'run'}", "--dataset=intents",
                                  "--episodes=2"])
    error = capsys.readouterr().err
    assert error.startswith("tfmeta-evaluate: error: ") and error.count("\n") == 1
    assert "`--dataset`" in error and "text classification" in error


def test_train_on_mixed_photos_and_omniglot(fake_data, tmp_path, capsys):
    photos, root = fake_data
    model_dir = tmp_path / "mixed"
    run_in_process(train, train_flags(photos, model_dir, "--dataset=image_folder,omniglot",
                                      f"--data_dir={root}"))
    saved = json.loads((model_dir / "experiment.json").read_text())
    assert saved["dataset"] == "image_folder,omniglot"
    with pytest.raises(SystemExit):
        run_in_process(train, train_flags(photos, tmp_path / "bad", "--dataset=omniglot,intents"))
    error = capsys.readouterr().err
    assert error.startswith("tfmeta-train: error: ") and error.count("\n") == 1
    assert "`--dataset`" in error and "of one kind" in error
