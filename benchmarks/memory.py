"""Peak memory of second-order MAML against the number of inner steps.

Each configuration (inner steps x `recompute_inner_steps` off/on) runs in a
fresh Python process that builds the learner, runs `train_on_batch` once
(tracing, graph optimization and the first step) and then `--train_steps`
more times on random Omniglot-shaped episodes, and reports:

- `peak_rss_mb`: the process's peak resident memory (`ru_maxrss`): the
  TensorFlow runtime, the traced and optimized graph, and the step's tensors;
- `step_rss_mb`: the peak minus the resident memory just before the first
  step (after building the learner): what training adds;
- `tensor_peak_mb`: the most memory TensorFlow's CPU allocator held for
  tensors at once during the later steps (the intermediates the backward
  pass keeps);
- `first_step_s`: the time of the first step (tracing included).

`tf.config.experimental.get_memory_info("CPU:0")` returns zeros with the
default CPU allocator; the child processes set `TF_CPU_ALLOCATOR_USE_BFC=true`
so that it reports allocator statistics.

Example:
    .venv/bin/python benchmarks/memory.py
    .venv/bin/python benchmarks/memory.py --steps=1,10 --shots=5 --queries=5
"""

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import WORKLOADS, build_learner, machine_description, random_episodes  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def measure(config: dict) -> dict:
    """Runs in the child process: one configuration, returns its figures."""
    import tensorflow as tf

    workload = dataclasses.replace(
        WORKLOADS["maml"], inner_steps=config["inner_steps"], shots=config["shots"],
        queries=config["queries"], meta_batch=config["meta_batch"], ways=config["ways"],
    )
    inputs, targets = random_episodes(workload, count=1)
    batch = ({k: v[0] for k, v in inputs.items()}, targets[0])
    kwargs = {"recompute_inner_steps": True} if config["recompute"] else {}
    learner = build_learner(workload, **kwargs)
    before = rss_mb()
    start = time.perf_counter()
    learner.train_on_batch(*batch)  # Traces, optimizes and runs the step once.
    first_step = time.perf_counter() - start
    traced = rss_mb()
    tf.config.experimental.reset_memory_stats("CPU:0")
    for _ in range(config["train_steps"]):
        learner.train_on_batch(*batch)
    tensors = tf.config.experimental.get_memory_info("CPU:0")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "peak_rss_mb": peak,
        "before_mb": before,
        "after_first_step_mb": traced,
        "tensor_peak_mb": tensors["peak"] / 2**20,
        "first_step_s": first_step,
    }


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", default="1,5,10", help="inner steps, comma-separated")
    parser.add_argument("--ways", type=int, default=5)
    parser.add_argument("--shots", type=int, default=1)
    parser.add_argument("--queries", type=int, default=15, help="per class")
    parser.add_argument("--meta_batch", type=int, default=8)
    parser.add_argument("--train_steps", type=int, default=3)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.child is not None:
        print("RESULT " + json.dumps(measure(json.loads(args.child))), flush=True)
        return
    print(f"# {machine_description()} second-order MAML conv4, {args.ways}-way "
          f"{args.shots}-shot {args.queries}-query, meta-batch {args.meta_batch}, "
          f"{args.train_steps} fit steps per process", flush=True)
    print(f"{'inner_steps':>11} {'recompute':>9} {'peak_rss_mb':>11} {'step_rss_mb':>11} "
          f"{'tensor_peak_mb':>14} {'first_step_s':>12}", flush=True)
    # TensorFlow's CPU allocator keeps statistics only as a BFC allocator.
    env = {**os.environ, "TF_CPU_ALLOCATOR_USE_BFC": "true"}
    for steps in [int(s) for s in args.steps.split(",")]:
        for recompute in (False, True):
            config = {"inner_steps": steps, "recompute": recompute, "ways": args.ways,
                      "shots": args.shots, "queries": args.queries,
                      "meta_batch": args.meta_batch, "train_steps": args.train_steps}
            output = subprocess.run(
                [sys.executable, os.path.abspath(__file__), "--child", json.dumps(config)],
                capture_output=True, text=True, check=True, env=env,
            ).stdout
            line = next(x for x in output.splitlines() if x.startswith("RESULT "))
            r = json.loads(line[len("RESULT "):])
            print(f"{steps:>11} {str(recompute):>9} {r['peak_rss_mb']:>11.0f} "
                  f"{r['peak_rss_mb'] - r['before_mb']:>11.0f} {r['tensor_peak_mb']:>14.0f} "
                  f"{r['first_step_s']:>12.1f}", flush=True)

if __name__ == "__main__":
    main()
