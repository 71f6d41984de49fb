"""Independent NumPy references for the gradient-based learners' tests.

A two-layer tanh MLP with mean squared error, its gradient written out by
hand, and the MAML meta-loss built from it: nothing here uses TensorFlow, so
finite differences of `maml_meta_loss` are an independent derivation of the
meta-gradient.
"""

import numpy as np


def mlp_forward(params, x):
    w1, b1, w2, b2 = params
    hidden = np.tanh(x @ w1 + b1)
    return hidden @ w2 + b2, hidden


def mse(params, x, y):
    out, _ = mlp_forward(params, x)
    return np.mean((out - y) ** 2)


def mse_gradient(params, x, y):
    """Hand-derived gradient of `mse` with respect to [w1, b1, w2, b2]."""
    w1, b1, w2, b2 = params
    out, hidden = mlp_forward(params, x)
    d_out = 2.0 * (out - y) / out.size
    d_w2 = hidden.T @ d_out
    d_b2 = d_out.sum(axis=0)
    d_hidden = d_out @ w2.T
    d_pre = d_hidden * (1.0 - hidden**2)
    d_w1 = x.T @ d_pre
    d_b1 = d_pre.sum(axis=0)
    return [d_w1, d_b1, d_w2, d_b2]


def adapt(params, x, y, steps, rates, adapted=None):
    """SGD on the support loss; `rates[i][step]` is the step size of weight i at `step`."""
    adapted = range(len(params)) if adapted is None else adapted
    fast = [p.copy() for p in params]
    for step in range(steps):
        grads = mse_gradient(fast, x, y)
        for i in adapted:
            fast[i] = fast[i] - rates[i][step] * grads[i]
    return fast


def maml_meta_loss(params, episodes, steps, rates, adapted=None):
    """Mean over tasks of the query loss after adaptation."""
    losses = []
    for sx, sy, qx, qy in episodes:
        fast = adapt(params, sx, sy, steps, rates, adapted)
        losses.append(mse(fast, qx, qy))
    return float(np.mean(losses))


def finite_difference(function, arrays, epsilon=1e-6):
    """Central differences of `function()` with respect to every entry of `arrays` (in place)."""
    gradients = []
    for array in arrays:
        gradient = np.zeros_like(array)
        flat, flat_gradient = array.reshape(-1), gradient.reshape(-1)
        for index in range(flat.size):
            saved = flat[index]
            flat[index] = saved + epsilon
            plus = function()
            flat[index] = saved - epsilon
            minus = function()
            flat[index] = saved
            flat_gradient[index] = (plus - minus) / (2 * epsilon)
        gradients.append(gradient)
    return gradients


# --- An MLP with batch normalisation: Dense -> batch norm -> tanh -> Dense ---


def bn_mlp_forward(params, x, epsilon):
    """Forward pass with batch statistics; returns the output and what the gradient needs."""
    w1, b1, gamma, beta, w2, b2 = params
    z = x @ w1 + b1
    mean = z.mean(axis=0)
    inv_std = 1.0 / np.sqrt(((z - mean) ** 2).mean(axis=0) + epsilon)
    z_hat = (z - mean) * inv_std
    hidden = np.tanh(gamma * z_hat + beta)
    return hidden @ w2 + b2, (z_hat, inv_std, hidden)


def bn_mse(params, x, y, epsilon):
    out, _ = bn_mlp_forward(params, x, epsilon)
    return np.mean((out - y) ** 2)


def bn_mse_gradient(params, x, y, epsilon):
    """Hand-derived gradient of `bn_mse` with respect to [w1, b1, gamma, beta, w2, b2]."""
    _, _, gamma, _, w2, _ = params
    out, (z_hat, inv_std, hidden) = bn_mlp_forward(params, x, epsilon)
    d_out = 2.0 * (out - y) / out.size
    d_w2 = hidden.T @ d_out
    d_b2 = d_out.sum(axis=0)
    d_pre = (d_out @ w2.T) * (1.0 - hidden**2)
    d_gamma = (d_pre * z_hat).sum(axis=0)
    d_beta = d_pre.sum(axis=0)
    d_z_hat = d_pre * gamma
    # The batch-norm backward pass through the batch mean and variance.
    d_z = inv_std * (d_z_hat - d_z_hat.mean(axis=0) - z_hat * (d_z_hat * z_hat).mean(axis=0))
    d_w1 = x.T @ d_z
    d_b1 = d_z.sum(axis=0)
    return [d_w1, d_b1, d_gamma, d_beta, d_w2, d_b2]


def bn_maml_meta_loss(params, episodes, steps, rate, epsilon):
    """Mean over tasks of the query loss after `steps` SGD steps on the support loss."""
    losses = []
    for sx, sy, qx, qy in episodes:
        fast = [p.copy() for p in params]
        for _ in range(steps):
            fast = [f - rate * g for f, g in zip(fast, bn_mse_gradient(fast, sx, sy, epsilon))]
        losses.append(bn_mse(fast, qx, qy, epsilon))
    return float(np.mean(losses))
