"""A multilayer perceptron backbone for regression and small tasks."""

from collections.abc import Sequence

import keras


def mlp(
    input_shape: Sequence[int] = (1,),
    hidden_units: Sequence[int] = (40, 40),
    output_units: int = 1,
    activation: str = "relu",
    name: str = "mlp",
) -> keras.Model:
    """Builds a fully connected network, e.g. the MAML paper's 1-40-40-1 regressor.

    Args:
        input_shape: shape of one example (flattened before the first layer).
        hidden_units: width of each hidden layer.
        output_units: width of the linear output layer.
        activation: activation of the hidden layers, any Keras activation name.
        name: name of the model.

    Returns:
        A built functional `keras.Model`.

    Example:
    >>> regressor = mlp(input_shape=(1,), hidden_units=(40, 40), output_units=1)
    >>> regressor.output_shape
    (None, 1)

    """
    hidden_units = tuple(int(u) for u in hidden_units)
    if any(u < 1 for u in hidden_units):
        raise ValueError(
            "Invalid value for argument `hidden_units`: expected positive integers. "
            f"Received: hidden_units={hidden_units}"
        )
    if output_units < 1:
        raise ValueError(
            "Invalid value for argument `output_units`: expected a positive integer. "
            f"Received: output_units={output_units}"
        )
    inputs = keras.Input(shape=tuple(input_shape), name="features")
    x = keras.layers.Flatten(name="flatten")(inputs) if len(input_shape) > 1 else inputs
    for index, units in enumerate(hidden_units):
        x = keras.layers.Dense(units, activation=activation, name=f"hidden{index}")(x)
    outputs = keras.layers.Dense(output_units, name="output")(x)
    return keras.Model(inputs, outputs, name=name)
