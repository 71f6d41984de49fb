"""Recomputed inner steps (gradient checkpointing) for second-order meta-gradients.

A second-order meta-gradient keeps every inner step's intermediate tensors until the
backward pass; here only each step's input weights are kept and the step runs again when
the meta-gradient reaches it. `loop` is the learner (`tfmeta.learners.inner_loop.InnerLoop`).
"""

import tensorflow as tf


def recomputed_adapt(loop, fast, non_trainable, support_x, support_y, steps, training):
    """`InnerLoop.adapt` (second order), keeping only each step's input weights for the backward.

    Every inner step is a call of one graph function (see
    `recomputed_inner_step`), so the traced graph, too, stays about the
    same size whatever `steps` is; unrolled, it grew by about as much
    memory as the recomputation saved.
    """
    forward, backward = recompute_functions(loop, non_trainable, support_x, support_y, training)
    every_step = []
    for step in range(steps):
        fast = recomputed_inner_step(loop, fast, step, forward, backward)
        every_step.append(fast)
    return every_step


def recompute_functions(loop, non_trainable, support_x, support_y, training):
    """The graph functions of one task's recomputed inner step and of its gradient.

    Both are `tf.function`s that TensorFlow does not inline: a call runs
    only once all its inputs exist, so the backward call (which takes the
    incoming gradient) recomputes the step when the meta-gradient reaches
    it, not during the forward pass, and no graph optimization merges the
    recomputation with the forward step. One trace serves every step.
    """
    count = len(loop._inner_rates or [])

    def run_step(weights, rates):
        outputs, _, _ = loop._inner_step(weights, non_trainable, support_x, support_y,
                                         None, False, training, rates=rates)
        return [outputs[i] for i in loop._adapted_indices]

    def split(inputs, constant_rates):
        weights, rates = list(inputs[: len(inputs) - count]), list(inputs[len(inputs) - count:])
        return weights, (rates if count else constant_rates)

    options = {"autograph": False, "experimental_attributes": {"_noinline": True}}

    @tf.function(**options)
    def forward(inputs, constant_rates):
        return run_step(*split(inputs, constant_rates))

    @tf.function(**options)
    def backward(inputs, upstream, variables, constant_rates):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(inputs)
            tape.watch(variables)
            outputs = run_step(*split(inputs, constant_rates))
        return tape.gradient(outputs, list(inputs) + list(variables),
                             output_gradients=list(upstream), unconnected_gradients="zero")

    return forward, backward


def recomputed_inner_step(loop, fast, step, forward, backward):
    """`InnerLoop._inner_step` (second order), its intermediates recomputed in the backward.

    The outer gradient of the step keeps only the step's inputs (weights
    and learned inner rates); the support forward pass and the inner
    gradient run again, in `backward`, when the meta-gradient reaches
    this step. (`tf.recompute_grad` cannot be used here: it stops the
    tapes that the inner gradient needs.)
    """
    rates = [loop._learning_rate(position, step)
             for position in range(len(loop._adapted_indices))]
    # Learned rates are read here and enter as inputs, so that their
    # gradients flow like the weights'.
    rate_inputs = [] if loop._inner_rates is None else [tf.convert_to_tensor(r) for r in rates]
    constant_rates = None if rate_inputs else rates

    @tf.custom_gradient
    def step_function(*inputs):
        def gradient(*upstream, variables=None):
            gradients = backward(list(inputs), list(upstream), list(variables or []),
                                 constant_rates)
            if variables is None:
                return gradients
            return gradients[: len(inputs)], gradients[len(inputs):]

        return forward(list(inputs), constant_rates), gradient

    # Identities make weights captured from outside a graph (e.g. eager tensors
    # under vectorized_map) graph tensors, as tf.custom_gradient needs there.
    inputs = [tf.identity(x) for x in list(fast) + rate_inputs]
    new = list(fast)
    for index, value in zip(loop._adapted_indices, step_function(*inputs)):
        new[index] = value
    return new
