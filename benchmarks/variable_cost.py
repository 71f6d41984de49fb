"""CPU time per support example of variable (Meta-Dataset) against fixed episodes.

    TFMETA_DATA_DIR=../shared/data .venv/bin/python benchmarks/variable_cost.py \
        --dataset tiny_imagenet --image_size 32 --episodes 200 \
        --output benchmarks/domain_results/variable_cost.json

For each kind of episode (fixed 5-way 1-shot and 5-way 5-shot with 15 queries per class,
20-way 5-shot 15-query as ProtoNet trains, and Meta-Dataset's variable ways and shots, at most
50 ways, 500 support examples and 10 queries per class, padded with label -1), it measures
the CPU time (`time.process_time`: every thread of the process, so the measure holds on a
loaded machine) of (a) sampling the episodes through the one sampler and (b) sampling them
and one ProtoNet training step on each (conv4-64, Adam), and divides by the real (unpadded)
support examples. The ratio variable / fixed is issue 28's figure (goal: at most 1.3).
"""

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import cpu_model  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

KINDS = {"5w1s": {"ways": 5, "shots": 1, "queries": 15},
         "5w5s": {"ways": 5, "shots": 5, "queries": 15},
         "20w5s": {"ways": 20, "shots": 5, "queries": 15},
         "variable": {"ways": None, "shots": None, "queries": None, "max_ways": 50,
                      "max_support": 500, "max_queries": 10}}


def measure(kind: str, args) -> dict:
    import keras
    import numpy as np

    import tfmeta

    spec = tfmeta.data.get_dataset(args.dataset)
    options = {"image_size": args.image_size}

    def stream():
        return spec.episodes("train", meta_batch_size=1, seed=args.seed,
                             data_dir=args.data_dir, **options, **KINDS[kind])

    # Warm-up (traces, cache): not timed.
    for _ in stream().take(2):
        pass
    cpu, wall = time.process_time(), time.perf_counter()
    support = queries = 0
    for inputs, query_y in stream().take(args.episodes):
        support += int(np.count_nonzero(inputs["support_y"].numpy() >= 0))
        queries += int(np.count_nonzero(query_y.numpy() >= 0))
    sampling_cpu, sampling_wall = time.process_time() - cpu, time.perf_counter() - wall

    keras.utils.set_random_seed(args.seed)
    shape = tuple(stream().element_spec[0]["support_x"].shape[2:])
    learner = tfmeta.ProtoNet(tfmeta.backbones.conv4(shape))
    learner.compile(optimizer="adam",
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    learner.fit(stream().take(2), verbose=0)  # Traces the step: not timed.
    cpu, wall = time.process_time(), time.perf_counter()
    learner.fit(stream().take(args.episodes), verbose=0)
    step_cpu, step_wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"kind": kind, "episode": {k: v for k, v in KINDS[kind].items()},
            "episodes": args.episodes, "support_examples": support, "query_examples": queries,
            "sampling_cpu_s": round(sampling_cpu, 2), "sampling_wall_s": round(sampling_wall, 2),
            "training_cpu_s": round(step_cpu, 2), "training_wall_s": round(step_wall, 2),
            "sampling_cpu_ms_per_support": round(1e3 * sampling_cpu / support, 4),
            "training_cpu_ms_per_support": round(1e3 * step_cpu / support, 4),
            "training_cpu_ms_per_example": round(1e3 * step_cpu / (support + queries), 4)}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="tiny_imagenet")
    parser.add_argument("--image_size", type=int, default=32)
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    rows = []
    for kind in args.kinds:
        rows.append(measure(kind, args))
        print(json.dumps(rows[-1]), flush=True)
    report = {"dataset": args.dataset, "image_size": args.image_size, "rows": rows,
              "hardware": f"{cpu_model(platform.processor() or platform.machine())}, "
                          f"{os.cpu_count()} cores (CPU only, shared)",
              "command": " ".join(["benchmarks/variable_cost.py",
                                   *(sys.argv[1:] if argv is None else argv)])}
    variable = next((row for row in rows if row["kind"] == "variable"), None)
    if variable:
        for row in rows:
            if row is not variable:
                report[f"ratio_variable_to_{row['kind']}"] = {
                    "sampling": round(variable["sampling_cpu_ms_per_support"]
                                      / row["sampling_cpu_ms_per_support"], 3),
                    "training": round(variable["training_cpu_ms_per_support"]
                                      / row["training_cpu_ms_per_support"], 3)}
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k.startswith("ratio")}), flush=True)
    return report


if __name__ == "__main__":
    main()
