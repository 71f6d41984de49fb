import dataclasses

import keras
import pytest

from tfmeta.cli import builders
from tfmeta.cli.experiment import Experiment


def test_reptile_as_published_builds_inner_adam_and_mini_batches():
    experiment = Experiment(learner="reptile", inner_optimizer="adam", inner_adam_beta_1=0.0,
                            inner_learning_rate=0.001, inner_batch_size=25, optimizer="sgd",
                            learning_rate=1.0, lr_decay="linear", train_steps=100)
    learner = builders.learner(experiment)
    assert isinstance(learner.inner_optimizer, keras.optimizers.Adam)
    assert learner.inner_optimizer.get_config()["beta_1"] == 0.0
    assert learner.inner_learning_rate == pytest.approx(0.001)
    assert learner.inner_batch_size == 25
    assert not learner.carry_inner_optimizer_state
    carried = builders.learner(dataclasses.replace(experiment, carry_inner_optimizer_state=True))
    assert carried.carry_inner_optimizer_state and carried.carried_inner_state is not None
    schedule = builders.learning_rate(experiment)
    assert float(schedule(0)) == 1.0 and float(schedule(50)) == pytest.approx(0.5)
    assert float(schedule(100)) == 0.0


def test_mamlpp_flags_build_the_options_and_a_cosine_schedule():
    experiment = Experiment(learner="maml", inner_steps=5, multi_step_loss_steps=500,
                            first_order_steps=2500, per_step_batch_norm=True,
                            lr_decay="cosine", learning_rate=1e-3, final_learning_rate=1e-5,
                            train_steps=1000)
    learner = builders.learner(experiment)
    assert (learner.multi_step_loss_steps, learner.first_order_steps) == (500, 2500)
    assert learner.per_step_batch_norm
    schedule = builders.learning_rate(experiment)
    assert float(schedule(0)) == pytest.approx(1e-3)
    assert float(schedule(500)) == pytest.approx(1e-5 + (1e-3 - 1e-5) / 2, rel=1e-4)
    assert float(schedule(1000)) == pytest.approx(1e-5)


@pytest.mark.parametrize("settings, flag", [
    ({"learner": "reptile", "multi_step_loss_steps": 10}, "multi_step_loss_steps"),
    ({"learner": "reptile", "per_step_batch_norm": True}, "per_step_batch_norm"),
    ({"learner": "protonet", "inner_optimizer": "adam"}, "inner_optimizer"),
    ({"learner": "protonet", "inner_batch_size": 5}, "inner_batch_size"),
    ({"inner_optimizer": "rmsprop"}, "inner_optimizer"),
    ({"inner_adam_beta_1": 1.0}, "inner_adam_beta_1"),
    ({"inner_batch_size": 0}, "inner_batch_size"),
    ({"learner": "reptile", "carry_inner_optimizer_state": True},
     "carry_inner_optimizer_state"),
    ({"learner": "protonet", "inner_optimizer": "adam", "carry_inner_optimizer_state": True},
     "carry_inner_optimizer_state"),
    ({"first_order_steps": -1}, "first_order_steps"),
    ({"learner": "reptile", "head_init": "prototypes"}, "head_init"),
    ({"learner": "protonet", "head_init": "prototypes"}, "head_init"),
    ({"head_init": "zeros"}, "head_init"),
])
def test_options_a_learner_cannot_honour_are_refused(settings, flag):
    with pytest.raises(ValueError, match=f"flag `--{flag}`"):
        Experiment(**settings)


@pytest.mark.parametrize("settings", [{"learner": "proto_maml", "first_order": True},
                                      {"learner": "fomaml", "head_init": "prototypes"}])
def test_proto_maml_flags_build_maml_with_the_prototype_head(settings):
    experiment = Experiment(**settings)
    assert experiment.head_init == "prototypes" and experiment.first_order
    learner = builders.learner(experiment)
    assert type(learner).__name__ == "MAML" and learner.first_order
    assert learner.head_init == "prototypes" and learner._prototype_head.head.name == "logits"
    assert builders.learner(Experiment(learner="fomaml")).head_init is None


def test_proto_maml_evaluates_fewer_ways_than_its_head_but_not_more():
    from tfmeta.cli.evaluation import _check_ways

    experiment = Experiment(learner="proto_maml", ways=10, test_ways=5, backbone="mlp",
                            hidden_units=(8,))
    learner = builders.learner(experiment)
    _check_ways(learner, experiment, 5)
    with pytest.raises(ValueError, match="flag `--ways`.*at most 10 ways"):
        _check_ways(learner, experiment, 12)
    with pytest.raises(ValueError, match="flag `--test_ways`"):
        Experiment(learner="proto_maml", ways=10, test_ways=12)
    with pytest.raises(ValueError, match="flag `--test_ways`"):
        Experiment(learner="maml", ways=10, test_ways=5)
