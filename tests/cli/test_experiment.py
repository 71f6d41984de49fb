import pytest

from tfmeta.cli import builders
from tfmeta.cli.experiment import Experiment
from tfmeta.cli.training import evaluation_batch_size


def test_defaults_are_valid_and_test_settings_default_to_training():
    experiment = Experiment()
    assert (experiment.eval_ways, experiment.eval_shots, experiment.eval_queries) == (5, 1, 15)
    assert not experiment.regression


def test_fomaml_implies_first_order_and_epochs_cover_the_steps():
    experiment = Experiment(learner="fomaml", train_steps=250, steps_per_epoch=100)
    assert experiment.first_order
    assert experiment.epochs == 3
    assert Experiment(train_steps=20, steps_per_epoch=100).steps_per_epoch == 20


def test_round_trips_through_json(tmp_path):
    experiment = Experiment(dataset="sinusoid", backbone="mlp", hidden_units="8,4", test_ways=3)
    experiment.save(tmp_path)
    loaded = Experiment.load(tmp_path)
    assert loaded == experiment and loaded.hidden_units == (8, 4)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"learner": "snail"}, "`--learner`"),
        ({"ways": 0}, "`--ways`"),
        ({"test_shots": -1}, "`--test_shots`"),
        ({"learning_rate": 0.0}, "`--learning_rate`"),
        ({"hidden_units": "40,x"}, "`--hidden_units`"),
        ({"dataset": "sinusoid", "learner": "protonet", "backbone": "mlp"}, "`--learner`"),
        ({"dataset": "sinusoid"}, "`--backbone`"),
        ({"learner": "protonet", "ways": 60, "test_ways": 5, "jit_compile": True}, "`--test_ways`"),
        ({"learner": "maml", "ways": 5, "test_ways": 3}, "`--test_ways`"),
        ({"inner_learning_rate": float("inf")}, "`--inner_learning_rate`"),
        ({"inner_learning_rate": float("nan")}, "`--inner_learning_rate`"),
        ({"final_learning_rate": float("inf")}, "`--final_learning_rate`"),
        ({"seed": 2**32}, "`--seed`"),
        ({"seed": -1}, "`--seed`"),
    ],
)
def test_bad_settings_name_the_flag(kwargs, fragment):
    with pytest.raises(ValueError, match="Invalid value") as info:
        Experiment(**kwargs)
    assert fragment in str(info.value) and "Received" in str(info.value)


def test_unknown_settings_in_json_are_an_error():
    with pytest.raises(ValueError, match="unknown settings"):
        Experiment.from_dict({"learner": "maml", "wayz": 5})


def test_differences():
    assert Experiment(ways=5).differences(Experiment(ways=20)) == {"ways": (5, 20)}


def test_backbones_match_the_learner():
    protonet = Experiment(learner="protonet", ways=60, image_size=28)
    assert builders.backbone(protonet).output_shape == (None, 64)
    assert builders.backbone(Experiment(ways=20)).output_shape == (None, 20)
    mlp_protonet = Experiment(learner="protonet", backbone="mlp", hidden_units=(32, 16))
    assert builders.backbone(mlp_protonet).output_shape == (None, 16)


def test_learning_rate_schedules():
    step = builders.learning_rate(Experiment(lr_decay="step", lr_decay_episodes=2000,
                                             meta_batch_size=1, learning_rate=1e-3))
    assert float(step(1999)) == pytest.approx(1e-3) and float(step(2000)) == pytest.approx(5e-4)
    linear = builders.learning_rate(Experiment(lr_decay="linear", learning_rate=1.0,
                                               train_steps=100, final_learning_rate=0.0))
    assert float(linear(50)) == pytest.approx(0.5)


def test_evaluation_batches_hold_about_a_training_step():
    protonet = Experiment(learner="protonet", ways=60, shots=5, queries=5, test_ways=5,
                          test_queries=15, meta_batch_size=1)
    assert evaluation_batch_size(protonet, 1000) == 600 // 100
    assert evaluation_batch_size(protonet, 3) == 3


def test_the_data_dir_is_recorded_absolute_and_may_change_on_resume(tmp_path, monkeypatch):
    from tfmeta.cli.experiment import RESUMABLE_CHANGES

    monkeypatch.chdir(tmp_path)
    assert Experiment(data_dir="data").data_dir == str(tmp_path / "data")
    assert Experiment(data_dir=tmp_path).data_dir == str(tmp_path)
    assert Experiment().data_dir is None and Experiment(data_dir="").data_dir is None
    assert Experiment.load(Experiment(data_dir="data").save(tmp_path).parent).data_dir == str(
        tmp_path / "data")
    assert "data_dir" in RESUMABLE_CHANGES
    with pytest.raises(ValueError, match=r"`--data_dir`.*Received: --data_dir=3"):
        Experiment(data_dir=3)
