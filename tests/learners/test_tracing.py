"""How often the train step is traced: once, whatever the learner (time to the first step)."""

import keras
import pytest
from episode_fixtures import classification_episodes

import tfmeta


def _learner(kind):
    keras.utils.set_random_seed(0)
    if kind == "protonet":
        return tfmeta.ProtoNet(tfmeta.backbones.conv4((16, 16, 1), filters=4))
    model = tfmeta.backbones.conv4((16, 16, 1), filters=4, num_classes=3)
    if kind == "reptile":
        return tfmeta.Reptile(model, inner_steps=2, inner_learning_rate=0.1)
    return tfmeta.MAML(model, inner_steps=2, inner_learning_rate=0.1)


@pytest.mark.parametrize("kind, how", [("maml", "fit"), ("reptile", "fit"),
                                       ("protonet", "fit"), ("maml", "train_on_batch")])
def test_train_step_is_traced_once(kind, how, monkeypatch):
    # Keras (without a strategy) creates the optimizer's slots inside the first trace of the
    # train step, and tf.function then traces the whole step a second time; the learners
    # create them first, so the meta-gradient graph is built once.
    learner = _learner(kind)
    learner.compile(optimizer=keras.optimizers.Adam(1e-3),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    traces = []
    step = type(learner).train_step
    monkeypatch.setattr(type(learner), "train_step",
                        lambda self, data: traces.append(1) or step(self, data))
    inputs, query_y = classification_episodes(tasks=2, ways=3, shape=(16, 16, 1))
    for _ in range(2):
        if how == "fit":
            learner.fit(inputs, query_y, batch_size=2, epochs=1, verbose=0)
        else:
            learner.train_on_batch(inputs, query_y)
    assert len(traces) == 1
    assert learner.optimizer.iterations.numpy() == 2
