"""Run by test_mirrored.py in a subprocess: one device against MirroredStrategy on logical CPUs.

Usage: python mirrored_step.py REPLICAS LEARNER [LEARNER ...]

Splits the CPU into REPLICAS logical devices (before TensorFlow starts), then
for each learner trains two copies with the same initial weights on the same
episodes: one without a strategy, one under `MirroredStrategy` over the
logical CPUs. Prints one JSON line per learner with the largest absolute
differences of the weights after `fit` and how far the replicas' copies of
each variable are apart (or the error, for a learner that failed).

Environment: STEPS (2) and EPOCHS (1) of `fit`; TFMETA_TEST_DEVICE=GPU splits the
first GPU instead of the CPU; TFMETA_TEST_JIT=1 compiles with `jit_compile=True`.
"""

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402

REPLICAS = int(sys.argv[1])
# TFMETA_TEST_DEVICE=GPU splits the first GPU instead (a check for machines with one).
DEVICE_TYPE = os.environ.get("TFMETA_TEST_DEVICE", "CPU")
JIT_COMPILE = True if os.environ.get("TFMETA_TEST_JIT") == "1" else "auto"
_DEVICE = tf.config.list_physical_devices(DEVICE_TYPE)[0]
tf.config.set_logical_device_configuration(
    _DEVICE,
    [tf.config.LogicalDeviceConfiguration(memory_limit=4096 if DEVICE_TYPE == "GPU" else None)]
    * REPLICAS,
)

import numpy as np  # noqa: E402
from learner_configs import comparable, dataset, make_learner  # noqa: E402

import tfmeta  # noqa: E402

STEPS = int(os.environ.get("STEPS", "2"))
EPOCHS = int(os.environ.get("EPOCHS", "1"))
# One strategy for the whole process: strategies over the same devices would reuse
# collective keys.
MIRRORED = tfmeta.distribute.strategy_from_name("mirrored")


def replica_spread(variable):
    """The largest difference between the replicas' copies of a variable (0 for one copy)."""
    copies = getattr(variable.value, "values", None)
    if not copies:
        return 0.0
    arrays = [np.asarray(copy.numpy()) for copy in copies]
    return float(max(np.abs(array - arrays[0]).max() for array in arrays))


def run(name):
    start = time.perf_counter()
    single = make_learner(name, tf.distribute.get_strategy(), jit_compile=JIT_COMPILE)
    initial = [v.numpy() for v in single.variables]
    before = {kind: [v.numpy() for v in getattr(single, kind)]
              for kind in ("trainable_variables", "non_trainable_variables")}
    single.fit(dataset(name), steps_per_epoch=STEPS, epochs=EPOCHS, verbose=0)
    mirrored = make_learner(name, MIRRORED, initial, jit_compile=JIT_COMPILE)
    history = mirrored.fit(dataset(name), steps_per_epoch=STEPS, epochs=EPOCHS, verbose=0)
    spec = MIRRORED.experimental_distribute_dataset(dataset(name)).element_spec[1]
    result = {"learner": name, "replicas": MIRRORED.num_replicas_in_sync,
              "per_replica_meta_batch": [s.shape[0] for s in spec._value_specs],
              "comparable": comparable(name), "loss": history.history["loss"][-1]}
    for kind in ("trainable_variables", "non_trainable_variables"):
        pairs = list(zip(getattr(single, kind), getattr(mirrored, kind)))
        result[f"{kind}_count"] = len(pairs)
        result[f"{kind}_max_change"] = max(
            [float(np.abs(a.numpy() - b).max()) for (a, _), b in zip(pairs, before[kind])] or [0.0])
        result[f"{kind}_max_diff"] = max(
            [float(np.abs(a.numpy() - b.numpy()).max()) for a, b in pairs] or [0.0])
    result["replica_spread"] = max(replica_spread(v) for v in mirrored.variables)
    result["seconds"] = round(time.perf_counter() - start, 2)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    for learner_name in sys.argv[2:]:
        try:
            run(learner_name)
        except Exception as error:  # Reported, so that the other learners still run.
            message = f"{type(error).__name__}: {str(error)[-600:]}"
            print(json.dumps({"learner": learner_name, "error": message}), flush=True)
