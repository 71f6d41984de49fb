import json

import pytest
import tensorflow as tf

import tfmeta
from tfmeta.distribute import check_jit_compile, check_tf_config, is_chief, strategy_from_name

CLUSTER = {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}}


def test_default_is_tensorflows_default_strategy():
    strategy = strategy_from_name("default")
    assert strategy is tf.distribute.get_strategy()
    assert strategy.num_replicas_in_sync == 1
    assert is_chief(strategy)


def test_mirrored_uses_the_logical_devices():
    strategy = strategy_from_name("mirrored")
    assert isinstance(strategy, tf.distribute.MirroredStrategy)
    assert strategy.num_replicas_in_sync == len(
        tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU"))
    assert is_chief(strategy)


def test_unknown_names_and_misplaced_devices_are_rejected():
    with pytest.raises(ValueError, match="argument `name`.*Received: name='horovod'"):
        strategy_from_name("horovod")
    with pytest.raises(ValueError, match="argument `devices`"):
        strategy_from_name("multi_worker", devices=["/cpu:0"])


def test_tf_config_is_parsed_and_checked():
    assert check_tf_config({}) is None
    config = {**CLUSTER, "task": {"type": "worker", "index": 1}}
    assert check_tf_config({"TF_CONFIG": json.dumps(config)}) == config


@pytest.mark.parametrize("text", [
    "not json",
    json.dumps({"task": {"type": "worker", "index": 0}}),
    json.dumps({**CLUSTER, "task": {"type": "worker", "index": 2}}),
    json.dumps({**CLUSTER, "task": {"type": "chief", "index": 0}}),
    json.dumps({"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}),
])
def test_bad_tf_config_names_the_variable(text):
    with pytest.raises(ValueError, match="`TF_CONFIG`.*Received: TF_CONFIG="):
        check_tf_config({"TF_CONFIG": text})


class FakeResolver:
    def __init__(self, cluster, task_type, task_id):
        self._cluster, self.task_type, self.task_id = cluster, task_type, task_id

    def cluster_spec(self):
        return tf.train.ClusterSpec(self._cluster)


class FakeStrategy:
    def __init__(self, *args):
        self.cluster_resolver = FakeResolver(*args)


@pytest.mark.parametrize(("cluster", "task_type", "task_id", "chief"), [
    ({"worker": ["a:1", "b:1"]}, "worker", 0, True),
    ({"worker": ["a:1", "b:1"]}, "worker", 1, False),
    ({"chief": ["c:1"], "worker": ["a:1"]}, "worker", 0, False),
    ({"chief": ["c:1"], "worker": ["a:1"]}, "chief", 0, True),
    ({}, None, None, True),
])
def test_the_chief_is_the_chief_task_else_worker_zero(cluster, task_type, task_id, chief):
    assert is_chief(FakeStrategy(cluster, task_type, task_id)) is chief


def test_public_surface():
    assert set(tfmeta.distribute.__all__) <= set(dir(tfmeta.distribute))
    assert tfmeta.distribute.STRATEGY_NAMES == ("default", "mirrored", "multi_worker")


class FakeExtended:
    def __init__(self, devices):
        self.worker_devices = devices


class FakeMirrored:
    def __init__(self, devices):
        self.extended = FakeExtended(devices)


def test_jit_compile_is_refused_across_local_devices():
    check_jit_compile(True, strategy_from_name("default"))
    check_jit_compile(True, FakeMirrored(["/gpu:0"]))
    check_jit_compile("auto", FakeMirrored(["/gpu:0", "/gpu:1"]))
    with pytest.raises(ValueError, match="argument `jit_compile`.*2 devices of one machine"):
        check_jit_compile(True, FakeMirrored(["/gpu:0", "/gpu:1"]))
