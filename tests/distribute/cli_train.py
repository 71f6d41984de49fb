"""Run by test_cli_strategy.py: tfmeta-train with the CPU split into logical devices.

Usage: python cli_train.py REPLICAS [tfmeta-train flags...]
"""

import sys

import tensorflow as tf

_CPU = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _CPU, [tf.config.LogicalDeviceConfiguration()] * int(sys.argv.pop(1))
)

from tfmeta.cli import train  # noqa: E402

if __name__ == "__main__":
    sys.argv[0] = train.PROGRAM
    train.run()
