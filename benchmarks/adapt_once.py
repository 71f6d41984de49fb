"""Adapt once, predict many: 200 queries one at a time through a SavedModel, two ways.

A served MAML learner answers queries that arrive one at a time, either through
`serving_default(support_x, support_y, query_x)`, which adapts to the support set again
on every call, or through `adapt(support_x, support_y)` once and then
`predict_adapted(task_state, query_x)` per query. This script exports MAML on conv4
(Omniglot's 28x28x1, 64 filters, 5-way 1-shot, 3 evaluation steps of 0.4, as
configs/omniglot_maml_5w1s.cfg) and measures both in CPU time of this process
(`time.process_time`, every thread), after one warm-up call of each signature. CPU time,
not wall time, because the benchmarks' machines are shared; it counts all cores' work.

Batch norm follows the config (transductive: each call's batch statistics, here those of
the one query); `--moving_statistics` uses the moving statistics instead. Either way both
paths give the same logits, which the script checks.

Example:
    .venv/bin/python benchmarks/adapt_once.py --queries=200
"""

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine_description  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--ways", type=int, default=5)
    parser.add_argument("--shots", type=int, default=1)
    parser.add_argument("--filters", type=int, default=64)
    parser.add_argument("--eval_inner_steps", type=int, default=3)
    parser.add_argument("--moving_statistics", action="store_true")
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    import tfmeta

    keras.utils.set_random_seed(0)
    model = tfmeta.backbones.conv4((28, 28, 1), filters=args.filters, num_classes=args.ways)
    learner = tfmeta.MAML(model, inner_steps=1, inner_learning_rate=0.4,
                          eval_inner_steps=args.eval_inner_steps,
                          transductive=not args.moving_statistics)
    learner.compile(optimizer="adam",
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    support_x = tf.constant(rng.uniform(size=(args.ways * args.shots, 28, 28, 1)), tf.float32)
    support_y = tf.constant(np.repeat(np.arange(args.ways), args.shots), tf.int32)
    queries = rng.uniform(size=(args.queries, 1, 28, 28, 1)).astype("float32")
    with tempfile.TemporaryDirectory() as folder:
        learner.export(os.path.join(folder, "maml"))
        served = tf.saved_model.load(os.path.join(folder, "maml"))
        serve = served.signatures["serving_default"]
        adapt = served.signatures["adapt"]
        predict_adapted = served.signatures["predict_adapted"]
        state = adapt(support_x=support_x, support_y=support_y)["task_state"]
        serve(support_x=support_x, support_y=support_y, query_x=queries[0])  # warm-up
        predict_adapted(task_state=state, query_x=queries[0])

        start = time.process_time()
        every_call = [serve(support_x=support_x, support_y=support_y, query_x=q)["logits"]
                      for q in queries]
        serving_default_s = time.process_time() - start

        start = time.process_time()
        state = adapt(support_x=support_x, support_y=support_y)["task_state"]
        once = [predict_adapted(task_state=state, query_x=q)["logits"] for q in queries]
        adapt_once_s = time.process_time() - start
    difference = float(np.max(np.abs(np.concatenate(every_call) - np.concatenate(once))))
    print(json.dumps({
        "learner": "MAML conv4 28x28x1", "transductive": not args.moving_statistics,
        "ways": args.ways, "shots": args.shots, "filters": args.filters,
        "eval_inner_steps": args.eval_inner_steps, "queries": args.queries,
        "task_state_size": int(state.shape[0]),
        "serving_default_cpu_s": round(serving_default_s, 2),
        "adapt_once_then_predict_adapted_cpu_s": round(adapt_once_s, 2),
        "speed_up": round(serving_default_s / adapt_once_s, 1),
        "max_abs_logit_difference": difference,
        "machine": machine_description(),
    }, indent=1))


if __name__ == "__main__":
    main()
