"""Task-parallel CPU threads: one thread per op, set before TensorFlow starts."""

import os
import subprocess
import sys
import textwrap

import pytest
import tensorflow as tf

from tfmeta.distribute.cpu_threads import (
    cpu_threads_for,
    usable_cores,
    use_task_parallel_threads,
)

TRAIN_A_MAML_STEP = """
    import numpy as np, keras, tfmeta, tensorflow as tf
    {setup}
    model = tfmeta.backbones.conv4((16, 16, 1), filters=4, num_classes=3)
    learner = tfmeta.MAML(model, inner_steps=1, inner_learning_rate=0.4)
    learner.compile(optimizer="adam",
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x = {{"support_x": rng.normal(size=(3, 3, 16, 16, 1)).astype("float32"),
          "support_y": np.tile(np.arange(3, dtype="int32"), (3, 1)),
          "query_x": rng.normal(size=(3, 6, 16, 16, 1)).astype("float32")}}
    y = np.tile(np.repeat(np.arange(3, dtype="int32"), 2), (3, 1))
    loss = learner.train_on_batch(x, y)
    print("result", chosen, tf.config.threading.get_intra_op_parallelism_threads(),
          np.isfinite(loss))
"""


def run_python(setup, env=None):
    code = textwrap.dedent(TRAIN_A_MAML_STEP.format(setup=setup))
    environment = {key: value for key, value in os.environ.items()
                   if key != "TF_NUM_INTRAOP_THREADS"}
    process = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=240, env={**environment, **(env or {})})
    assert process.returncode == 0, process.stderr
    return [line for line in process.stdout.splitlines() if line.startswith("result")][-1]


def test_a_fresh_process_trains_maml_with_one_thread_per_op():
    setup = "chosen = tfmeta.distribute.use_task_parallel_threads()"
    assert run_python(setup) == "result True 1 True"


def test_auto_makes_maml_task_parallel_unless_the_user_set_the_threads():
    setup = ("from tfmeta.distribute.cpu_threads import cpu_threads_for, usable_cores; "
             "chosen = cpu_threads_for('auto', 'maml', tasks=usable_cores())")
    assert run_python(setup) == "result True 1 True"
    # The variable rules at run time; TensorFlow's configuration stays unset (0).
    assert run_python(setup, env={"TF_NUM_INTRAOP_THREADS": "2"}) == "result False 0 True"


def test_auto_leaves_maml_alone_with_fewer_tasks_than_cores():
    setup = ("from tfmeta.distribute.cpu_threads import cpu_threads_for, usable_cores; "
             "chosen = cpu_threads_for('auto', 'maml', tasks=usable_cores() - 1)")
    assert run_python(setup) == "result False 0 True"


def test_auto_and_tensorflow_leave_protonet_and_a_started_runtime_alone():
    tf.constant(1.0) + 1.0  # TensorFlow has started.
    many = usable_cores()
    assert cpu_threads_for("auto", "protonet", many) is False
    assert cpu_threads_for("tensorflow", "maml", many) is False
    started_with_one = tf.config.threading.get_intra_op_parallelism_threads() == 1
    assert cpu_threads_for("auto", "maml", many) is started_with_one


def test_too_late_is_a_clear_error():
    tf.constant(1.0) + 1.0
    if tf.config.threading.get_intra_op_parallelism_threads() == 1:
        assert use_task_parallel_threads() is True  # Already so: nothing to change.
        return
    with pytest.raises(RuntimeError, match="must run before TensorFlow runs its first"):
        use_task_parallel_threads()
    with pytest.raises(ValueError, match="Invalid value for argument `cpu_threads`: "):
        cpu_threads_for("task_parallel", "maml")


def test_unknown_choice():
    with pytest.raises(ValueError, match=r"expected one of \('auto', 'task_parallel', "
                                         r"'tensorflow'\). Received: cpu_threads='fast'"):
        cpu_threads_for("fast", "maml")
