"""benchmarks/domain_adaptation.py: the training-free rows against a NumPy nearest centroid."""

import json
import os
import sys

import numpy as np
import pytest
import tensorflow as tf

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "cli"))
import domain_adaptation  # noqa: E402
from cli_helpers import run_in_process  # noqa: E402

from tfmeta.cli import builders, train  # noqa: E402
from tfmeta.cli.experiment import Experiment  # noqa: E402


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A ProtoNet run on 12 classes of 6 RGB photos (only its experiment matters)."""
    root = tmp_path_factory.mktemp("domain_photos")
    rng = np.random.default_rng(2)
    for c in range(12):
        (root / "photos" / f"class_{c}").mkdir(parents=True)
        for i in range(6):
            image = np.clip(rng.integers(0, 256, 3) + rng.integers(-40, 41, (16, 16, 3)), 0, 255)
            (root / "photos" / f"class_{c}" / f"{i}.png").write_bytes(
                tf.io.encode_png(image.astype(np.uint8)).numpy())
    model_dir = root / "run"
    run_in_process(train, [
        "--dataset=image_folder", f"--image_folder={root / 'photos'}", "--image_size=16",
        "--learner=protonet", "--ways=2", "--shots=1", "--queries=1", "--meta_batch_size=1",
        "--train_steps=1", "--steps_per_epoch=1", "--verbose=0", f"--model_dir={model_dir}"])
    return model_dir


def numpy_nearest_centroid(experiment, episodes, **setting):
    stream = builders.episodes(experiment, "train", meta_batch_size=1, seed=0, **setting)
    accuracies = []
    for inputs, query_y in stream.take(episodes):
        sx = inputs["support_x"].numpy()[0].reshape(len(inputs["support_y"][0]), -1)
        sy, qy = inputs["support_y"].numpy()[0], query_y.numpy()[0]
        qx = inputs["query_x"].numpy()[0].reshape(len(qy), -1)
        centroids = np.stack([sx[sy == c].mean(0) for c in range(sy.max() + 1)])
        distances = ((qx[:, None] - centroids[None]) ** 2).sum(-1)
        accuracies.append(np.mean(distances.argmin(1) == qy))
    return float(np.mean(accuracies))


def test_pixels_is_a_nearest_centroid_on_the_runs_episodes(run, tmp_path):
    output = tmp_path / "pixels.json"
    report = domain_adaptation.main([
        f"--episodes_of={run}", "--model=pixels", "--split=train", "--settings", "5w1s",
        "5w5s", "--episodes=5", "--queries=1", f"--output={output}"])
    assert json.loads(output.read_text())["rows"] == report["rows"]
    one, five = report["rows"]
    experiment = Experiment.load(run)
    assert one["mean"] == pytest.approx(
        numpy_nearest_centroid(experiment, 5, ways=5, shots=1, queries=1), abs=1e-6)
    assert five["mean"] == pytest.approx(
        numpy_nearest_centroid(experiment, 5, ways=5, shots=5, queries=1), abs=1e-6)
    assert (one["ways"], one["shots"], one["episodes"]) == (5, 1, 5)
    assert one["cpu_time_s"] >= 0 and one["wall_time_s"] >= 0
