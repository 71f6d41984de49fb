"""A multilayer perceptron backbone for regression and small tasks."""

from collections.abc import Sequence

import keras

from tfmeta.data.arguments import check_int_in_range, invalid_value, is_integer


def _shape(name, value) -> tuple[int, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence) or not value or any(
        not is_integer(d) or d < 1 for d in value
    ):
        raise invalid_value(name, "a non-empty sequence of positive integers", value)
    return tuple(int(d) for d in value)


def mlp(
    input_shape: Sequence[int] = (1,),
    hidden_units: Sequence[int] = (40, 40),
    output_units: int = 1,
    activation: str = "relu",
    name: str = "mlp",
    output_activation: str | None = None,
) -> keras.Model:
    """Builds a fully connected network, e.g. the MAML paper's 1-40-40-1 regressor.

    Args:
        input_shape: shape of one example (flattened before the first layer).
        hidden_units: width of each hidden layer.
        output_units: width of the output layer.
        activation: activation of the hidden layers, any Keras activation name.
        name: name of the model.
        output_activation: activation of the output layer: None (linear), or e.g.
            "tanh" for a policy whose actions lie in [-1, 1].

    Returns:
        A built functional `keras.Model`.

    Example:
    >>> regressor = mlp(input_shape=(1,), hidden_units=(40, 40), output_units=1)
    >>> regressor.output_shape
    (None, 1)
    >>> policy = mlp(input_shape=(39,), hidden_units=(256, 256), output_units=4,
    ...              output_activation="tanh")
    >>> float(abs(policy(keras.ops.full([1, 39], 1e3))).numpy().max()) <= 1.0
    True

    """
    if isinstance(hidden_units, str) or not isinstance(hidden_units, Sequence) or any(
        not is_integer(u) or u < 1 for u in hidden_units
    ):
        raise invalid_value("hidden_units", "a sequence of positive integers", hidden_units)
    hidden_units = tuple(int(u) for u in hidden_units)
    input_shape = _shape("input_shape", input_shape)
    output_units = check_int_in_range("output_units", output_units)
    inputs = keras.Input(shape=tuple(input_shape), name="features")
    x = keras.layers.Flatten(name="flatten")(inputs) if len(input_shape) > 1 else inputs
    for index, units in enumerate(hidden_units):
        x = keras.layers.Dense(units, activation=activation, name=f"hidden{index}")(x)
    outputs = keras.layers.Dense(output_units, activation=output_activation, name="output")(x)
    return keras.Model(inputs, outputs, name=name)
