"""Tiny learners and episode streams shared by the distributed test scripts.

Imported by scripts that configure TensorFlow first (logical devices, the
multi-worker strategy), so importing it runs no TensorFlow operation.
"""

import keras
import numpy as np

import tfmeta

META_BATCH = 4


def bn_regressor():
    """1-8-1 regressor with batch norm (moving statistics updated by the learners)."""
    inputs = keras.Input((1,))
    x = keras.layers.Dense(8, name="hidden")(inputs)
    x = tfmeta.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Activation("tanh")(x)
    return keras.Model(inputs, keras.layers.Dense(1, name="out")(x), name="bn_regressor")


def dense_encoder():
    inputs = keras.Input((16, 16, 1))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(16, activation="tanh")(x)
    return keras.Model(inputs, keras.layers.Dense(8)(x), name="dense_encoder")


def sinusoid():
    return tfmeta.data.sinusoid(shots=5, queries=5, meta_batch_size=META_BATCH, seed=3)


def image_episodes():
    images = np.random.default_rng(0).random((12, 6, 16, 16, 1)).astype("float32")
    return tfmeta.data.episodes(images, ways=3, shots=1, queries=2, meta_batch_size=META_BATCH,
                                seed=5)


def _classification_loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


# name: (learner factory, dataset factory, loss factory, SGD learning rate, comparable).
# SGD, not Adam: Adam's update hardly changes when all gradients are scaled, so it would
# hide a wrong gradient scale under several replicas. "comparable" is False where one
# device and several replicas legitimately differ: batch norm over all tasks' examples
# (ProtoNet with conv4) uses each replica's batch statistics, as in any data-parallel model.
CONFIGS = {
    "maml": (lambda: tfmeta.MAML(bn_regressor(), inner_steps=2, inner_learning_rate=0.05),
             sinusoid, lambda: "mse", 0.1, True),
    "fomaml": (lambda: tfmeta.MAML(bn_regressor(), inner_steps=2, inner_learning_rate=0.05,
                                   first_order=True), sinusoid, lambda: "mse", 0.1, True),
    "meta_sgd": (lambda: tfmeta.MAML(bn_regressor(), inner_steps=1, inner_learning_rate=0.05,
                                     learn_inner_learning_rate="per_parameter"),
                 sinusoid, lambda: "mse", 0.1, True),
    "reptile": (lambda: tfmeta.Reptile(bn_regressor(), inner_steps=3, inner_learning_rate=0.05),
                sinusoid, lambda: "mse", 0.5, True),
    # Reptile's code: inner Adam whose moments carry across tasks (learner variables that
    # must hold the mean over every replica's tasks). A large epsilon: with a small one,
    # Adam's first steps are about lr * sign(gradient), and float32 sums in another order
    # flip the sign of near-zero gradients (fresh-state Adam differed by 3e-3 so).
    "reptile_adam": (lambda: tfmeta.Reptile(
        bn_regressor(), inner_steps=3, carry_inner_optimizer_state=True,
        inner_optimizer=keras.optimizers.Adam(0.05, beta_1=0.0, epsilon=1e-2)), sinusoid,
        lambda: "mse", 0.5, True),
    "protonet": (lambda: tfmeta.ProtoNet(dense_encoder(), ways=3), image_episodes,
                 _classification_loss, 0.1, True),
    "protonet_conv": (lambda: tfmeta.ProtoNet(tfmeta.backbones.conv4((16, 16, 1), filters=4),
                                              ways=3),
                      image_episodes, _classification_loss, 0.1, False),
    "maml_conv": (lambda: tfmeta.MAML(tfmeta.backbones.conv4((16, 16, 1), filters=4,
                                                             num_classes=3),
                                      inner_steps=1, inner_learning_rate=0.1),
                  image_episodes, _classification_loss, 0.1, True),
}


def make_learner(name, strategy, initial=None, jit_compile="auto"):
    """Builds and compiles learner `name` in `strategy.scope()`, from weights `initial`."""
    factory, _, loss, rate, _ = CONFIGS[name]
    with strategy.scope():
        keras.utils.set_random_seed(1)
        learner = factory()
        loss = loss()
        # The episodic metrics too: their dict results must survive distribution.
        metrics = ["mse"] if loss == "mse" else ["accuracy"]
        learner.compile(optimizer=keras.optimizers.SGD(rate), loss=loss, metrics=metrics,
                        jit_compile=jit_compile)
        if initial is not None:
            for variable, value in zip(learner.variables, initial):
                variable.assign(value)
    return learner


def dataset(name):
    return CONFIGS[name][1]()


def comparable(name):
    return CONFIGS[name][4]
