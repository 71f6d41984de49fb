"""tfmeta-train's Meta-World experiments: the policy network and the flags."""

import pytest

from tfmeta.cli import builders
from tfmeta.cli.experiment import Experiment


def test_the_policy_is_an_mlp_from_39_states_to_4_actions_in_the_unit_box():
    experiment = Experiment(dataset="metaworld", backbone="mlp", hidden_units=(256, 256),
                            output_activation="tanh")
    policy = builders.backbone(experiment)
    assert policy.input_shape == (None, 39) and policy.output_shape == (None, 4)
    assert policy.get_layer("output").get_config()["activation"] == "tanh"


def test_anil_adapts_the_output_layer_only():
    experiment = Experiment(dataset="metaworld", backbone="mlp", adapt_layers="output")
    learner = builders.learner(experiment)
    assert experiment.adapt_layers == ("output",)
    adapted = [learner.model.trainable_variables[i].path for i in learner._adapted_indices]
    assert adapted == ["output/kernel", "output/bias"]


@pytest.mark.parametrize("settings, flag", [
    ({"metaworld_benchmark": "ML2"}, "`--metaworld_benchmark`"),
    ({"metaworld_horizon": 0}, "`--metaworld_horizon`"),
    ({"metaworld_action_noise": -1.0}, "`--metaworld_action_noise`"),
    ({"output_activation": "relu"}, "`--output_activation`"),
    ({"backbone": "conv4"}, "metaworld examples are vectors"),
    ({"learner": "reptile", "adapt_layers": ("output",)}, "`--adapt_layers`"),
])
def test_bad_metaworld_settings_name_the_flag(settings, flag):
    with pytest.raises(ValueError, match=flag):
        Experiment(**{"dataset": "metaworld", "backbone": "mlp", **settings})
