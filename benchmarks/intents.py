"""Few-shot intent detection: meta-trained tfmeta ProtoNet against the TF-IDF baseline.

    TFMETA_DATA_DIR=../shared/data .venv/bin/python benchmarks/intents.py \
        --datasets banking77,hwu64,clinc150 --class_splits 1,2,3,4,5 --train_once 5w5s \
        --train_steps 200 --test_episodes 300 --output benchmarks/intent_results/results.json

For every dataset, class split and setting (5-way 1-shot and 5-way 5-shot, 5 queries per
intent), trains a ProtoNet from scratch with the setting's config (or, with `--train_once
5w5s`, one ProtoNet per split with the 5w5s config, scored at both settings)
(`configs/intents_<dataset>_protonet_<setting>.cfg`: bag_of_ngrams encoder adapted to the
train intents' sentences, cosine logits, Adam 1e-3, meta-batch 4) for `--train_steps`
steps on the split's train intents, then scores it and the training-free TF-IDF baseline
(`tfmeta.baselines.TfidfPrototypes`: word uni- and bigrams, idf from the train intents'
sentences, cosine to the mean support vector) on the SAME `--test_episodes` episodes of the
split's test intents. Prints one line per run and the table: mean and standard deviation over
the class splits of the per-split mean accuracies, with the training budget, wall and CPU
time, and the machine.
"""

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine_description  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SETTINGS = {"5w1s": 1, "5w5s": 5}
EVAL_SEED = 12345  # Test episodes: one fixed stream per (dataset, split, setting).
EVAL_BATCH = 10


def config_experiment(dataset: str, setting: str, class_split: int, train_steps: int | None):
    """The `Experiment` of the setting's config file, for one class split."""
    from absl import flags

    from tfmeta.cli import train

    flag_values = flags.FlagValues()
    train.define_flags(flag_values)
    extra = [f"--class_split={class_split}"]
    if train_steps is not None:
        extra.append(f"--train_steps={train_steps}")
    config = REPO / "configs" / f"intents_{dataset}_protonet_{setting}.cfg"
    flag_values(["tfmeta-train", f"--flagfile={config}", "--model_dir=unused", *extra])
    return train.experiment_from_flags(flag_values)


def train_one(dataset: str, setting: str, class_split: int, train_steps: int | None,
              data_dir: str | None, **changes):
    """`(learner, budget)`: the setting's config trained on the split's train intents.

    `changes` replace settings of the config's `Experiment` (e.g. `hash_buckets`).
    """
    import dataclasses

    import keras

    from tfmeta.cli import builders

    experiment = dataclasses.replace(
        config_experiment(dataset, setting, class_split, train_steps), **changes)
    keras.utils.set_random_seed(experiment.seed)
    wall, cpu = time.perf_counter(), time.process_time()
    learner = builders.learner(experiment, data_dir)
    builders.compile_learner(learner, experiment, builders.optimizer(experiment))
    train_data = builders.episodes(
        experiment, "train", ways=experiment.ways, shots=experiment.shots,
        queries=experiment.queries, meta_batch_size=experiment.meta_batch_size,
        seed=experiment.seed, data_dir=data_dir)
    learner.fit(train_data, epochs=experiment.epochs, steps_per_epoch=experiment.steps_per_epoch,
                shuffle=False, verbose=0)
    steps = experiment.epochs * experiment.steps_per_epoch
    return learner, {
        "trained_on": setting, "train_steps": steps,
        "train_episodes": steps * experiment.meta_batch_size,
        "train_wall_s": round(time.perf_counter() - wall, 1),
        "train_cpu_s": round(time.process_time() - cpu, 1),
    }


def score(learner, budget: dict, dataset: str, setting: str, class_split: int,
          test_episodes: int, data_dir: str | None) -> dict:
    """tfmeta and the TF-IDF baseline on the same test episodes of one setting."""
    import numpy as np

    from tfmeta import data
    from tfmeta.baselines import TfidfPrototypes, episode_accuracies

    baseline = TfidfPrototypes(data.intent_sentences(dataset, "train", class_split, data_dir))
    test = data.intents(dataset, "test", ways=5, shots=SETTINGS[setting], queries=5,
                        meta_batch_size=EVAL_BATCH, class_split=class_split, seed=EVAL_SEED,
                        data_dir=data_dir)
    ours, theirs = [], []
    for inputs, query_y in test.take(max(1, test_episodes // EVAL_BATCH)):
        logits = np.asarray(learner.predict_on_batch(inputs))
        ours.append((logits.argmax(-1) == query_y.numpy()).mean(axis=1))
        theirs.append(episode_accuracies(baseline, inputs, query_y.numpy()))
    ours, theirs = np.concatenate(ours), np.concatenate(theirs)
    return {
        "dataset": dataset, "setting": setting, "class_split": class_split,
        "tfmeta": float(ours.mean()), "baseline": float(theirs.mean()),
        "test_episodes": int(len(ours)), **budget,
    }


def table(rows: list[dict]) -> str:
    import numpy as np

    lines = [
        "| dataset | setting | splits | tfmeta ProtoNet (%) | TF-IDF baseline (%) | "
        "difference (points) | training per split |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    keys = sorted({(r["dataset"], r["setting"]) for r in rows},
                  key=lambda k: (k[0], k[1]))
    for dataset, setting in keys:
        group = [r for r in rows if (r["dataset"], r["setting"]) == (dataset, setting)]
        ours = np.array([r["tfmeta"] for r in group]) * 100
        theirs = np.array([r["baseline"] for r in group]) * 100
        steps = group[0]["train_steps"]
        trained_on = group[0]["trained_on"]
        wall = np.mean([r["train_wall_s"] for r in group])
        cpu = np.mean([r["train_cpu_s"] for r in group])
        lines.append(
            f"| {dataset} | {setting} | {len(group)} | {ours.mean():.1f} ± {ours.std():.1f} | "
            f"{theirs.mean():.1f} ± {theirs.std():.1f} | {(ours - theirs).mean():+.1f} "
            f"(min {(ours - theirs).min():+.1f}) | {trained_on} episodes, {steps} steps, "
            f"{group[0]['train_episodes']} episodes, {wall:.0f} s wall / {cpu:.0f} s CPU |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="banking77,hwu64,clinc150")
    parser.add_argument("--class_splits", default="1,2,3,4,5")
    parser.add_argument("--settings", default="5w1s,5w5s")
    parser.add_argument("--train_steps", type=int, default=None,
                        help="Override of the configs' --train_steps.")
    parser.add_argument("--train_once", default=None,
                        help="Train one model per split with this setting's config (e.g. "
                        "5w5s) and score it at every setting, instead of one per setting.")
    parser.add_argument("--test_episodes", type=int, default=300)
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--output", default=None, help="JSON file of every row.")
    args = parser.parse_args()

    rows = []
    started = time.perf_counter()
    # Class splits outermost: a run cut short still has whole splits of every dataset.
    for class_split in (int(s) for s in args.class_splits.split(",")):
        for dataset in args.datasets.split(","):
            trained = None
            if args.train_once:
                trained = train_one(dataset, args.train_once, class_split, args.train_steps,
                                    args.data_dir)
            for setting in args.settings.split(","):
                learner, budget = trained or train_one(dataset, setting, class_split,
                                                       args.train_steps, args.data_dir)
                row = score(learner, budget, dataset, setting, class_split,
                            args.test_episodes, args.data_dir)
                rows.append(row)
                print(json.dumps(row), flush=True)
                if args.output:
                    write_rows(args, rows, started)
    print()
    print(f"Machine: {machine_description()}; "
          f"total {time.perf_counter() - started:.0f} s wall")
    print(table(rows))


def write_rows(args, rows, started) -> None:
    path = Path(args.output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "command": " ".join(shlex.quote(a) for a in sys.argv),
        "machine": machine_description(),
        "elapsed_s": round(time.perf_counter() - started, 1),
        "cpu_s": round(time.process_time(), 1),
        "rows": rows,
    }, indent=1) + "\n")


if __name__ == "__main__":
    main()
