import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmeta.distribute import (
    first_local_replica,
    in_multi_worker_mode,
    multi_worker_logs,
    num_replicas,
    per_replica_meta_batch_size,
    replica_mean,
    sync_replica_variables,
)


def test_outside_a_strategy_everything_is_one_replica():
    assert num_replicas() == 1
    assert not in_multi_worker_mode()
    values = [tf.constant([1.0, 3.0]), tf.constant([1, 2])]
    for got, want in zip(replica_mean(values), values):
        np.testing.assert_array_equal(got, want)
    assert float(replica_mean(tf.constant(2.0))) == 2.0
    logs = {"loss": tf.constant(1.5)}
    assert multi_worker_logs(logs) is logs
    batch = ({"x": tf.ones([2])}, tf.zeros([2]), None)
    assert first_local_replica(tf.distribute.get_strategy(), batch) == batch


def test_sync_does_nothing_outside_a_strategy():
    layer = keras.layers.BatchNormalization()
    layer.build((None, 3))
    layer.moving_mean.assign([1.0, 2.0, 3.0])
    sync_replica_variables(layer.non_trainable_variables)
    np.testing.assert_array_equal(layer.moving_mean.numpy(), [1.0, 2.0, 3.0])


def test_per_replica_meta_batch_size_needs_an_even_split():
    assert per_replica_meta_batch_size(8) == 8
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0"])
    assert per_replica_meta_batch_size(4, mirrored) == 4
    for bad in (0, -2, 2.0, True, None):
        with pytest.raises(ValueError, match="argument `meta_batch_size`"):
            per_replica_meta_batch_size(bad)
