import keras
import pytest


@pytest.fixture
def float64():
    """Runs a test with Keras' float type set to float64 (for exact gradient checks)."""
    previous_floatx = keras.config.floatx()
    previous_policy = keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    yield
    keras.config.set_floatx(previous_floatx)
    keras.config.set_dtype_policy(previous_policy)
