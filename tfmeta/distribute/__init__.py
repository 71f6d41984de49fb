"""Distributed meta-training on `tf.distribute`: several devices and several machines.

Build and compile a learner inside `strategy_from_name(...).scope()` and call
`fit` as usual: each meta-batch is split across the replicas and the
meta-gradients are all-reduced, giving one device's update on the whole
meta-batch. On one CPU, `use_task_parallel_threads()` spreads a gradient
learner's tasks over the cores instead of splitting every op across them.
"""

from tfmeta.distribute.backup_and_restore import BackupAndRestore
from tfmeta.distribute.cpu_threads import use_task_parallel_threads
from tfmeta.distribute.replicas import (
    first_local_replica,
    in_multi_worker_mode,
    multi_worker_logs,
    num_replicas,
    per_replica_meta_batch_size,
    replica_mean,
    sync_replica_variables,
)
from tfmeta.distribute.strategies import (
    STRATEGY_NAMES,
    check_jit_compile,
    check_tf_config,
    is_chief,
    strategy_from_name,
)

__all__ = [
    "STRATEGY_NAMES",
    "BackupAndRestore",
    "check_jit_compile",
    "check_tf_config",
    "first_local_replica",
    "in_multi_worker_mode",
    "is_chief",
    "multi_worker_logs",
    "num_replicas",
    "per_replica_meta_batch_size",
    "replica_mean",
    "strategy_from_name",
    "sync_replica_variables",
    "use_task_parallel_threads",
]
