"""FLOPs of one meta-training task: an analytic count, and TensorFlow's profiler's count.

The analytic count covers the convolutions and matrix products of a Keras model (2 FLOPs
per multiply-add, biases and element-wise ops left out), as the model defines them. A
linear op `y = x * w` of forward cost `f` on `n` examples costs, in a backward pass,
`f` for the weights' gradient and `f` for the input's gradient, except where the op reads
the model's input (data needs no gradient). Second-order MAML also differentiates each
inner step's backward pass: each backward product `dw = x^T dy` and `dx = dy w^T` is
bilinear, so its derivative is two products of the same cost (with respect to `x` and `dy`,
or `dy` and `w`), and the backward pass through the inner step's forward pass costs one
backward pass more. Per example and inner step that is `2 f` for an op reading data and
`6 f` for every other (`second_order_flops`).

`profiled_flops` traces one learner's `train_step` and sums the float operations
TensorFlow's profiler registers (`tf.compat.v1.profiler`'s `flops` statistics) for the
convolution and matrix-product ops the step runs (ops no output depends on are left out,
as TensorFlow prunes them), so the analytic count can be checked against the graph
TensorFlow executes. On conv4 built with Keras' batch norm the two agree to 1e-8 (MAML,
first-order MAML, ProtoNet, Reptile at Omniglot shapes). tfmeta's conv4 folds its first
batch norm into its convolution in training (`tfmeta.layers.ConvBatchNormalization`: a
convolution extracting the 3x3 patches, a two-channel convolution and the patches'
covariance), which the profiler counts and the model's count does not: 3.3% more on
second-order MAML, 3.6% on first-order MAML and ProtoNet, 4.7% on Reptile. The model's
count is the one to compare libraries by (PyTorch's conv4 runs the same model unfolded).

Example:
    >>> ops = linear_ops(conv4((28, 28, 1), num_classes=5))
    >>> maml_task_flops(ops, support=5, query=75, inner_steps=1).total / 1e9  # doctest: +SKIP
    5.21
"""

import dataclasses
import math

# The op types whose float operations `profiled_flops` sums: convolutions and products.
PROFILED_OP_TYPES = ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter", "MatMul",
                     "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3", "Einsum")
# Ops whose bodies live in other graphs, where `profiled_flops` would not see their FLOPs.
_OPAQUE_OP_TYPES = ("While", "StatelessWhile", "If", "StatelessIf", "PartitionedCall",
                    "StatefulPartitionedCall", "Case", "StatelessCase")


@dataclasses.dataclass(frozen=True)
class LinearOp:
    """One convolution or dense layer: its forward FLOPs per example.

    Attributes:
        name: the layer's name.
        flops: forward FLOPs for one example (2 per multiply-add).
        input_gradient: whether a backward pass computes its input's gradient (False where
            the layer reads the model's input).
    """

    name: str
    flops: int
    input_gradient: bool


@dataclasses.dataclass(frozen=True)
class TaskFlops:
    """The FLOPs of one task, by part of the step (e.g. `"query_backward"`)."""

    parts: dict

    @property
    def total(self) -> int:
        return sum(self.parts.values())


def linear_ops(model) -> list[LinearOp]:
    """The convolutions and dense layers of a functional Keras `model`, in order.

    Knows `keras.layers.Conv2D`, `keras.layers.Dense` and
    `tfmeta.layers.ConvBatchNormalization` (its convolution); layers without weights, and
    batch norms, cost no products. Any other layer with a kernel raises a `ValueError`.
    """
    import keras

    from tfmeta.layers.conv_batch_normalization import ConvBatchNormalization

    data_layers = set()  # Layers without weights that read only data.
    ops = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        node = layer._inbound_nodes[0]
        sources = [t._keras_history.operation for t in node.input_tensors]
        reads_data = all(isinstance(source, keras.layers.InputLayer)
                         or id(source) in data_layers for source in sources)
        conv = layer.conv if isinstance(layer, ConvBatchNormalization) else layer
        output_shape = node.output_tensors[0].shape[1:]
        if isinstance(conv, keras.layers.Conv2D) and type(conv).__name__ == "Conv2D":
            kernel_h, kernel_w, channels_in, channels_out = conv.kernel.shape
            positions = math.prod(output_shape[:-1])
            flops = 2 * positions * channels_out * kernel_h * kernel_w * channels_in
        elif isinstance(conv, keras.layers.Dense):
            units_in, units_out = conv.kernel.shape
            flops = 2 * math.prod(output_shape[:-1]) * units_in * units_out
        elif hasattr(layer, "kernel"):
            raise ValueError(f"linear_ops: layer {layer.name!r} of type "
                             f"{type(layer).__name__} has a kernel this count does not know")
        else:
            if reads_data and not layer.weights:
                data_layers.add(id(layer))
            continue
        ops.append(LinearOp(layer.name, int(flops), input_gradient=not reads_data))
    return ops


def forward_flops(ops: list[LinearOp], examples: int) -> int:
    """One forward pass over `examples` examples."""
    return examples * sum(op.flops for op in ops)


def backward_flops(ops: list[LinearOp], examples: int) -> int:
    """One backward pass: every weight's gradient, and every input's that is not data."""
    return examples * sum(op.flops * (2 if op.input_gradient else 1) for op in ops)


def second_order_flops(ops: list[LinearOp], examples: int) -> int:
    """Differentiating one inner step (its backward and forward passes) once more.

    Per op: the derivative of its weight-gradient product with respect to the output
    gradient (and the input, unless data), of its input-gradient product (unless data)
    with respect to the output gradient and the weights, and the backward pass through its
    forward product (weights, and input unless data): 2 or 6 products of its cost.
    """
    return examples * sum(op.flops * (6 if op.input_gradient else 2) for op in ops)


def maml_task_flops(ops: list[LinearOp], support: int, query: int, inner_steps: int,
                    first_order: bool = False) -> TaskFlops:
    """One MAML task: `inner_steps` SGD steps on `support` examples, then the query loss's
    meta-gradient (through the inner steps unless `first_order`)."""
    parts = {
        "inner_forward": inner_steps * forward_flops(ops, support),
        "inner_backward": inner_steps * backward_flops(ops, support),
        "query_forward": forward_flops(ops, query),
        "query_backward": backward_flops(ops, query),
    }
    if not first_order:
        parts["second_order"] = inner_steps * second_order_flops(ops, support)
    return TaskFlops(parts)


def reptile_task_flops(ops: list[LinearOp], support: int, query: int,
                       inner_steps: int) -> TaskFlops:
    """One Reptile task: `inner_steps` SGD steps on the support set, and the adapted
    weights' query predictions (the reported loss)."""
    return TaskFlops({
        "inner_forward": inner_steps * forward_flops(ops, support),
        "inner_backward": inner_steps * backward_flops(ops, support),
        "query_forward": forward_flops(ops, query),
    })


def protonet_task_flops(ops: list[LinearOp], support: int, query: int, ways: int,
                        embedding_size: int) -> TaskFlops:
    """One ProtoNet task: embed support and query, prototypes (a one-hot product) and
    query-prototype products, forward and backward."""
    prototypes = 2 * support * ways * embedding_size
    cross = 2 * query * ways * embedding_size
    return TaskFlops({
        "embed_forward": forward_flops(ops, support + query),
        "embed_backward": backward_flops(ops, support + query),
        # Backward: the support embeddings' gradient (the one-hot is data), and both
        # factors' of the query-prototype product.
        "distances": prototypes + cross + prototypes + 2 * cross,
    })


def workload_task_flops(workload, model) -> TaskFlops:
    """The FLOPs of one task of a `benchmarks/_common.py` workload on its `model`."""
    ops = linear_ops(model)
    support = workload.ways * workload.shots
    query = workload.ways * workload.queries
    if workload.algo in ("maml", "fomaml"):
        return maml_task_flops(ops, support, query, workload.inner_steps,
                               first_order=workload.algo == "fomaml")
    if workload.algo == "reptile":
        return reptile_task_flops(ops, support, query, workload.inner_steps)
    if workload.algo == "protonet":
        return protonet_task_flops(ops, support, query, workload.ways,
                                   model.output_shape[-1])
    raise ValueError(f"workload_task_flops: unknown algorithm {workload.algo!r}")


def profiled_flops(learner, inputs, targets) -> dict:
    """TensorFlow's profiler's float operations of one `learner.train_step` on a batch.

    Traces `train_step` on `(inputs, targets)` (one meta-batch) and counts its graph's
    products with `graph_flops`. Products whose shapes the trace leaves open (the support
    set without its padded entries has a dynamic size) get the shapes of one run of the
    step (which updates the learner's weights once).

    Returns:
        A dict of FLOPs by op type, and `"total"`.
    """
    import tensorflow as tf

    learner.optimizer.build(learner.trainable_variables)
    open_shapes, roots = [], []

    def step(x, y):
        outputs = learner.train_step((x, y))
        graph = tf.compat.v1.get_default_graph()
        roots[:] = [t.op for t in tf.nest.flatten(outputs) if isinstance(t, tf.Tensor)]
        open_shapes[:] = [t for op in graph.get_operations() if op.type in PROFILED_OP_TYPES
                          for t in list(op.inputs) + list(op.outputs)
                          if not t.shape.is_fully_defined()]
        return [tf.shape(t) for t in open_shapes]

    concrete = tf.function(step).get_concrete_function(inputs, targets)
    if open_shapes:
        for tensor, shape in zip(open_shapes, concrete(inputs, targets)):
            tensor.set_shape(shape.numpy())
    return graph_flops(concrete.graph, roots)


def graph_flops(graph, roots=None) -> dict:
    """The float operations TensorFlow's profiler registers for a graph's products.

    Sums the `flops` statistics of `tf.compat.v1.profiler` over the convolution and
    product ops (`PROFILED_OP_TYPES`) on which an output or a stateful op depends (the
    others TensorFlow prunes). The profiler counts a backward convolution over the input's
    positions (divided by the strides): exact for "same" padding, as in conv4 and
    ResNet-12, more than the products for "valid". It registers no FLOPs for `Einsum` (ProtoNet's
    prototypes and distances): those are counted from the equation, 2 per multiply-add.

    Args:
        graph: a traced function's graph, its shapes fully defined.
        roots: the ops whose results count (default: the graph's outputs); the graph's
            stateful ops count too.

    Returns:
        A dict of FLOPs by op type, and `"total"`.

    Raises:
        ValueError: the graph has loops or function calls holding products (e.g. a
            meta-batch large enough for `tf.map_fn`), whose FLOPs its own ops do not show.
    """
    from tensorflow.python.framework import ops as tf_ops
    from tensorflow.python.profiler.internal import flops_registry  # noqa: F401 (registers)

    operations = graph.get_operations()
    hidden = sorted({op.type for op in operations if _hides_products(graph, op)})
    if hidden:
        raise ValueError(f"graph_flops: the graph has {hidden} ops with products inside, "
                         "whose FLOPs it cannot see; use a meta-batch small enough to be "
                         "unrolled")
    # What TensorFlow runs: the ops the outputs and the stateful ops depend on.
    live = set()
    pending = list(roots) if roots is not None else [t.op for t in graph.outputs]
    pending += [op for op in operations if op._is_stateful] + list(graph.control_outputs)
    while pending:
        op = pending.pop()
        if op not in live:
            live.add(op)
            pending += [t.op for t in op.inputs] + list(op.control_inputs)
    counts = {}
    for op in operations:
        if op in live and op.type in PROFILED_OP_TYPES:
            value = (_einsum_flops(op) if op.type == "Einsum"
                     else tf_ops.get_stats_for_node_def(graph, op.node_def, "flops").value)
            if value is None:
                raise ValueError(f"graph_flops: the profiler has no FLOPs for {op.name} "
                                 f"({op.type})")
            counts[op.type] = counts.get(op.type, 0) + int(value)
    counts["total"] = sum(counts.values())
    return counts


def _hides_products(graph, op) -> bool:
    """Whether `op` calls functions (loop bodies, branches) holding product ops."""
    names = [value.func.name for value in op.node_def.attr.values() if value.HasField("func")]
    for name in names:
        function = graph._get_function(name)
        if function is None:
            return True  # Unknown body: assume the worst.
        nodes = function.definition.node_def
        if any(node.op in PROFILED_OP_TYPES or node.op in _OPAQUE_OP_TYPES for node in nodes):
            return True
    return False


def _einsum_flops(op) -> int:
    """2 x the product of the sizes of every index of a two-operand `Einsum`."""
    equation = op.get_attr("equation").decode()
    operands = equation.split("->")[0].split(",")
    sizes = {}
    for subscripts, tensor in zip(operands, op.inputs):
        sizes.update(zip(subscripts, tensor.shape.as_list()))
    return 2 * math.prod(sizes.values())
