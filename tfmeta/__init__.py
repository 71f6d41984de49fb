"""tfmeta: TensorFlow/Keras-native meta-learning."""

__version__ = "0.1.0"
