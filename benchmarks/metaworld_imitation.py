"""Few-shot imitation on Meta-World ML1 and ML10: MAML behaviour cloning beside its baselines.

Every method sees the same recorded demonstrations (goal hidden: obs[36:39] zero) and uses
the same network (MLP 39-256-256-4, tanh), and every policy acts in the same lockstep
rollouts (`tfmeta.data.control.rollouts`) on the 50 test goals (ML10: 10 of each of the 5
held-out task types):

- maml: second-order MAML behaviour cloning, adapted once on the K demonstrations;
- pooled_bc: behaviour cloning on all training demonstrations pooled, no adaptation;
- finetuned_bc: pooled_bc fine-tuned on the K demonstrations (Adam steps and rate chosen
  by the query MSE on TRAINING goals, never on test goals);
- scratch_bc: the same network trained from scratch on the K demonstrations alone;
- nn_replay: 1-nearest-neighbour replay of the K demonstrations (no learning);
- visible_bc, expert: goal-visible behaviour cloning and the scripted expert (ceilings).

CAVEAT (memorisation): under the standard protocol each goal has one fixed start and the
demonstrations start exactly where the rollout starts, so scratch_bc and nn_replay succeed
by replaying them. Read every standard-protocol number beside those two rows, and beside
the "moved" starts, where the object starts where another test goal's task starts it.

ML10's new starts (`--starts=other_tasks`): each held-out goal is adapted on one
demonstration of each of K OTHER tasks of its type (other object starts and goals), and
MAML is meta-trained on episodes of one task type across its goals to match; fine-tuned
and from-scratch BC choose their steps on training types under the same protocol.

MOVED-START TRAINING (`--query_starts=moved`): 4 more demonstrations per TRAINING goal are
recorded, each with the object where another training goal starts it, and MAML's query
demonstrations come from them while its support ones come from the goal's own start (the
moved-start protocol's "adapt on demonstrations from one start, act from another"). Every
baseline sees the same training demonstrations: pooled BC trains on all of them, and
fine-tuned BC / BC from scratch choose their steps by the MSE on those moved-start
demonstrations of training goals. `--eval_inner_steps=auto` chooses MAML's inner steps at
test the same way (training goals only, never test goals).

Usage:
  nice -n 10 python benchmarks/metaworld_imitation.py --task=push-v3 --shots=1,5 --starts=own,moved
  nice -n 10 python benchmarks/metaworld_imitation.py --benchmark=ML10 --task=all \
      --shots=5,10 --starts=other_tasks --train_goals=20
  nice -n 10 python benchmarks/metaworld_imitation.py --task=push-v3 --shots=5 \
      --query_starts=moved --queries=4 --maml_steps=1000 --eval_inner_steps=auto

Prints one table per task (success with 95% Wilson intervals, wall and CPU seconds) and
writes benchmarks/metaworld_results/<task>.json (ML10: ML10_<task>.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfmeta  # noqa: E402
from tfmeta.data.control import evaluation, rollouts, simulator  # noqa: E402
from tfmeta.data.control.demonstrations import load_demonstrations  # noqa: E402

HIDDEN = (256, 256)
METHODS = ("expert", "visible_bc", "pooled_bc", "maml", "nn_replay", "finetuned_bc",
           "scratch_bc")
RESULTS = Path(__file__).resolve().parent / "metaworld_results"


class Clock:
    """Wall and CPU seconds of a block (the machine is shared: CPU time is the fairer)."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def policy_network(seed: int, hidden=HIDDEN) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return tfmeta.backbones.mlp((39,), tuple(hidden), 4, output_activation="tanh",
                                name="policy")


def pooled(demos, goal_visible=False):
    x = demos.observations.copy()
    if goal_visible:
        x[..., 36:39] = demos.goal_position[:, None, :]
    return x.reshape([-1, 39]), demos.actions.reshape([-1, 4])


def train_pooled_bc(demos, *, goal_visible=False, epochs=10, seed=0,
                    moved_demos=None) -> keras.Model:
    x, y = pooled(demos, goal_visible)
    if moved_demos is not None:  # The same training demonstrations as moved-start MAML.
        moved_x, moved_y = pooled(moved_demos, goal_visible)
        x, y = np.concatenate([x, moved_x]), np.concatenate([y, moved_y])
    model = policy_network(seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    model.fit(x, y, batch_size=256, epochs=epochs, shuffle=True, verbose=0)
    return model


# === Per-goal networks trained side by side (fine-tuned and from-scratch BC) ===

def stacked_weights(model: keras.Model, goals: int) -> list[tf.Variable]:
    return [tf.Variable(np.repeat(w[None], goals, axis=0)) for w in model.get_weights()]


def fresh_weights(goals: int, seed: int) -> list[tf.Variable]:
    per_goal = [policy_network(seed + g).get_weights() for g in range(goals)]
    return [tf.Variable(np.stack(ws)) for ws in zip(*per_goal)]


def batched_forward(weights, x):
    """The policy MLP of each goal on its own inputs: x [G, N, 39] -> [G, N, 4]."""
    h = x
    layers = len(weights) // 2
    for index in range(layers):
        kernel, bias = weights[2 * index], weights[2 * index + 1]
        h = tf.einsum("gni,gio->gno", h, kernel) + bias[:, None, :]
        h = tf.nn.relu(h) if index < layers - 1 else tf.tanh(h)
    return h


def fit_per_goal(weights, support_x, support_y, steps: int, learning_rate: float):
    """`steps` full-batch Adam steps of each goal's network on its own support set."""
    if steps == 0:
        return weights
    optimizer = keras.optimizers.Adam(learning_rate)
    support_x = tf.constant(support_x)
    support_y = tf.constant(support_y)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            per_goal = tf.reduce_mean((batched_forward(weights, support_x) - support_y) ** 2,
                                      axis=[1, 2])
            loss = tf.reduce_sum(per_goal)  # Each goal's gradient is its own loss's.
        optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))

    for _ in range(steps):
        step()
    return weights


def per_goal_policy(weights):
    act = tf.function(lambda observations: batched_forward(weights, observations[:, None])[:, 0])

    def policy(observations):
        return act(tf.constant(observations, tf.float32)).numpy()

    return policy


def training_episodes(train_demos, shots, goals=10, starts="own", moved_demos=None):
    """Support and query sets of TRAINING goals, for choices made on training goals only.

    The support sets follow the evaluation's `starts` (`evaluation.support_rows`: "other_tasks"
    adapts on other goals of the type); the query is a demonstration of the goal not in its
    support, or with `moved_demos` the goal's first moved-start one (the moved-start
    protocol's "act from another start"). The goals are taken round-robin over the types.
    """
    support_x, support_y, query_x, query_y = [], [], [], []
    names = [str(name).split("/")[0] for name in train_demos.goal_names]
    by_type = sorted(range(len(names)), key=lambda goal: (names[:goal + 1].count(names[goal]),
                                                          goal))
    usable = []
    for goal in by_type:
        rows = evaluation.support_rows(train_demos, goal, shots, starts)
        if moved_demos is None:
            source, queries = train_demos, [row for row in train_demos.of_goal(goal)
                                            if row not in rows]
        else:
            source, queries = moved_demos, moved_demos.of_goal(goal).tolist()
        if rows.size == shots and queries:
            usable.append((rows, source, queries[0]))
    for rows, source, query in usable[:goals]:
        support_x.append(train_demos.observations[rows].reshape([-1, 39]))
        support_y.append(train_demos.actions[rows].reshape([-1, 4]))
        query_x.append(source.observations[query])
        query_y.append(source.actions[query])
    return (np.stack(support_x), np.stack(support_y), np.stack(query_x),
            np.stack(query_y))


def choose_fine_tuning(make_weights, train_demos, shots, grid, goals=10, starts="own",
                       moved_demos=None):
    """The (steps, rate) of `grid` with the lowest query MSE on TRAINING goals."""
    support_x, support_y, query_x, query_y = training_episodes(train_demos, shots, goals,
                                                               starts, moved_demos)
    goals = len(support_x)
    scores = {}
    for steps, rate in grid:
        weights = fit_per_goal(make_weights(goals), support_x, support_y, steps, rate)
        scores[(steps, rate)] = float(tf.reduce_mean(
            (batched_forward(weights, tf.constant(query_x)) - query_y) ** 2))
    return min(scores, key=scores.get), scores


# === MAML behaviour cloning ===

def train_maml(task, shots, *, steps, inner_steps, inner_rate, demonstrations, horizon, seed,
               train_goals=None, first_order=False, benchmark="ML1", starts="own",
               query_starts="own", moved_demonstrations=4, hidden=HIDDEN, queries=1):
    learner = tfmeta.MAML(policy_network(seed, hidden), inner_steps=inner_steps,
                          inner_learning_rate=inner_rate, first_order=first_order)
    learner.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    dataset = tfmeta.data.metaworld(task, "train", shots=shots, queries=queries,
                                    meta_batch_size=10, benchmark=benchmark, horizon=horizon,
                                    demonstrations=demonstrations, seed=seed,
                                    goals_per_type=train_goals,
                                    starts="other_tasks" if starts == "other_tasks" else "own",
                                    query_starts=query_starts,
                                    moved_demonstrations=moved_demonstrations, verbose=False)
    learner.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
    return learner


def choose_eval_inner_steps(learner, train_demos, shots, grid, moved_demos=None, goals=10,
                            starts="own"):
    """MAML's inner steps at test: the lowest query MSE on TRAINING goals (never test)."""
    support_x, support_y, query_x, query_y = training_episodes(train_demos, shots, goals,
                                                               starts, moved_demos)
    scores = {}
    for steps in grid:
        learner.eval_inner_steps = steps
        task_state = learner.adapt_step(tf.constant(support_x), tf.constant(support_y))
        predicted = learner.predict_adapted_step(task_state, tf.constant(query_x))
        scores[steps] = float(tf.reduce_mean((predicted - query_y) ** 2))
    learner.eval_inner_steps = min(scores, key=scores.get)
    return learner.eval_inner_steps, scores


def nn_replay(support_x, support_y):
    def policy(observations):
        distances = ((support_x - observations[:, None]) ** 2).sum(-1)
        return support_y[np.arange(len(observations)), distances.argmin(1)]

    return policy


def run_task(args, task, save):
    rows = []
    settings = {"task": task, "benchmark": args.benchmark, "rollouts": args.rollouts,
                "horizon": args.horizon, "demonstrations": args.demonstrations,
                "verbose": False}
    # MAML's episodes and the baselines' choice of steps follow the evaluation's protocol.
    train_starts = "other_tasks" if "other_tasks" in args.starts else "own"
    with Clock() as clock:
        train_demos = load_demonstrations(task, "train", benchmark=args.benchmark,
                                          horizon=args.horizon,
                                          demonstrations=args.demonstrations,
                                          goals_per_type=args.train_goals, verbose=True)
        moved_demos = None
        if args.query_starts == "moved":
            moved_demos = load_demonstrations(task, "train", benchmark=args.benchmark,
                                              horizon=args.horizon,
                                              demonstrations=args.moved_demonstrations,
                                              goals_per_type=args.train_goals,
                                              starts="moved", verbose=True)
    moved_count = 0 if moved_demos is None else moved_demos.observations.shape[0]
    print(f"[{task}] demonstrations: {train_demos.observations.shape[0]} training from own "
          f"starts, {moved_count} from moved starts, failures "
          f"{int(train_demos.failures.sum())}/{int(train_demos.attempts.sum())} "
          f"({clock.wall:.0f} s wall, {clock.cpu:.0f} s CPU)", flush=True)

    def evaluate(method, shots, make_policy, train_clock, goal_visible=False, extra=None):
        if method not in args.methods:
            return
        for starts in args.starts:
            with Clock() as act:
                result, _ = evaluation.evaluate_rollouts(
                    make_policy, shots=shots, starts=starts, goal_visible=goal_visible,
                    **settings)
            row = {"method": method, "shots": shots, "starts": starts, **result.to_dict(),
                   "train_wall_s": train_clock.wall if train_clock else 0.0,
                   "train_cpu_s": train_clock.cpu if train_clock else 0.0,
                   "rollout_wall_s": act.wall, "rollout_cpu_s": act.cpu, **(extra or {})}
            rows.append(row)
            save(rows)  # After every row: a run cut short keeps what it measured.
            low, high = result.interval
            per_type = " ".join(f"{name.split('-v3')[0]} {value['mean']:.2f}"
                                for name, value in result.per_task.items())
            print(f"[{task}] {method:13s} K={shots} {starts:5s} success {result.mean:.2f} "
                  f"[{low:.2f}, {high:.2f}]  train {row['train_wall_s']:.0f} s wall / "
                  f"{row['train_cpu_s']:.0f} s CPU, rollouts {act.wall:.0f} s wall"
                  + (f"  ({per_type})" if len(result.per_task) > 1 else ""), flush=True)

    wanted = set(args.methods)
    if "visible_bc" in wanted:
        with Clock() as visible_clock:
            visible = train_pooled_bc(train_demos, goal_visible=True, epochs=args.bc_epochs,
                                      moved_demos=moved_demos)
    if wanted & {"pooled_bc", "finetuned_bc"}:
        with Clock() as bc_clock:
            bc = train_pooled_bc(train_demos, epochs=args.bc_epochs, moved_demos=moved_demos)
    maml, maml_clock, maml_extra = {}, {}, {}
    for shots in args.shots if "maml" in wanted else ():
        with Clock() as maml_clock[shots]:
            maml[shots] = train_maml(
                task, shots, steps=args.maml_steps, inner_steps=args.inner_steps,
                inner_rate=args.inner_rate, demonstrations=args.demonstrations,
                horizon=args.horizon, seed=0, train_goals=args.train_goals,
                benchmark=args.benchmark, starts=train_starts,
                query_starts=args.query_starts, moved_demonstrations=args.moved_demonstrations,
                hidden=args.hidden, queries=args.queries)
        maml_extra[shots] = {"meta_iterations": args.maml_steps, "inner_steps": args.inner_steps,
                             "inner_rate": args.inner_rate, "query_starts": args.query_starts,
                             "queries": args.queries, "hidden": list(args.hidden)}
        if args.eval_inner_steps == "auto":
            with Clock() as choice_clock:
                chosen, scores = choose_eval_inner_steps(
                    maml[shots], train_demos, shots, (1, 2, 3, 5, 8), moved_demos,
                    starts=train_starts)
            maml_extra[shots].update(eval_inner_steps=chosen, eval_inner_steps_scores={
                str(steps): score for steps, score in scores.items()},
                eval_inner_steps_choice_cpu_s=choice_clock.cpu)
        elif args.eval_inner_steps:
            maml[shots].eval_inner_steps = int(args.eval_inner_steps)
            maml_extra[shots]["eval_inner_steps"] = int(args.eval_inner_steps)
        print(f"[{task}] MAML K={shots}: {args.maml_steps} meta-iterations in "
              f"{maml_clock[shots].wall:.0f} s wall, {maml_clock[shots].cpu:.0f} s CPU; "
              f"{maml_extra[shots]}", flush=True)
    types, per_type = evaluation.test_goals(task, args.benchmark, args.rollouts)
    goals = simulator.goals(args.benchmark, types, "test", 0, per_type)
    # The rollout's goals: round-robin over the task types, the first `rollouts`.
    goals = sorted(goals, key=lambda goal: (goal.index, types.index(goal.env_name)))
    goals = goals[:args.rollouts]

    def expert(support_x, support_y):
        del support_x, support_y
        return rollouts.expert_policy(goals)

    evaluate("expert", 1, expert, None, goal_visible=True)
    if "visible_bc" in wanted:
        evaluate("visible_bc", 1, lambda sx, sy: lambda o: visible(o, training=False).numpy(),
                 visible_clock, goal_visible=True)
    if "pooled_bc" in wanted:
        evaluate("pooled_bc", 1, lambda sx, sy: lambda o: bc(o, training=False).numpy(),
                 bc_clock)
    for shots in args.shots:
        if "maml" in wanted:
            evaluate("maml", shots, lambda sx, sy, learner=maml[shots]:
                     evaluation.learner_policy(learner, sx, sy), maml_clock[shots],
                     extra=maml_extra[shots])
        evaluate("nn_replay", shots, nn_replay, None)
        if "finetuned_bc" in wanted:
            with Clock() as clock:
                tuned, scores = choose_fine_tuning(
                    lambda g: stacked_weights(bc, g), train_demos, shots,
                    [(s, r) for s in (10, 50, 200) for r in (1e-4, 1e-3)],
                    starts=train_starts, moved_demos=moved_demos)
            evaluate("finetuned_bc", shots, lambda sx, sy, tuned=tuned: per_goal_policy(
                fit_per_goal(stacked_weights(bc, len(sx)), sx, sy, *tuned)), clock,
                extra={"chosen_steps_rate": list(tuned)})
        if "scratch_bc" in wanted:
            with Clock() as clock:
                scratch, _ = choose_fine_tuning(
                    lambda g: fresh_weights(g, 100), train_demos, shots,
                    [(s, 1e-3) for s in (100, 300, 1000)], starts=train_starts,
                    moved_demos=moved_demos)
            evaluate("scratch_bc", shots, lambda sx, sy, scratch=scratch: per_goal_policy(
                fit_per_goal(fresh_weights(len(sx), 100), sx, sy, *scratch)), clock,
                extra={"chosen_steps_rate": list(scratch)})
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="push-v3",
                        help="comma-separated ML1 tasks, or all (ML10, ML45)")
    parser.add_argument("--benchmark", default="ML1", choices=("ML1", "ML10", "ML45"))
    parser.add_argument("--shots", default="1,5")
    parser.add_argument("--starts", default="own,moved")
    parser.add_argument("--rollouts", type=int, default=50)
    parser.add_argument("--horizon", type=int, default=200)
    parser.add_argument("--demonstrations", type=int, default=6)
    parser.add_argument("--train_goals", type=int, default=None,
                        help="use the first this many training goals (default: all 50)")
    parser.add_argument("--bc_epochs", type=int, default=10)
    parser.add_argument("--maml_steps", type=int, default=2000)
    parser.add_argument("--inner_steps", type=int, default=1)
    parser.add_argument("--inner_rate", type=float, default=0.05)
    parser.add_argument("--query_starts", default="own", choices=("own", "moved"),
                        help="moved: MAML's query demonstrations (and the baselines' choices) "
                             "from other training goals' object starts")
    parser.add_argument("--moved_demonstrations", type=int, default=4,
                        help="with --query_starts=moved: moved-start demonstrations per goal")
    parser.add_argument("--eval_inner_steps", default="",
                        help="MAML's inner steps at test: N, or auto (chosen on training goals)")
    parser.add_argument("--queries", type=int, default=1,
                        help="query demonstrations per meta-training episode")
    parser.add_argument("--hidden", default="256,256", help="the policy MLP's hidden units")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help="comma-separated subset of " + ",".join(METHODS))
    parser.add_argument("--output", default="", help="JSON name (default: <task>.json)")
    args = parser.parse_args()
    args.shots = [int(s) for s in args.shots.split(",")]
    args.starts = args.starts.split(",")
    args.hidden = [int(units) for units in args.hidden.split(",")]
    args.methods = args.methods.split(",")
    unknown = sorted(set(args.methods) - set(METHODS))
    if unknown:
        parser.error(f"--methods: unknown {unknown}; expected a subset of {', '.join(METHODS)}")
    RESULTS.mkdir(exist_ok=True)
    for task in args.task.split(","):
        prefix = "" if args.benchmark == "ML1" else f"{args.benchmark}_"
        path = RESULTS / (args.output.replace("{task}", task) if args.output
                          else f"{prefix}{task}.json")

        def save(rows, task=task, path=path):
            record = {"task": task, "benchmark": args.benchmark,
                      "machine": platform.processor() or platform.machine(),
                      "cores": os.cpu_count(), "settings": vars(args),
                      "caveat": "standard-protocol numbers measure memorisation: read them "
                                "beside scratch_bc, nn_replay and the moved starts",
                      "rows": rows}
            path.write_text(json.dumps(record, indent=2) + "\n")

        run_task(args, task, save)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
