"""Run by test_multi_worker.py in subprocesses: multi-worker training and its reference.

Usage:
    python multi_worker.py worker OUT.npz LEARNER [...] --epochs E --steps S --backup DIR
        [--exit-after-epoch K]
    python multi_worker.py reference OUT.npz LEARNER [...] --epochs E --steps S
        [--resume LEARNER=K ...]

`worker` trains under `MultiWorkerMirroredStrategy` (the cluster and this
worker's place in it come from `TF_CONFIG`) with `tfmeta.distribute.BackupAndRestore`
in DIR/LEARNER; with `--exit-after-epoch K` worker 1 dies (`os._exit`) at the end
of epoch K, as a preempted machine would. It also saves the query targets its
replica receives in the first two steps. `reference` trains the same learners in
one process without a strategy; with `--resume LEARNER=K` it stops that learner
after K epochs and starts a new `fit` from epoch K on a new iterator, as a
restarted job does.
Weights go to OUT.npz.
"""

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PARSER = argparse.ArgumentParser()
PARSER.add_argument("role", choices=["worker", "reference"])
PARSER.add_argument("output")
PARSER.add_argument("learners", nargs="+")
PARSER.add_argument("--epochs", type=int, required=True)
PARSER.add_argument("--steps", type=int, required=True)
PARSER.add_argument("--backup")
PARSER.add_argument("--exit-after-epoch", type=int)
PARSER.add_argument("--resume", action="append", default=[], metavar="LEARNER=EPOCH")
PARSER.add_argument("--jit-compile", action="store_true")
ARGS = PARSER.parse_args()


import tfmeta  # noqa: E402

# The multi-worker strategy must exist before TensorFlow runs any operation.
STRATEGY = tfmeta.distribute.strategy_from_name(
    "multi_worker" if ARGS.role == "worker" else "default"
)

import keras  # noqa: E402

keras.config.disable_traceback_filtering()
import numpy as np  # noqa: E402
from learner_configs import dataset, make_learner  # noqa: E402


class ExitAfterEpoch(keras.callbacks.Callback):
    """Ends the process abruptly at the end of an epoch (after the backup of that epoch)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            os._exit(3)


def first_targets(name, steps=2):
    """The query targets this process's replicas get in the first `steps` steps."""
    distributed = iter(STRATEGY.experimental_distribute_dataset(dataset(name)))
    targets = []
    for _ in range(steps):
        _, query_y = next(distributed)
        targets.append(np.concatenate(
            [part.numpy() for part in STRATEGY.experimental_local_results(query_y)]))
    return np.stack(targets)


def main():
    arrays = {}
    task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
    for name in ARGS.learners:
        arrays[f"{name}/targets"] = first_targets(name)
        learner = make_learner(name, STRATEGY, jit_compile=ARGS.jit_compile or "auto")
        if ARGS.role == "worker":
            callbacks = [tfmeta.distribute.BackupAndRestore(os.path.join(ARGS.backup, name))]
            if ARGS.exit_after_epoch and task.get("index") == 1:
                callbacks.append(ExitAfterEpoch(ARGS.exit_after_epoch))
            history = learner.fit(dataset(name), epochs=ARGS.epochs, steps_per_epoch=ARGS.steps,
                                  callbacks=callbacks, verbose=0)
        else:
            resume_epoch = dict(item.split("=") for item in ARGS.resume).get(name)
            resume_epoch = int(resume_epoch or 0)
            if resume_epoch:
                learner.fit(dataset(name), epochs=resume_epoch, steps_per_epoch=ARGS.steps,
                            verbose=0)
            history = learner.fit(dataset(name), epochs=ARGS.epochs, steps_per_epoch=ARGS.steps,
                                  initial_epoch=resume_epoch, verbose=0)
        arrays[f"{name}/epochs_run"] = np.array(len(history.epoch))
        for index, variable in enumerate(learner.variables):
            arrays[f"{name}/weight{index}"] = variable.numpy()
    np.savez(ARGS.output, **arrays)
    print(f"{ARGS.role} {task.get('index', '-')} done", flush=True)


if __name__ == "__main__":
    main()
