"""RolloutWorker in-process: exact step counts, episode bookkeeping, determinism."""

from __future__ import annotations

import numpy as np

from distrl.policy import PolicyConfig
from distrl.rollout_worker import RolloutWorker, WorkerConfig

CONFIG = WorkerConfig(num_envs=3, fragment_length=50, policy=PolicyConfig(hidden=(16,)), seed=3)


def test_sample_returns_exactly_the_requested_steps():
    worker = RolloutWorker(CONFIG)
    batch = worker.sample()
    assert len(batch) == 150
    for name in ("obs", "actions", "rewards", "terminateds", "truncateds", "logp", "values", "next_values", "advantages", "value_targets"):
        assert len(batch[name]) == 150, name
    assert batch["obs"].shape == (150, 4)


def test_episode_stats_add_up_across_batches():
    """CartPole pays 1 per step: every episode's return equals its length, and all steps are
    accounted for by finished episodes plus the ones still running."""
    worker = RolloutWorker(CONFIG)
    total_steps, finished_steps = 0, 0
    for _ in range(6):
        batch = worker.sample()
        total_steps += len(batch)
        episodes = worker.episodes()
        assert episodes.returns == tuple(float(n) for n in episodes.lengths)
        assert int(batch["terminateds"].sum() + batch["truncateds"].sum()) == len(episodes.lengths)
        finished_steps += sum(episodes.lengths)
    assert finished_steps + int(worker.episode_length.sum()) == total_steps


def test_same_seed_same_batches_different_worker_index_different():
    a, b, c = RolloutWorker(CONFIG), RolloutWorker(CONFIG), RolloutWorker(CONFIG, worker_index=1)
    x, y, z = a.sample(), b.sample(), c.sample()
    np.testing.assert_array_equal(x["obs"], y["obs"])
    np.testing.assert_array_equal(x["actions"], y["actions"])
    assert not np.array_equal(x["obs"], z["obs"])


def test_truncation_bootstraps_from_the_final_observation():
    config = WorkerConfig(num_envs=2, fragment_length=40, env_kwargs={"max_episode_steps": 7}, policy=PolicyConfig(hidden=(8,)))
    batch = RolloutWorker(config).sample()
    done = batch["terminateds"] | batch["truncateds"]
    assert batch["truncateds"].any()
    for env in range(2):
        rows = np.arange(env * 40, env * 40 + 39)  # each env's stream is contiguous; row+1 is its next step
        running = rows[~done[rows]]
        # Mid-episode, the next state is the next row's state: the same value, exactly.
        np.testing.assert_array_equal(batch["next_values"][running], batch["values"][running + 1])
        cut = rows[batch["truncateds"][rows]]
        # At a time-limit cut the next row is a fresh episode; the bootstrap must use the final
        # observation of the old one instead.
        assert (batch["next_values"][cut] != batch["values"][cut + 1]).all()
    np.testing.assert_allclose(batch["advantages"], batch["value_targets"] - batch["values"], atol=1e-5)


def test_the_last_step_bootstraps_from_the_state_the_next_fragment_starts_in():
    worker = RolloutWorker(CONFIG)
    batch = worker.sample()
    last_rows = np.arange(1, 4) * 50 - 1
    state = worker.obs.copy()
    np.testing.assert_allclose(batch["next_values"][last_rows], worker.policy.compute_values(state), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(worker.sample()["obs"][last_rows - 49], state)
