"""Where a meta-training step's CPU time goes: TensorFlow's pools, runnable threads, per process.

Runs `--steps` steps of one workload (after 3 untimed) in each of `--processes` fresh
processes and prints, per process: CPU seconds per task (process CPU time, less this
script's sampler thread), the ratio of CPU time to wall time, the CPU seconds per task of
each kind of thread (`tf_Compute`: TensorFlow's inter-op pool; `python`: the unnamed
threads, TensorFlow's intra-op pool among them; `main`), and the histogram of the number of
the process's runnable threads, sampled every 5 ms from /proc (Linux only). CPU time and
runnable threads depend little on other load on the machine, unlike tasks/s: a run that
is slow with the same CPU per task idled (or lost its cores to others); one with more CPU
per task did more work; more runnable threads than cores is oversubscription.

Example:
    .venv/bin/python benchmarks/thread_use.py --workloads=maml32 --processes=5
    .venv/bin/python benchmarks/thread_use.py --workloads=protonet --cpu_threads=task_parallel
"""

import argparse
import collections
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import WORKLOADS, build_learner, random_episodes, workload_names  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workloads", default="maml32", help=f"among {sorted(WORKLOADS)}")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per process")
    parser.add_argument("--processes", type=int, default=1, help="fresh processes per workload")
    parser.add_argument("--cpu_threads", default="tensorflow",
                        choices=["tensorflow", "task_parallel"])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def thread_times() -> dict:
    """`{thread id: (name, CPU seconds)}` of this process's threads."""
    tick = os.sysconf("SC_CLK_TCK")
    times = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:
            continue  # The thread ended.
        fields = stat[stat.rindex(")") + 2:].split()
        times[tid] = (stat[stat.index("(") + 1:stat.rindex(")")],
                      (int(fields[11]) + int(fields[12])) / tick)
    return times


class RunnableSampler(threading.Thread):
    """Counts the process's runnable threads (state R, itself excluded) every 5 ms."""

    def __init__(self):
        super().__init__(daemon=True)
        self.counts, self.done = collections.Counter(), threading.Event()

    def run(self):
        me = str(threading.get_native_id())
        while not self.done.is_set():
            runnable = 0
            for tid in os.listdir("/proc/self/task"):
                try:
                    with open(f"/proc/self/task/{tid}/stat") as f:
                        stat = f.read()
                except OSError:
                    continue
                runnable += tid != me and stat[stat.rindex(")") + 2] == "R"
            self.counts[runnable] += 1
            time.sleep(0.005)


def probe(name: str, steps: int, task_parallel: bool) -> str:
    import tensorflow as tf

    if task_parallel:
        from tfmeta.distribute import use_task_parallel_threads

        use_task_parallel_threads()
    workload = WORKLOADS[name]
    learner = build_learner(workload)
    inputs, targets = random_episodes(workload, count=2)
    batches = [({k: tf.constant(v[i]) for k, v in inputs.items()}, tf.constant(targets[i]))
               for i in range(2)]
    for step in range(3):
        learner.train_on_batch(*batches[step % 2])
    sampler = RunnableSampler()
    sampler.start()
    time.sleep(0.05)
    before, start, cpu = thread_times(), time.perf_counter(), time.process_time()
    for step in range(steps):
        learner.train_on_batch(*batches[step % 2])
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    after = thread_times()
    sampler.done.set()
    sampler.join()
    tasks = steps * workload.meta_batch
    pools = collections.Counter()
    for tid, (thread_name, seconds) in after.items():
        spent = seconds - before.get(tid, (thread_name, 0.0))[1]
        if tid == str(sampler.native_id):
            cpu -= spent
            continue
        pools["main" if tid == str(os.getpid()) else thread_name.rstrip("0123456789")] += spent
    samples = sum(sampler.counts.values())
    histogram = {k: round(v / samples, 3) for k, v in sorted(sampler.counts.items())}
    mean = sum(k * v for k, v in sampler.counts.items()) / samples
    return (f"{name} cpu_threads={'task_parallel' if task_parallel else 'tensorflow'} "
            f"intra={tf.config.threading.get_intra_op_parallelism_threads()} "
            f"inter={tf.config.threading.get_inter_op_parallelism_threads()} "
            f"threads={len(after) - 1} cpu_s_per_task={cpu / tasks:.4f} "
            f"cpu_over_wall={cpu / wall:.2f} load={os.getloadavg()[0]:.1f} "
            + " ".join(f"{pool}={seconds / tasks:.4f}" for pool, seconds in pools.most_common())
            + f" runnable={histogram} mean_runnable={mean:.2f}")


def main(argv=None):
    args = parse_args(argv)
    names = workload_names(args.workloads)
    if args.child:
        print(probe(names[0], args.steps, args.cpu_threads == "task_parallel"), flush=True)
        return
    for name in names:
        for _ in range(args.processes):
            command = [sys.executable, os.path.abspath(__file__), "--child",
                       f"--workloads={name}", f"--steps={args.steps}",
                       f"--cpu_threads={args.cpu_threads}"]
            result = subprocess.run(command, capture_output=True, text=True, check=True)
            print(result.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
