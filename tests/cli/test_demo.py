"""The demo end to end on a tiny budget, in-process."""

import dataclasses
import sys

from tfmeta.cli import demo


def test_demo_trains_evaluates_exports_serves_and_plots(tmp_path, capsys):
    experiment = dataclasses.replace(demo.demo_experiment(20), meta_batch_size=2,
                                     steps_per_epoch=10)
    results = demo.run_demo(tmp_path, train_steps=20, episodes=12, verbose=0,
                            experiment=experiment)
    output = capsys.readouterr().out
    assert sorted(results) == [0, 1, 10]
    assert all(result.metric == "mse" and result.episodes == 12 for result in results.values())
    for heading in ("1. Meta-training", "2. Query MSE", "3. Export and serve", "4. Plot"):
        assert heading in output
    assert "before adaptation:" in output and "after 10 steps:" in output
    assert (tmp_path / "saved_model" / "saved_model.pb").exists()
    assert (tmp_path / demo.PLOT_FILE).stat().st_size > 10_000
    assert str(tmp_path / demo.PLOT_FILE) in output
    difference = float(output.split("differs by at most ")[1].split(")")[0])
    assert difference < 1e-4


def test_without_matplotlib_the_plot_is_skipped(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    task = demo._new_sine(__import__("numpy").random.default_rng(0), 10)
    assert demo._plot(tmp_path / "p.png", task, task["grid_y"], task["grid_y"], 10) is None
    assert not (tmp_path / "p.png").exists()
