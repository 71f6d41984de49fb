"""Run by test_padded_mirrored.py in a subprocess: padded against unpadded episodes, one
MirroredStrategy step over two logical CPUs. Prints one JSON line per learner with the
largest weight difference after the step and both losses."""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402

tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "learners"))
from test_padding import episodes, mlp, padded  # noqa: E402

import tfmeta  # noqa: E402

STRATEGY = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
LEARNERS = {
    "protonet": lambda: tfmeta.ProtoNet(mlp(True, units=4), fuse_batch_norm=False),
    "maml": lambda: tfmeta.MAML(mlp(True), inner_steps=2, inner_learning_rate=0.3,
                                first_order=True),
}


def trained(name, inputs, query_y):
    with STRATEGY.scope():
        learner = LEARNERS[name]()
        learner.compile(optimizer=keras.optimizers.SGD(0.1),
                        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    data = tf.data.Dataset.from_tensors((inputs, query_y))
    history = learner.fit(data, epochs=1, verbose=0)
    return learner, history.history["loss"][-1]


for name in sys.argv[1:]:
    inputs, query_y = episodes(tasks=2, seed=11)
    pad_inputs, pad_query_y = padded(inputs, query_y)
    plain, plain_loss = trained(name, inputs, query_y)
    pad, pad_loss = trained(name, pad_inputs, pad_query_y)
    diff = max(float(np.abs(np.asarray(a) - np.asarray(b)).max())
               for a, b in zip(plain.weights, pad.weights))
    print(json.dumps({"learner": name, "replicas": STRATEGY.num_replicas_in_sync,
                      "max_weight_diff": diff, "loss": plain_loss, "padded_loss": pad_loss}),
          flush=True)
