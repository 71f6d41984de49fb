"""Throughput of the Omniglot episode pipeline alone, plus cold and warm load times.

    TFMETA_DATA_DIR=../shared/data python benchmarks/episodes.py [--seconds 5]

Cold load = decode every PNG into a fresh cache folder; warm load = a new load from that
disk cache (in-process cache cleared). Throughput = tasks (episodes) per second read from
`tfmeta.data.omniglot(...)` after a warm-up, with nothing else consuming them.
"""

import argparse
import importlib
import os
import tempfile
import time

from tfmeta.data import load_omniglot, omniglot

omniglot_module = importlib.import_module("tfmeta.data.omniglot")

CONFIGS = (  # (ways, shots, queries)
    (5, 1, 15),
    (20, 5, 5),
)
GOAL = 1000.0


def timed_load(data_dir, image_size, cache_dir):
    omniglot_module.clear_memory_cache()
    start = time.perf_counter()
    load_omniglot(data_dir, image_size, cache_dir=cache_dir, dtype="uint8")
    return time.perf_counter() - start


def tasks_per_second(dataset, meta_batch_size, seconds, warmup_batches):
    iterator = iter(dataset)
    for _ in range(warmup_batches):
        next(iterator)
    batches = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        next(iterator)
        batches += 1
    return batches * meta_batch_size / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default=None, help="data root (default: $TFMETA_DATA_DIR)")
    parser.add_argument("--seconds", type=float, default=5.0, help="timed seconds per config")
    parser.add_argument("--warmup_batches", type=int, default=20)
    parser.add_argument("--meta_batch_size", type=int, default=32)
    parser.add_argument("--image_size", type=int, default=28)
    parser.add_argument("--scheme", default="vinyals")
    parser.add_argument("--split", default="train")
    args = parser.parse_args()

    print(f"CPUs available: {len(os.sched_getaffinity(0))}")
    with tempfile.TemporaryDirectory(prefix="tfmeta-bench-cache-") as cache_dir:
        cold = timed_load(args.data_dir, args.image_size, cache_dir)
        warm = timed_load(args.data_dir, args.image_size, cache_dir)
        print(
            f"load, {args.image_size}px: cold (decode + write cache) {cold:.2f} s, "
            f"warm (from disk cache) {warm:.2f} s"
        )
        for ways, shots, queries in CONFIGS:
            dataset = omniglot(
                args.split,
                ways,
                shots,
                queries,
                args.meta_batch_size,
                args.image_size,
                scheme=args.scheme,
                data_dir=args.data_dir,
                cache_dir=cache_dir,
            )
            rate = tasks_per_second(
                dataset, args.meta_batch_size, args.seconds, args.warmup_batches
            )
            verdict = "ok" if rate >= GOAL else f"BELOW the {GOAL:.0f} tasks/s goal"
            print(
                f"omniglot {args.scheme}/{args.split} {ways}-way {shots}-shot {queries}-query, "
                f"meta-batch {args.meta_batch_size}: {rate:,.0f} tasks/s ({verdict})"
            )


if __name__ == "__main__":
    main()
