"""Throughput of an image dataset's episode pipeline alone, plus cold and warm load times.

    TFMETA_DATA_DIR=../shared/data python benchmarks/episodes.py [--seconds 5]
    TFMETA_DATA_DIR=../shared/data python benchmarks/episodes.py --dataset=tiny_imagenet \
        --image_size=64 --meta_batch_size=4 --configs=5,1,15

Omniglot's loads time `load_omniglot`; other datasets (from the registry) time building the
dataset and reading its first batch, which includes the load.

Cold load = decode every PNG into a fresh cache folder; warm load = a new load from that
disk cache (in-process cache cleared). Throughput = tasks (episodes) per second read from
`tfmeta.data.omniglot(...)` after a warm-up, with nothing else consuming them.
"""

import argparse
import importlib
import os
import tempfile
import time

from tfmeta import data
from tfmeta.data import load_omniglot, omniglot

omniglot_module = importlib.import_module("tfmeta.data.omniglot.omniglot")
image_folder_module = importlib.import_module("tfmeta.data.images.image_folder")

CONFIGS = (  # (ways, shots, queries)
    (5, 1, 15),
    (20, 5, 5),
)
GOAL = 1000.0


def timed_load(data_dir, image_size, cache_dir, dataset="omniglot", split="train"):
    omniglot_module.clear_memory_cache()
    image_folder_module.clear_memory_cache()
    start = time.perf_counter()
    if dataset == "omniglot":
        load_omniglot(data_dir, image_size, cache_dir=cache_dir, dtype="uint8")
    else:
        os.environ["TFMETA_CACHE_DIR"] = cache_dir
        next(iter(registry_episodes(dataset, split, 5, 1, 1, 1, image_size, data_dir)))
    return time.perf_counter() - start


def registry_episodes(name, split, ways, shots, queries, meta_batch_size, image_size,
                      data_dir):
    spec = data.get_dataset(name)
    options = {"image_size": image_size} if "image_size" in spec.options else {}
    return spec.episodes(split, ways=ways, shots=shots, queries=queries,
                         meta_batch_size=meta_batch_size, data_dir=data_dir, **options)


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
    parser.add_argument("--dataset", default="omniglot", choices=data.list_datasets())
    parser.add_argument("--configs", nargs="*", default=None,
                        help="ways,shots,queries triples (default: 5,1,15 and 20,5,5)")
    args = parser.parse_args()
    configs = CONFIGS
    if args.configs:
        configs = [tuple(int(v) for v in config.split(",")) for config in args.configs]

    print(f"CPUs available: {len(os.sched_getaffinity(0))}")
    with tempfile.TemporaryDirectory(prefix="tfmeta-bench-cache-") as cache_dir:
        load = (args.data_dir, args.image_size, cache_dir, args.dataset, args.split)
        cold_cpu = time.process_time()
        cold = timed_load(*load)
        cold_cpu = time.process_time() - cold_cpu
        warm = timed_load(*load)
        print(
            f"{args.dataset} load, {args.image_size}px: cold (decode + write cache) {cold:.2f} s "
            f"({cold_cpu:.1f} s CPU), warm (from disk cache) {warm:.2f} s"
        )
        for ways, shots, queries in configs:
            if args.dataset != "omniglot":
                dataset = registry_episodes(args.dataset, args.split, ways, shots, queries,
                                            args.meta_batch_size, args.image_size,
                                            args.data_dir)
                rate = tasks_per_second(
                    dataset, args.meta_batch_size, args.seconds, args.warmup_batches
                )
                verdict = "ok" if rate >= GOAL else f"BELOW the {GOAL:.0f} tasks/s goal"
                print(
                    f"{args.dataset}/{args.split} {args.image_size}px {ways}-way {shots}-shot "
                    f"{queries}-query, meta-batch {args.meta_batch_size}: {rate:,.0f} tasks/s "
                    f"({verdict})"
                )
                continue
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
