"""CPU threads for gradient-based learners: tasks in parallel, each op on one thread.

By default TensorFlow splits every op across all cores (its intra-op pool) and also runs
independent ops at once (its inter-op pool). The tasks of a MAML, first-order MAML or
Reptile meta-batch are independent chains of small ops (a 5-image support set, a 75-image
query set), so TensorFlow already runs several tasks at once; splitting each of their ops
as well costs more in hand-offs than it gains. With one thread per op the tasks alone keep
the cores busy. Measured on 2 cores (Intel Xeon, conv4, 5-way 1-shot Omniglot shapes,
benchmarks/RESULTS.md): second-order MAML 22.5 -> 28.0-30.6 tasks/s at meta-batch 8 and
23.2 -> 30.0 at 32, first-order MAML 31.7 -> 34.6-36.2; `tfmeta-train` on Omniglot (MAML
5w1s, meta-batch 32) 487 -> 318 ms a step. ProtoNet, which embeds the whole meta-batch as
one chain of large ops, needs the split: 24.1 -> 18.0 tasks/s with one thread per op.

TensorFlow fixes its thread pools when it runs its first operation, so this is chosen
once per process, before any model is built.
"""

import os

import tensorflow as tf

# Learners whose meta-batch runs as independent per-task chains (the CLI's names).
TASK_PARALLEL_LEARNERS = ("maml", "fomaml", "proto_maml", "reptile")
# The command line's --cpu_threads.
CPU_THREAD_CHOICES = ("auto", "task_parallel", "tensorflow")


def use_task_parallel_threads() -> bool:
    """Runs each TensorFlow op on one CPU thread, so that a meta-batch's tasks share the cores.

    Call it before TensorFlow runs anything (right after the imports): it sets the intra-op
    pool to one thread and leaves the inter-op pool (one thread per core) to run the tasks
    of a meta-batch in parallel. It does nothing where a GPU is visible (the tasks run
    there). Use it for MAML, first-order MAML and Reptile on CPU; not for ProtoNet or the
    baselines, whose batches are large single ops that need every core.

    Returns:
        True if TensorFlow now runs with one thread per op, False where a GPU is visible.

    Raises:
        RuntimeError: TensorFlow has already started with other thread pools.

    Example:
    >>> import tfmeta
    >>> tfmeta.distribute.use_task_parallel_threads()  # doctest: +SKIP
    True
    """
    if tf.config.list_physical_devices("GPU"):
        return False
    if tf.config.threading.get_intra_op_parallelism_threads() == 1:
        return True
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
    except RuntimeError as error:
        raise RuntimeError(
            "use_task_parallel_threads() must run before TensorFlow runs its first operation "
            "(it fixes its thread pools then): call it right after the imports, before any "
            "model or dataset is built. Received: a TensorFlow runtime already started with "
            f"{tf.config.threading.get_intra_op_parallelism_threads() or 'default'} intra-op "
            "threads"
        ) from error
    return True


def cpu_threads_for(choice: str, learner: str | None, tasks: int = 0) -> bool:
    """Applies the command line's `--cpu_threads` choice for `learner`; True if task-parallel.

    `"auto"` makes MAML, first-order MAML and Reptile task-parallel on a machine without a
    GPU when their meta-batch has at least as many `tasks` as the process has cores (fewer
    tasks than cores would leave cores idle with one thread per op), unless
    `TF_NUM_INTRAOP_THREADS` is set (the user's choice) or TensorFlow has already started
    (e.g. a command run inside a test): then it leaves the threads alone.
    `"task_parallel"` insists (a `ValueError` if TensorFlow has already started with other
    pools), and `"tensorflow"` keeps TensorFlow's defaults.
    """
    if choice not in CPU_THREAD_CHOICES:
        raise ValueError(
            f"Invalid value for argument `cpu_threads`: expected one of {CPU_THREAD_CHOICES}. "
            f"Received: cpu_threads={choice!r}"
        )
    if choice == "tensorflow":
        return False
    if choice == "task_parallel":
        try:
            return use_task_parallel_threads()
        except RuntimeError as error:
            raise ValueError(f"Invalid value for argument `cpu_threads`: {error}") from error
    if (learner not in TASK_PARALLEL_LEARNERS or tasks < usable_cores()
            or "TF_NUM_INTRAOP_THREADS" in os.environ):
        return False
    try:
        return use_task_parallel_threads()
    except RuntimeError:
        return False


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity, e.g. a container's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # Not on Linux.
        return os.cpu_count() or 1
