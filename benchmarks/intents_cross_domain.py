"""Few-shot intent detection across domains: train on one intent dataset, test on another.

    TFMETA_DATA_DIR=../shared/data nice -n 10 .venv/bin/python benchmarks/intents_cross_domain.py \
        --pairs banking77:clinc150,banking77:hwu64,clinc150:banking77 --train_steps 200 \
        --hash_buckets 0,65536 --test_episodes 300 \
        --output benchmarks/intent_results/cross_domain.json

For each pair `source:target`, trains a ProtoNet with the source's 5w5s config
(`configs/intents_<source>_protonet_5w5s.cfg`: bag_of_ngrams encoder, cosine logits, Adam
1e-3, meta-batch 4) on the train intents of the source's class split 1, once per
`--hash_buckets` value (0: the vocabulary's TF-IDF only; N: hashed word and character
n-grams in N buckets beside it). A CLINC150 source drops its banking and credit-card
intents (`--drop_intents=clinc150_banking,clinc150_credit_cards`, IntentBERT's protocol)
when the target is BANKING77. Each model is scored on the target's class-split-1 test
intents, 5-way 1-shot and 5-shot with 5 queries per intent, on the same episodes as the
in-domain model (the target's own config, trained the same way on the target's train
intents) and two training-free TF-IDF baselines (`tfmeta.baselines.TfidfPrototypes`):
idf from the source's training sentences (what the cross-domain model saw) and from the
target's (the in-domain baseline of benchmarks/intents.py, whose episodes these are).
Prints one JSON line per row and a table with wall and CPU time.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine_description  # noqa: E402
from intents import EVAL_BATCH, EVAL_SEED, SETTINGS, train_one, write_rows  # noqa: E402

CLASS_SPLIT = 1
# IntentBERT (Zhang et al., Findings of EMNLP 2021): no intent of BANKING77 in training.
DROPPED_FOR = {("clinc150", "banking77"): ("clinc150_banking", "clinc150_credit_cards")}


def train(source: str, drop_intents: tuple[str, ...], hash_buckets: int, train_steps: int,
          data_dir: str | None):
    """`(learner, budget)`: the source's 5w5s config on its (remaining) train intents."""
    from tfmeta import data

    learner, budget = train_one(source, "5w5s", CLASS_SPLIT, train_steps, data_dir,
                                drop_intents=drop_intents, hash_buckets=hash_buckets)
    train_intents = len(data.load_intents(source, "train", CLASS_SPLIT, data_dir,
                                          drop_intents).labels)
    return learner, {"source": source, "drop_intents": list(drop_intents),
                     "train_intents": train_intents, "hash_buckets": hash_buckets, **budget}


def test_episodes(target: str, shots: int, episodes: int, data_dir: str | None):
    """The target's class-split-1 test episodes (those of benchmarks/intents.py)."""
    from tfmeta import data

    stream = data.intents(target, "test", ways=5, shots=shots, queries=5,
                          meta_batch_size=EVAL_BATCH, class_split=CLASS_SPLIT, seed=EVAL_SEED,
                          data_dir=data_dir)
    return [(inputs, query_y.numpy()) for inputs, query_y in
            stream.take(max(1, episodes // EVAL_BATCH))]


def accuracies(learner, batches):
    import numpy as np

    wall, cpu = time.perf_counter(), time.process_time()
    values = np.concatenate([
        (np.asarray(learner.predict_on_batch(inputs)).argmax(-1) == query_y).mean(axis=1)
        for inputs, query_y in batches])
    return values, {"test_wall_s": round(time.perf_counter() - wall, 1),
                    "test_cpu_s": round(time.process_time() - cpu, 1)}


def baseline_accuracies(sentences, batches):
    import numpy as np

    from tfmeta.baselines import TfidfPrototypes, episode_accuracies

    baseline = TfidfPrototypes(sentences)
    return np.concatenate([episode_accuracies(baseline, inputs, query_y)
                           for inputs, query_y in batches])


def hashed_baseline_accuracies(sentences, batches, hash_buckets: int):
    """Training-free: hashed word and character n-gram TF-IDF, cosine to the class means."""
    import numpy as np
    import tensorflow as tf

    from tfmeta.layers import HashedNgrams

    layer = HashedNgrams(hash_buckets)
    layer.adapt(sentences)

    def vectors(x):
        v = layer(tf.reshape(x, [-1])).numpy()
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

    values = []
    for inputs, query_y in batches:
        for b in range(len(query_y)):
            support, labels = vectors(inputs["support_x"][b]), inputs["support_y"][b].numpy()
            means = np.stack([support[labels == c].mean(0) for c in range(labels.max() + 1)])
            means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
            logits = vectors(inputs["query_x"][b]) @ means.T
            values.append(float((logits.argmax(1) == query_y[b]).mean()))
    return np.array(values)


def summary(values) -> dict:
    from tfmeta import metrics

    mean, ci95 = metrics.mean_confidence_interval(values)
    return {"mean": round(float(mean), 4), "ci95": round(float(ci95), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", default="banking77:clinc150,banking77:hwu64,"
                        "clinc150:banking77")
    parser.add_argument("--hash_buckets", default="0,65536",
                        help="Encoders to train: 0 (vocabulary only) and/or bucket counts.")
    parser.add_argument("--train_steps", type=int, default=200)
    parser.add_argument("--test_episodes", type=int, default=300)
    parser.add_argument("--no_in_domain", action="store_true",
                        help="Skip the in-domain models (their rows are in intents.py's).")
    parser.add_argument("--baselines_only", action="store_true",
                        help="Only the training-free baselines (TF-IDF, and hashed n-gram "
                        "TF-IDF for every non-zero --hash_buckets).")
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--output", default=None)
    args = parser.parse_args()

    from tfmeta import data

    started = time.perf_counter()
    pairs = [tuple(pair.split(":")) for pair in args.pairs.split(",")]
    buckets = [int(b) for b in args.hash_buckets.split(",")]
    rows, trained = [], {}
    for source, target in pairs:
        runs = [(source, DROPPED_FOR.get((source, target), ()), "cross-domain")]
        if not args.no_in_domain:
            runs.append((target, (), "in-domain"))
        if args.baselines_only:
            runs = []
        batches = {shots: test_episodes(target, shots, args.test_episodes, args.data_dir)
                   for shots in SETTINGS.values()}
        for trained_on, dropped, kind in runs:
            for hash_buckets in buckets:
                key = (trained_on, dropped, hash_buckets)
                if key not in trained:
                    trained[key] = train(trained_on, dropped, hash_buckets, args.train_steps,
                                         args.data_dir)
                learner, budget = trained[key]
                for setting, shots in SETTINGS.items():
                    values, timing = accuracies(learner, batches[shots])
                    rows.append({"target": target, "kind": kind, "setting": setting,
                                 "model": "protonet", **budget, **summary(values),
                                 "test_episodes": int(values.size), **timing})
                    print(json.dumps(rows[-1]), flush=True)
        for setting, shots in SETTINGS.items():
            for fitted_on, dropped in ((source, DROPPED_FOR.get((source, target), ())),
                                       (target, ())):
                sentences = data.intent_sentences(fitted_on, "train", CLASS_SPLIT,
                                                  args.data_dir, dropped)
                values = baseline_accuracies(sentences, batches[shots])
                rows.append({"target": target, "kind": "tfidf", "setting": setting,
                             "model": "tfidf", "source": fitted_on,
                             "drop_intents": list(dropped), **summary(values),
                             "test_episodes": int(values.size)})
                print(json.dumps(rows[-1]), flush=True)
                for hash_buckets in filter(None, buckets):
                    values = hashed_baseline_accuracies(sentences, batches[shots],
                                                        hash_buckets)
                    rows.append({"target": target, "kind": "hashed_tfidf", "setting": setting,
                                 "model": "hashed_tfidf", "source": fitted_on,
                                 "drop_intents": list(dropped), "hash_buckets": hash_buckets,
                                 **summary(values), "test_episodes": int(values.size)})
                    print(json.dumps(rows[-1]), flush=True)
        if args.output:
            write_rows(args, rows, started)
    print(f"\nMachine: {machine_description()}; total "
          f"{time.perf_counter() - started:.0f} s wall, {time.process_time():.0f} s CPU")
    print(table(rows))


def table(rows: list[dict]) -> str:
    lines = ["| target | model | trained on (split-1 train intents) | hashed buckets | "
             "5w1s (%) | 5w5s (%) | training wall / CPU |", "| --- " * 7 + "|"]
    seen = []
    for row in rows:
        key = (row["target"], row["model"], row["source"], tuple(row["drop_intents"]),
               row.get("hash_buckets"))
        if key in seen:
            continue
        seen.append(key)
        group = {r["setting"]: r for r in rows
                 if (r["target"], r["model"], r["source"], tuple(r["drop_intents"]),
                     r.get("hash_buckets")) == key}
        cells = [f"{100 * group[s]['mean']:.1f} ± {100 * group[s]['ci95']:.1f}"
                 if s in group else "" for s in SETTINGS]
        source = row["source"] + (" minus " + "+".join(row["drop_intents"])
                                  if row["drop_intents"] else "")
        budget = (f"{row['train_wall_s']:.0f} s / {row['train_cpu_s']:.0f} s"
                  if row["model"] == "protonet" else "none (TF-IDF idf)")
        lines.append(f"| {row['target']} | {row['model']} | {source} | "
                     f"{row.get('hash_buckets', '')} | {cells[0]} | {cells[1]} | {budget} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
