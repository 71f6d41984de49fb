"""tfmeta-train / evaluate / export on text: --dataset=intents on a stand-in intent folder."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from cli_helpers import CONFIGS, run_in_process

from tfmeta.cli import builders, evaluate, export, train
from tfmeta.cli.experiment import Experiment

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from fake_intents import SPLITS, write_fake_intents  # noqa: E402

SMALL = ["--train_steps=4", "--steps_per_epoch=2", "--meta_batch_size=2", "--ways=3",
         "--test_ways=3", "--shots=2", "--test_shots=2", "--queries=2", "--test_queries=2",
         "--embedding_dim=8", "--intent_dataset=toy", "--verbose=0"]


@pytest.fixture(scope="module")
def intent_root(tmp_path_factory):
    return write_fake_intents(tmp_path_factory.mktemp("data"))


@pytest.mark.parametrize("config", ["intents_banking77_protonet_5w5s.cfg",
                                    "intents_banking77_maml_5w1s.cfg"])
def test_train_evaluate_export_from_a_config(config, intent_root, tmp_path, capsys):
    model_dir = tmp_path / "run"
    run_in_process(train, [f"--flagfile={CONFIGS / config}", f"--model_dir={model_dir}",
                           f"--data_dir={intent_root}", *SMALL])
    saved = json.loads((model_dir / "experiment.json").read_text())
    assert (saved["dataset"], saved["intent_dataset"], saved["class_split"]) == (
        "intents", "toy", 1)
    output = tmp_path / "result.json"
    run_in_process(evaluate, [f"--model_dir={model_dir}", f"--data_dir={intent_root}",
                              "--episodes=6", f"--output={output}"])
    assert json.loads(output.read_text())["ways"] == 3
    run_in_process(export, [f"--model_dir={model_dir}", f"--export_dir={tmp_path / 'sm'}"])
    serve = tf.saved_model.load(str(tmp_path / "sm")).signatures["serving_default"]
    logits = serve(support_x=tf.constant(["exchange please rate", "transfer now failed",
                                          "pin today blocked"]),
                   support_y=tf.constant([0, 1, 2]),
                   query_x=tf.constant(["rate of exchange"]))["logits"]
    assert logits.shape == (1, 3) and np.isfinite(logits.numpy()).all()


def test_the_vocabulary_comes_from_the_train_intents_only(intent_root):
    experiment = Experiment(dataset="intents", intent_dataset="toy", learner="protonet",
                            backbone="bag_of_ngrams", embedding_dim=4)
    vocabulary = set(builders.backbone(experiment, intent_root)
                     .get_layer("tfidf_ngrams").get_vocabulary())
    assert {"alarm", "weather"} <= vocabulary
    held_out = {label for split in ("valid", "test") for label in SPLITS[split]}
    assert not vocabulary & held_out and not {"exchange", "pin", "transfer"} & vocabulary


def test_every_intent_folder_name_is_accepted_and_missing_ones_fail(intent_root, capsys):
    with pytest.raises(SystemExit):
        run_in_process(train, ["--dataset=intents", "--intent_dataset=absent",
                               "--backbone=bag_of_ngrams", "--learner=protonet",
                               f"--data_dir={intent_root}", "--model_dir=/tmp/unused-intents"])
    error = capsys.readouterr().err.strip()
    assert error.startswith("tfmeta-train: error: ") and "'absent'" in error
    assert "['toy']" in error and len(error.splitlines()) == 1


def test_backbone_and_dataset_must_agree():
    with pytest.raises(ValueError, match=r"--backbone.*raw text.*bag_of_ngrams"):
        Experiment(dataset="intents", learner="protonet", backbone="conv4")
    with pytest.raises(ValueError, match=r"--backbone.*numbers.*--dataset=omniglot"):
        Experiment(dataset="omniglot", learner="protonet", backbone="bag_of_ngrams")
    with pytest.raises(ValueError, match=r"--class_split"):
        Experiment(dataset="intents", backbone="bag_of_ngrams", class_split=0)


def test_evaluate_remembers_the_training_data_dir(intent_root, tmp_path, monkeypatch, capsys):
    """Issue 25, item 13: the run's --data_dir is the default; the command line overrides it."""
    monkeypatch.delenv("TFMETA_DATA_DIR", raising=False)
    model_dir = tmp_path / "run"
    run_in_process(train, ["--dataset=intents", "--learner=protonet", "--backbone=bag_of_ngrams",
                           f"--model_dir={model_dir}", f"--data_dir={intent_root}", *SMALL])
    saved = json.loads((model_dir / "experiment.json").read_text())
    assert saved["data_dir"] == str(Path(intent_root).absolute())
    output = tmp_path / "result.json"
    run_in_process(evaluate, [f"--model_dir={model_dir}", "--episodes=2", f"--output={output}"])
    assert json.loads(output.read_text())["episodes"] == 2
    elsewhere = tmp_path / "elsewhere"
    with pytest.raises(SystemExit):
        run_in_process(evaluate, [f"--model_dir={model_dir}", f"--data_dir={elsewhere}",
                                  "--episodes=2"])
    error = capsys.readouterr().err.strip()
    assert error.startswith("tfmeta-evaluate: error: ") and str(elsewhere) in error
