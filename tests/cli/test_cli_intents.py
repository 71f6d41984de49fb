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


# === Cross-domain: a text model evaluated on another intent dataset ===


def write_other_intents(root, name="other"):
    """A second intent dataset in the on-disk layout, with intents the toy one lacks."""
    folder = Path(root) / "intent" / name
    (folder / "splits" / "01").mkdir(parents=True)
    words = {"order_pizza": "pizza", "book_taxi": "taxi", "play_radio": "radio",
             "set_timer": "timer", "call_mum": "mum", "buy_milk": "milk"}
    lines = [json.dumps({"sentence": f"{word} request {i} {'x' * (i % 3)}".strip(),
                         "label": label})
             for label, word in words.items() for i in range(6)]
    (folder / "full.jsonl").write_text("\n".join(lines) + "\n")
    labels = list(words)
    for split, part in (("train", labels[:2]), ("valid", labels[2:3]), ("test", labels[3:])):
        (folder / "splits" / "01" / f"{split}.txt").write_text("\n".join(part) + "\n")


def test_a_text_model_evaluated_on_another_intent_dataset(intent_root, tmp_path, capsys):
    import keras

    from tfmeta import data
    from tfmeta.cli.evaluation import evaluate as evaluate_api
    from tfmeta.cli.evaluation import load_trained

    root = tmp_path / "data"
    write_fake_intents(root)
    write_other_intents(root)
    model_dir = tmp_path / "run"
    # The training side drops two intents and reads hashed n-grams too.
    run_in_process(train, ["--dataset=intents", "--learner=protonet", "--backbone=bag_of_ngrams",
                           "--hash_buckets=64", "--drop_intents=alarm_set,music_play",
                           f"--model_dir={model_dir}", f"--data_dir={root}", *SMALL])
    saved = json.loads((model_dir / "experiment.json").read_text())
    assert saved["drop_intents"] == ["alarm_set", "music_play"] and saved["hash_buckets"] == 64
    output = tmp_path / "other.json"
    run_in_process(evaluate, [f"--model_dir={model_dir}", "--intent_dataset=other",
                              "--episodes=4", "--shots=1", f"--output={output}"])
    result = json.loads(output.read_text())
    assert (result["episodes"], result["ways"], result["shots"]) == (4, 3, 1)
    # The same value by hand: the other dataset's test episodes (the evaluation draws them
    # one at a time from seed 0), the learner's query accuracy on each.
    learner, experiment = load_trained(model_dir)
    episodes = data.intents("other", "test", ways=3, shots=1, queries=2, meta_batch_size=1,
                            seed=0, data_dir=root)
    by_hand = [float(np.mean(np.argmax(learner.predict_on_batch(inputs), -1) == query_y))
               for inputs, query_y in episodes.take(4)]
    assert result["mean"] == pytest.approx(np.mean(by_hand), abs=1e-6)
    # Its vocabulary never saw the other dataset's words: only the hashed n-grams do.
    vocabulary = learner.example_model.get_layer("tfidf_ngrams").get_vocabulary()
    assert not {"timer", "mum", "milk"} & set(vocabulary)
    api = evaluate_api(learner, experiment, intent_dataset="other", episodes=4, shots=1)
    assert api.mean == pytest.approx(result["mean"], abs=1e-6)
    keras.backend.clear_session()


@pytest.mark.parametrize("flags_, fragments", [
    (["--image_size=28"], ("`--image_size`", "text, not images")),
    (["--dataset=omniglot"], ("`--dataset`", "text classification")),
    (["--intent_dataset=absent"], ("'absent'",)),
])
def test_cross_domain_text_refusals(intent_root, tmp_path, capsys, flags_, fragments):
    model_dir = tmp_path / "run"
    run_in_process(train, ["--dataset=intents", "--learner=protonet", "--backbone=bag_of_ngrams",
                           f"--model_dir={model_dir}", f"--data_dir={intent_root}",
                           "--train_steps=1", *SMALL[1:]])
    capsys.readouterr()
    with pytest.raises(SystemExit):
        run_in_process(evaluate, [f"--model_dir={model_dir}", "--episodes=2", *flags_])
    error = capsys.readouterr().err.strip()
    assert error.startswith("tfmeta-evaluate: error: ") and len(error.splitlines()) == 1
    for fragment in fragments:
        assert fragment in error, error


def test_intent_flags_refused_for_an_image_model():
    from tfmeta.cli.evaluation import _evaluation_source

    image_run = Experiment(dataset="omniglot", learner="protonet")
    for name, value in (("intent_dataset", "banking77"), ("class_split", 2)):
        with pytest.raises(ValueError, match=rf"`--{name}`.*omniglot has none"):
            _evaluation_source(image_run, None, None, **{name: value})
    text_run = Experiment(dataset="intents", learner="protonet", backbone="bag_of_ngrams",
                          intent_dataset="clinc150", drop_intents=("clinc150_banking",))
    source = _evaluation_source(text_run, None, None, intent_dataset="banking77")
    assert (source.intent_dataset, source.drop_intents) == ("banking77", ())
    assert _evaluation_source(text_run, None, None, class_split=3).drop_intents == (
        "clinc150_banking",)
    with pytest.raises(ValueError, match=r"`--hash_buckets`"):
        Experiment(dataset="omniglot", learner="protonet", hash_buckets=8)
