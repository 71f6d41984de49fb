"""ProtoNet reaches the paper recipe's accuracy on real Omniglot (slow; CI runs it).

Recipe (Snell et al., 2017; jakesnell/prototypical-networks): Vinyals split with
rotations, 28x28, conv4, training episodes 60-way 1-shot 5-query (the paper matches the
training shots to the test shots), one episode per step, Adam 1e-3 (the paper halves it
every 2,000 episodes, so not within these 1,250). Then 5-way 1-shot, 15 queries per class,
over 1,000 test episodes, with the moving batch-norm statistics (`training=False`, as
PyTorch `eval()` in the reference code). The reference PyTorch implementation reaches
97.0 +/- 0.3% after 1,253 episodes of 60-way 5-shot training on 2 CPU cores; tfmeta with
that 5-shot training measured 96.84 +/- 0.24%, with 1-shot training 97.44 +/- 0.23%
(benchmarks/RESULTS.md), and 1-shot episodes are also 40% cheaper.

benchmarks/omniglot.py runs the same recipe with a learning curve (benchmarks/RESULTS.md).
"""

import os

import keras
import pytest

import tfmeta

TRAIN_SHOTS = 1
TRAIN_EPISODES = 1250
TEST_EPISODES = 1000
EVAL_META_BATCH = 50  # 20 evaluation steps of 50 episodes each.
REQUIRED_ACCURACY = 0.970


@pytest.fixture
def data_dir():
    value = os.environ.get("TFMETA_DATA_DIR")
    if not value:
        pytest.skip("real-Omniglot test: TFMETA_DATA_DIR is not set (CI sets it to ../shared/data)")
    if not os.path.isdir(os.path.join(value, "omniglot")):
        pytest.skip(f"real-Omniglot test: no omniglot/ folder in TFMETA_DATA_DIR={value}")
    return value


@pytest.mark.slow
def test_protonet_5way_1shot_reaches_97_percent_after_1250_episodes(data_dir, tmp_path):
    cache_dir = tmp_path / "cache"
    train = tfmeta.data.omniglot("train", ways=60, shots=TRAIN_SHOTS, queries=5, meta_batch_size=1,
                                 scheme="vinyals", seed=0, data_dir=data_dir,
                                 cache_dir=cache_dir).prefetch(2)
    test = tfmeta.data.omniglot("test", ways=5, shots=1, queries=15,
                                meta_batch_size=EVAL_META_BATCH, scheme="vinyals", seed=2,
                                data_dir=data_dir, cache_dir=cache_dir)
    keras.utils.set_random_seed(0)
    learner = tfmeta.ProtoNet(tfmeta.backbones.conv4((28, 28, 1)))
    learner.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        steps_per_execution=10,
    )

    learner.fit(train, steps_per_epoch=TRAIN_EPISODES, epochs=1, verbose=0)
    logs = learner.evaluate(test, steps=TEST_EPISODES // EVAL_META_BATCH, verbose=0,
                            return_dict=True)

    accuracy, ci95 = logs["accuracy"], logs["accuracy_ci95"]
    print(f"ProtoNet Omniglot 5-way 1-shot: {100 * accuracy:.2f} +/- {100 * ci95:.2f}% "
          f"over {TEST_EPISODES} test episodes after {TRAIN_EPISODES} training episodes")
    assert 0.0 < ci95 < 0.01
    assert accuracy >= REQUIRED_ACCURACY, (
        f"5-way 1-shot test accuracy {100 * accuracy:.2f} +/- {100 * ci95:.2f}% after "
        f"{TRAIN_EPISODES} episodes is below {100 * REQUIRED_ACCURACY:.1f}%"
    )
