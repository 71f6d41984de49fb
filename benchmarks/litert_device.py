"""Few-shot on the device: LiteRT file sizes, accuracy after quantisation, CPU time per call.

    TFMETA_DATA_DIR=../shared/data .venv/bin/python benchmarks/litert_device.py \
        --train_episodes 300 --test_episodes 1000

Trains a conv4 ProtoNet briefly on Omniglot (Vinyals split, 20-way 1-shot 5-query
episodes, Adam 1e-3) and an untrained conv4 ANIL (MAML adapting its head, 10 closed-form
steps), exports each as a SavedModel and as `.tflite` files (float32, float16,
dynamic-range int8, full int8 calibrated on 32 training episodes), and prints:

- the file sizes;
- the 5-way 1-shot test accuracy (15 queries per class) of every ProtoNet file through the
  LiteRT interpreter, on the same `--test_episodes` episodes, with the 95% interval;
- the CPU time (`time.process_time`, all threads, on a shared machine: not wall time) per
  `adapt` (5 support images) and per `predict_adapted` (75 query images), through the
  interpreter and through the SavedModel's signatures in TensorFlow.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

import tfmeta
from tfmeta.export import LiteRTLearner


def train_protonet(episodes: int, data_dir: str | None) -> tfmeta.ProtoNet:
    keras.utils.set_random_seed(0)
    learner = tfmeta.ProtoNet(tfmeta.backbones.conv4((28, 28, 1)))
    learner.compile(optimizer=keras.optimizers.Adam(1e-3),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                    steps_per_execution=10)
    train = tfmeta.data.omniglot("train", ways=20, shots=1, queries=5, meta_batch_size=1,
                                 seed=0, data_dir=data_dir)
    learner.fit(train, steps_per_epoch=episodes, epochs=1, verbose=0)
    return learner


def test_episodes(count: int, data_dir: str | None):
    episodes = tfmeta.data.omniglot("test", ways=5, shots=1, queries=15, meta_batch_size=1,
                                    seed=2, data_dir=data_dir)
    for inputs, query_y in episodes.take(count).as_numpy_iterator():
        yield inputs["support_x"][0], inputs["support_y"][0], inputs["query_x"][0], query_y[0]


def accuracy(device: LiteRTLearner, episodes) -> tuple[float, float]:
    values = [np.mean(np.argmax(device(sx, sy, qx), axis=-1) == qy)
              for sx, sy, qx, qy in episodes]
    return float(np.mean(values)), float(1.96 * np.std(values) / np.sqrt(len(values)))


def cpu_time(function, repeats: int) -> float:
    function()  # warm up (allocation, tracing)
    start = time.process_time()
    for _ in range(repeats):
        function()
    return (time.process_time() - start) / repeats


def latency(name: str, folder: str, tflite: str, episode, repeats: int) -> None:
    support_x, support_y, query_x, _ = episode
    device = LiteRTLearner(tflite)
    saved = tf.saved_model.load(folder)
    adapt, predict = saved.signatures["adapt"], saved.signatures["predict_adapted"]
    state = device.adapt(support_x, support_y)
    tf_state = adapt(support_x=tf.constant(support_x), support_y=tf.constant(support_y))[
        "task_state"]
    rows = {
        "adapt": (lambda: device.adapt(support_x, support_y),
                  lambda: adapt(support_x=tf.constant(support_x),
                                support_y=tf.constant(support_y))),
        "predict_adapted": (lambda: device.predict_adapted(state, query_x),
                            lambda: predict(task_state=tf_state,
                                            query_x=tf.constant(query_x))),
    }
    for signature, (on_device, in_tf) in rows.items():
        print(f"{name:10s} {signature:16s} LiteRT {1e3 * cpu_time(on_device, repeats):7.1f} ms"
              f"   SavedModel (TF) {1e3 * cpu_time(in_tf, repeats):7.1f} ms CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train_episodes", type=int, default=300)
    parser.add_argument("--test_episodes", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--data_dir", default=os.environ.get("TFMETA_DATA_DIR"))
    args = parser.parse_args()

    protonet = train_protonet(args.train_episodes, args.data_dir)
    keras.utils.set_random_seed(0)
    anil = tfmeta.MAML(tfmeta.backbones.conv4((28, 28, 1), num_classes=5),
                       adapt_layers=["logits"], inner_learning_rate=0.4, eval_inner_steps=10,
                       transductive=False)
    anil.compile(optimizer="adam",
                 loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    representative = tfmeta.data.omniglot("train", ways=5, shots=1, queries=15,
                                          meta_batch_size=1, seed=1,
                                          data_dir=args.data_dir).take(32)
    episodes = list(test_episodes(args.test_episodes, args.data_dir))
    with tempfile.TemporaryDirectory() as folder:
        for name, learner in (("protonet", protonet), ("anil", anil)):
            learner.export(os.path.join(folder, name))
            learner.export_litert(os.path.join(folder, f"{name}.tflite"))
            size = os.path.getsize(os.path.join(folder, f"{name}.tflite"))
            print(f"{name}: float32 .tflite {size / 1024:.0f} KiB")
            latency(name, os.path.join(folder, name), os.path.join(folder, f"{name}.tflite"),
                    episodes[0], args.repeats)
        for quantization in (None, "float16", "dynamic_int8", "int8"):
            path = os.path.join(folder, f"protonet_{quantization}.tflite")
            protonet.export_litert(path, quantization=quantization,
                                   representative_episodes=representative)
            mean, interval = accuracy(LiteRTLearner(path), episodes)
            print(f"protonet {str(quantization):12s} {os.path.getsize(path) / 1024:6.0f} KiB "
                  f"5-way 1-shot accuracy {100 * mean:.2f} +/- {100 * interval:.2f}% "
                  f"({len(episodes)} episodes)")


if __name__ == "__main__":
    main()
