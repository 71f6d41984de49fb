"""mini-ImageNet through TFDS on a full-size stand-in: prepare, cold/warm load, episodes/s.

    python benchmarks/mini_imagenet_load.py [--images_per_class 600] [--seconds 5]

Writes a stand-in of the common release (`images/<wnid><number>.jpg`, 84x84 JPEGs of smooth
random colour fields; real photos decode at a similar speed) into a temporary data root,
then times: preparing the TFDS dataset from it (`MiniImagenet`), the cold load of the
"train" split (decode + resize into a fresh cache), the warm load (from the disk cache,
in-process cache cleared), and the episode pipeline's tasks per second for 5-way 1-shot
15-query at meta-batch 4.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfmeta import data
from tfmeta.data import tfds_source


def write_release(folder: Path, images_per_class: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    target = folder / "mini_imagenet" / "images"
    target.mkdir(parents=True)
    for split in ("train", "validation", "test"):
        for wnid in data.benchmark_classes("mini_imagenet", split):
            for index in range(images_per_class):
                coarse = rng.integers(0, 256, size=(1, 6, 6, 3)).astype(np.float32)
                image = tf.cast(tf.image.resize(coarse, [84, 84])[0], tf.uint8)
                (target / f"{wnid}{index + 1:08d}.jpg").write_bytes(
                    tf.io.encode_jpeg(image, quality=90).numpy())


def timed(function):
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def tasks_per_second(dataset, meta_batch_size, seconds, warmup_batches=10):
    iterator = iter(dataset)
    for _ in range(warmup_batches):
        next(iterator)
    batches, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        next(iterator)
        batches += 1
    return batches * meta_batch_size / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images_per_class", type=int, default=600)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    print(f"CPUs available: {len(os.sched_getaffinity(0))}")
    with tempfile.TemporaryDirectory(prefix="tfmeta-mini-") as tmp:
        root, cache = Path(tmp) / "root", Path(tmp) / "cache"
        _, seconds = timed(lambda: write_release(root, args.images_per_class))
        files = 100 * args.images_per_class
        size = sum(p.stat().st_size for p in (root / "mini_imagenet" / "images").iterdir())
        print(f"stand-in: {files} JPEGs, {size / 2**20:.0f} MiB, written in {seconds:.1f} s")
        (root / "tensorflow_datasets").mkdir()
        _, seconds = timed(lambda: data.prepared_mini_imagenet(root))
        print(f"TFDS prepare (MiniImagenet from images/): {seconds:.1f} s")
        builder = data.prepared_mini_imagenet(root)
        _, cold = timed(lambda: tfds_source.load_images(builder, ["train"], 84, cache))
        tfds_source.clear_memory_cache()
        loaded, warm = timed(lambda: tfds_source.load_images(builder, ["train"], 84, cache))
        print(f"train split at 84 px ({loaded.images.shape[0]} images, "
              f"{loaded.images.nbytes / 2**20:.0f} MiB uint8): cold load {cold:.1f} s, "
              f"warm load {warm:.2f} s")
        dataset = data.mini_imagenet("train", ways=5, shots=1, queries=15, meta_batch_size=4,
                                     image_size=84, data_dir=root, cache_dir=cache)
        rate = tasks_per_second(dataset, 4, args.seconds)
        print(f"episodes 5w1s15q, meta-batch 4, 84 px: {rate:.0f} tasks/s")


if __name__ == "__main__":
    main()
