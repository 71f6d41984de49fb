"""Meta-training throughput of tfmeta learners (tasks/s), optionally against the PyTorch peer.

Each workload is meta-trained on random Omniglot-shaped episodes (28x28x1,
conv4 with 64 filters and batch norm) held in memory as a repeating
`tf.data` dataset, with `learner.fit` as a user calls it (default
`steps_per_execution=1`). The first step's time (tracing plus the first run)
is printed as `trace_s`; throughput is measured over a window of `--seconds`
after `--warmup` steps, from the optimizer's step counter.

With `--torch`, the PyTorch peer (`torch_peer.py` beside this script: the
shared `../shared/bench/torch_ref.py` extended to ResNet-12 and RGB shapes, the
same model and step on conv4) runs the same workload right after tfmeta in the
same invocation, so both see the same machine load, and the ratio tfmeta/torch
is printed. Both sides print CPU seconds per task (process CPU time over the
window: immune to the stalls below) and the first step's time. `--repeats` alternates
the two several times and reports the median of the per-repeat ratios and the
ratio of the best windows (as `timeit` reports the best run): on the shared
2-core VMs this was written on, a window now and then stalls with the CPU idle
(a whole window at under a tenth of the usual rate, with the usual CPU time
per task), which the best windows ignore.

Every workload's line also gives the FLOPs of one task (`gflop_per_task`: the analytic
count of the model's convolutions and products, forward and backward, `flops.py`) and,
beside every tasks/s figure, the achieved GFLOP/s and its fraction of the machine's fp32
peak (`peak.py`: cores x FMA units x lanes x 2 x clock, from lscpu), for tfmeta and the
peer alike (both run the same model). `--profile_flops` checks the count against
TensorFlow's profiler on one traced step of one task (`profiled_gflop_per_task`, which
also counts what tfmeta's implementation adds, e.g. conv4's folded first batch norm).

`--cpu_threads=task_parallel` runs every op on one thread and the tasks of a meta-batch
in parallel, as `tfmeta-train` does for MAML, first-order MAML and Reptile on CPU (the
peer keeps PyTorch's defaults, its best on these workloads).

Example:
    .venv/bin/python benchmarks/throughput.py --torch
    .venv/bin/python benchmarks/throughput.py --workloads=maml,protonet --xla --seconds=10
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import (  # noqa: E402
    WORKLOADS,
    build_learner,
    machine_description,
    random_episodes,
    workload_names,
)
from flops import profiled_flops, workload_task_flops  # noqa: E402
from peak import fp32_peak  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TORCH_PEER = os.path.join(REPO, "benchmarks", "torch_peer.py")


def default_torch_python():
    beside = os.path.join(os.path.dirname(REPO), "torchvenv", "bin", "python")
    return os.environ.get("TORCH_PYTHON") or (beside if os.path.exists(beside) else "python3")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workloads", default="maml,fomaml,reptile,protonet,maml20",
                        help=f"comma-separated, among {sorted(WORKLOADS)}")
    parser.add_argument("--seconds", type=float, default=10.0, help="timed window per run")
    parser.add_argument("--warmup", type=int, default=2, help="steps after the first, untimed")
    parser.add_argument("--mode", default="fit", choices=["fit", "train_on_batch"])
    parser.add_argument("--steps_per_execution", type=int, default=1)
    parser.add_argument("--xla", action="store_true", help="also run with jit_compile=True")
    parser.add_argument("--no_plain", action="store_true", help="skip jit_compile=False")
    parser.add_argument("--bf16", action="store_true",
                        help="also run with the mixed_bfloat16 policy on the model")
    parser.add_argument("--recompute", action="store_true",
                        help="also run second-order MAML with recompute_inner_steps=True")
    parser.add_argument("--keras_bn", action="store_true",
                        help="also run conv4 built with keras.layers.BatchNormalization (a "
                        "user's plain Keras model), fused by the learner and unfused")
    parser.add_argument("--cpu_threads", default="tensorflow",
                        choices=["tensorflow", "task_parallel"],
                        help="tfmeta's CPU threads for the whole invocation: TensorFlow's "
                             "defaults, or one thread per op with the tasks in parallel "
                             "(tfmeta.distribute.use_task_parallel_threads; tfmeta-train's "
                             "choice for MAML, FOMAML and Reptile)")
    parser.add_argument("--profile_flops", action="store_true",
                        help="check each workload's FLOP count against TensorFlow's profiler "
                             "on one traced step of one task")
    parser.add_argument("--torch", action="store_true", help="run the PyTorch peer too")
    parser.add_argument("--torch_python", default=default_torch_python(),
                        help="a Python with torch==2.13.0 (a separate venv, never a tfmeta "
                             "dependency); default $TORCH_PYTHON, else ../torchvenv/bin/python "
                             "beside the repository if it exists, else python3")
    parser.add_argument("--torch_ref", default=TORCH_PEER,
                        help="the peer script (default torch_peer.py; "
                             "../shared/bench/torch_ref.py runs the conv4 workloads)")
    parser.add_argument("--torch_device", default="cpu",
                        help="the peer's device: cpu, or cuda (torch_peer.py only)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="alternate tfmeta and torch this many times (medians reported)")
    return parser.parse_args(argv)


class TfmetaRun:
    """One learner on one workload, traced once and timed over several windows."""

    def __init__(self, workload, mode, steps_per_execution, jit_compile, policy, warmup,
                 extra=None):
        import tensorflow as tf

        self.workload, self.mode = workload, mode
        inputs, targets = random_episodes(workload)
        self.learner = build_learner(workload, jit_compile=jit_compile, policy=policy,
                                     steps_per_execution=steps_per_execution, **(extra or {}))
        self.batches = [({k: v[i] for k, v in inputs.items()}, targets[i])
                        for i in range(len(targets))]
        self.dataset = (tf.data.Dataset.from_tensor_slices((inputs, targets)).repeat()
                        .prefetch(tf.data.AUTOTUNE))
        self.iterations = self.learner.optimizer.iterations
        start = time.perf_counter()
        self._train(lambda: self.iterations.numpy() >= 1)  # Tracing and the first step.
        self.trace_seconds = time.perf_counter() - start
        steps = int(self.iterations.numpy())
        self._train(lambda: self.iterations.numpy() >= steps + warmup)

    def _train(self, done):
        """Trains until `done()` (checked after each execution); returns the end time."""
        if self.mode == "train_on_batch":
            while not done():
                step = int(self.iterations.numpy())
                self.learner.train_on_batch(*self.batches[step % len(self.batches)])
            return
        import keras

        class Stop(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                if done():
                    self.model.stop_training = True

        self.learner.fit(self.dataset, steps_per_epoch=10**9, epochs=1, verbose=0,
                         callbacks=[Stop()])

    def time_window(self, seconds, min_steps=3):
        """Tasks/s and CPU seconds per task over a window of at least `seconds`."""
        warm = int(self.iterations.numpy())
        self._train(lambda: self.iterations.numpy() > warm)  # One untimed step first.
        first = int(self.iterations.numpy())
        start, cpu = time.perf_counter(), time.process_time()
        self._train(lambda: time.perf_counter() - start >= seconds
                    and self.iterations.numpy() - first >= min_steps)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        tasks = (int(self.iterations.numpy()) - first) * self.workload.meta_batch
        return tasks / elapsed, cpu / tasks


def time_torch(workload, seconds, python, script, device="cpu"):
    """The PyTorch peer's figures on `workload` (a subprocess): a dict of
    `tasks_per_s` and, where the peer prints them, `cpu_s_per_task` and `first_step_s`."""
    command = [python, script, *workload.torch_flags(), f"--seconds={seconds}",
               *([f"--device={device}"] if device != "cpu" else [])]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    figures = {key: float(value) for key, value in
               re.findall(r"(tasks_per_s|cpu_s_per_task|first_step_s)=([0-9.]+)", output)}
    if "tasks_per_s" not in figures:
        raise RuntimeError(f"unexpected output of {command}: {output!r}")
    return figures


def profiled_gflop_per_task(workload) -> float:
    """TensorFlow's profiler's GFLOPs of one task of `workload` (a meta-batch of one)."""
    import dataclasses

    import tensorflow as tf

    single = dataclasses.replace(workload, meta_batch=1)
    inputs, targets = random_episodes(single, count=1)
    batch = {key: tf.constant(value[0]) for key, value in inputs.items()}
    return profiled_flops(build_learner(single), batch, tf.constant(targets[0]))["total"] / 1e9


def hardware_figures(tasks_per_s: float, gflop_per_task: float, peak_gflops: float,
                     prefix: str = "") -> str:
    """`gflops=... peak_fraction=...` for a rate of `tasks_per_s` tasks."""
    gflops = tasks_per_s * gflop_per_task
    return f" {prefix}gflops={gflops:.1f} {prefix}peak_fraction={gflops / peak_gflops:.3f}"


def main(argv=None):
    args = parse_args(argv)
    names = workload_names(args.workloads)
    if args.cpu_threads == "task_parallel":
        from tfmeta.distribute import use_task_parallel_threads

        use_task_parallel_threads()
    # (label, jit_compile, dtype policy, extra build_learner arguments)
    variants = []
    if not args.no_plain:
        variants.append(("tfmeta", False, None, {}))
    if args.xla:
        variants.append(("tfmeta-xla", True, None, {}))
    if args.bf16:
        variants.append(("tfmeta-bf16", False, "mixed_bfloat16", {}))
    if args.recompute:
        variants.append(("tfmeta-recompute", False, None, {"recompute_inner_steps": True}))
    if args.keras_bn:
        # A user's plain Keras model: as every learner runs it now (its batch norm fused onto
        # the same variables), and with fuse_batch_norm=False (Keras' own layer, as before).
        variants.append(("tfmeta-kerasbn", False, None, {"keras_batch_norm": True}))
        variants.append(("tfmeta-kerasbn-unfused", False, None,
                         {"keras_batch_norm": True, "fuse_batch_norm": False}))
    print(f"# {machine_description()} cpu_threads={args.cpu_threads} mode={args.mode} "
          f"steps_per_execution={args.steps_per_execution} seconds={args.seconds}", flush=True)
    peak = fp32_peak()
    print(f"# {peak.describe()}", flush=True)
    for name in names:
        workload = WORKLOADS[name]
        model_learner = build_learner(workload)
        task_flops = workload_task_flops(workload, getattr(model_learner, "encoder", None)
                                         or model_learner.model)
        gflop = task_flops.total / 1e9
        line = f"  {name} gflop_per_task={gflop:.3f} " + " ".join(
            f"{part}={value / 1e9:.3f}" for part, value in task_flops.parts.items())
        if args.profile_flops:
            profiled = profiled_gflop_per_task(workload)
            line += (f" profiled_gflop_per_task={profiled:.3f} "
                     f"profiled_over_analytic={profiled / gflop:.3f}")
        print(line, flush=True)
        runs = {}
        for label, jit_compile, policy, extra in variants:
            if "recompute_inner_steps" in extra and workload.algo != "maml":
                continue
            runs[label] = TfmetaRun(workload, args.mode, args.steps_per_execution, jit_compile,
                                    policy, args.warmup, extra)
            print(f"  {name} {label} trace_s={runs[label].trace_seconds:.1f}", flush=True)
        rates = {label: [] for label in runs}
        cpu = {label: [] for label in runs}
        torch_rates, torch_cpu, torch_first = [], [], []
        ratios = {label: [] for label in runs}
        for _ in range(args.repeats):
            for label, run in runs.items():
                rate, cpu_per_task = run.time_window(args.seconds)
                rates[label].append(rate)
                cpu[label].append(cpu_per_task)
                print(f"  {name} {label} tasks_per_s={rate:.2f}"
                      + hardware_figures(rate, gflop, peak.gflops)
                      + f" cpu_s_per_task={cpu_per_task:.3f} load={os.getloadavg()[0]:.1f}",
                      flush=True)
            if args.torch and workload.torch_algo is not None:
                figures = time_torch(workload, args.seconds, args.torch_python, args.torch_ref,
                                     args.torch_device)
                torch_rate = figures["tasks_per_s"]
                torch_rates.append(torch_rate)
                torch_cpu += [figures["cpu_s_per_task"]] if "cpu_s_per_task" in figures else []
                torch_first += [figures["first_step_s"]] if "first_step_s" in figures else []
                for label in runs:
                    ratios[label].append(rates[label][-1] / torch_rate)
                print(f"  {name} torch tasks_per_s={torch_rate:.2f}"
                      + hardware_figures(torch_rate, gflop, peak.gflops) +
                      f" cpu_s_per_task={figures.get('cpu_s_per_task', float('nan')):.3f} "
                      f"load={os.getloadavg()[0]:.1f}", flush=True)
        for label, run in runs.items():
            rate = statistics.median(rates[label])
            line = (f"{name} {label} trace_s={run.trace_seconds:.1f} "
                    f"gflop_per_task={gflop:.3f} tasks_per_s={rate:.2f}"
                    + hardware_figures(rate, gflop, peak.gflops)
                    + f" best={max(rates[label]):.2f}"
                    f" cpu_s_per_task={statistics.median(cpu[label]):.3f}")
            if torch_rates:
                torch_rate = statistics.median(torch_rates)
                line += (f" torch_tasks_per_s={torch_rate:.2f}"
                         + hardware_figures(torch_rate, gflop, peak.gflops, "torch_")
                         + f" torch_best={max(torch_rates):.2f} "
                         f"ratio={statistics.median(ratios[label]):.2f} "
                         f"best_ratio={max(rates[label]) / max(torch_rates):.2f}")
                if torch_cpu:
                    torch_cpu_s = statistics.median(torch_cpu)
                    line += (f" torch_cpu_s_per_task={torch_cpu_s:.3f} "
                             f"cpu_ratio={torch_cpu_s / statistics.median(cpu[label]):.2f}")
                if torch_first:
                    line += f" torch_first_step_s={statistics.median(torch_first):.2f}"
            print(line, flush=True)

if __name__ == "__main__":
    main()
