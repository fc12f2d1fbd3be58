"""DQN and Ape-X from the primitives: the evaluator's n-step rows against gymnasium, its
checkpoint, SyncReplay's replay ratio and resume, and on a real Ray Ape-X's exploration
spread, its weight pushes, a killed shard or evaluator, and checkpoint → resume."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import ray

from conftest import kill_actor
from distrl.optimizers.async_replay import AsyncReplay, apex_epsilons
from distrl.optimizers.sync_replay import SyncReplay, linear_epsilon
from distrl.q_learning import QLearner
from distrl.replay import PrioritizedReplayBuffer, ReplayBuffer
from distrl.replay_worker import ReplayWorker, ReplayWorkerConfig

SMALL = ReplayWorkerConfig(num_envs=2, fragment_length=16, n_step=3, seed=3)
CAPACITY = 10_000


def test_one_step_rows_are_the_environments_transitions():
    config = ReplayWorkerConfig(num_envs=2, fragment_length=60, n_step=1, gamma=0.9, seed=5)
    worker = ReplayWorker(config, epsilon=1.0)  # random actions: episodes end within the fragment
    batch, episodes = worker.sample()
    assert episodes.returns, "no episode ended: the test would not see a reset"
    # Replay the same actions in a gymnasium vector env from the same seed.
    env = gym.make_vec("CartPole-v1", num_envs=2, vectorization_mode="sync",
                       vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP})
    obs, _ = env.reset(seed=5)
    T = config.fragment_length
    for t in range(T):
        rows = np.arange(2) * T + t  # env-major: env e's step t is row e · T + t
        np.testing.assert_array_equal(batch["obs"][rows], obs)
        obs, rewards, term, trunc, infos = env.step(batch["actions"][rows])
        real_next = obs.copy()  # where an episode ended, its last state, not the new episode's first
        for e in np.flatnonzero(term | trunc):
            real_next[e] = infos["final_obs"][e]
        np.testing.assert_array_equal(batch["bootstrap_obs"][rows], real_next)
        np.testing.assert_array_equal(batch["returns"][rows], rewards)
        np.testing.assert_allclose(batch["discounts"][rows], np.where(term, 0.0, 0.9))


def test_a_restored_evaluator_samples_what_the_original_would():
    worker = ReplayWorker(SMALL, epsilon=0.5)
    worker.sample()
    state = worker.get_state()
    first, _ = worker.sample()
    other = ReplayWorker(SMALL, worker_index=1, epsilon=0.1)
    other.set_state(state)
    again, _ = other.sample()
    for name in first.columns:
        np.testing.assert_array_equal(first[name], again[name])


def learner() -> QLearner:
    return QLearner(4, 2, lr=1e-3, target_period=7, seed=SMALL.seed)


def test_the_evaluators_and_the_learner_start_from_the_same_weights():
    np.testing.assert_array_equal(ReplayWorker(SMALL, 2).get_weights(), learner().get_weights())


def test_sync_replay_keeps_its_replay_ratio_and_epsilon_schedule():
    opt = SyncReplay(ReplayWorker(SMALL), learner(), PrioritizedReplayBuffer(1000), batch_size=8,
                     updates_per_row=0.3, learning_starts=0, explore_steps=64, final_epsilon=0.1)
    for _ in range(3):
        opt.step()
    assert opt.stats.env_steps == 3 * 32
    assert opt.stats.updates == int(3 * 32 * 0.3)  # the fractional remainder carries over
    assert opt.worker.epsilon == pytest.approx(linear_epsilon(64, 64, 0.1)) == pytest.approx(0.1)
    assert opt.learner.updates == opt.stats.updates
    # Every sampled row's priority was replaced by its TD error: not all still hold the first one.
    assert len(np.unique(opt.buffer.tree.values(np.arange(len(opt.buffer))))) > 1


def test_sync_replay_resumed_from_a_checkpoint_takes_the_same_next_step(tmp_path):
    def build():
        return SyncReplay(ReplayWorker(SMALL), learner(), PrioritizedReplayBuffer(1000, seed=1), batch_size=8,
                          updates_per_row=0.25, learning_starts=16)

    opt = build()
    for _ in range(3):
        opt.step()
    opt.save(tmp_path / "dqn.ckpt")
    opt.step()
    resumed = build()
    resumed.restore(tmp_path / "dqn.ckpt")
    resumed.step()
    np.testing.assert_array_equal(opt.weights(), resumed.weights())
    assert counts(opt) == counts(resumed)


def counts(opt) -> tuple:
    return opt.stats.env_steps, opt.stats.updates, opt.stats.returns


def test_apex_exploration_spreads_from_epsilon_to_epsilon_to_the_eighth():
    assert apex_epsilons(1) == [0.4]
    spread = apex_epsilons(4)
    assert spread[0] == pytest.approx(0.4) and spread[-1] == pytest.approx(0.4 ** 8)
    assert spread == sorted(spread, reverse=True)


def apex(push_every: int = 10, num_shards: int = 1) -> AsyncReplay:
    # Longer fragments and nicer evaluators than SMALL: free-running evaluators would
    # otherwise keep the driver forwarding batches the few updates here never use.
    config = ReplayWorkerConfig(**{**SMALL.__dict__, "priorities": True, "fragment_length": 64, "niceness": 10})
    return AsyncReplay(config, 2, learner(), PrioritizedReplayBuffer, {"capacity": CAPACITY},
                       num_shards=num_shards, batch_size=16, learning_starts=64, push_every=push_every,
                       updates_per_step=4, timeout_s=30)


@pytest.mark.usefixtures("ray_session")
@pytest.mark.parametrize("push_every", [1, 1000])
def test_apex_evaluators_hold_the_weights_of_the_last_push(push_every):
    opt = apex(push_every)
    first = opt.weights()
    try:
        for _ in range(3):
            opt.step()
        state = opt.get_state()  # lets every call in flight land
        expected = opt.weights() if push_every == 1 else first
        for worker in state["workers"]:
            np.testing.assert_array_equal(worker["weights"], expected)
        assert not np.array_equal(opt.weights(), first)
    finally:
        opt.stop()


@pytest.mark.usefixtures("ray_session")
def test_apex_goes_on_after_a_shard_and_then_an_evaluator_is_killed():
    # One optimizer lives through both kills: starting its processes is most of the time.
    opt = apex(num_shards=2)
    try:
        for _ in range(2):
            opt.step()
        for victim, lost in ((opt.shards[0], ([0], [])), (opt.workers[1], ([0], [1]))):
            kill_actor(victim)
            before = opt.stats.updates
            for _ in range(6):
                opt.step()
            assert opt.stats.updates == before + 6 * 4
            assert (opt.restarted, opt.replaced) == lost
            assert np.isfinite(opt.weights()).all()
            assert opt.stats.episodes == len(opt.stats.returns)
    finally:
        opt.stop()


@pytest.mark.usefixtures("ray_session")
def test_apex_resumes_from_a_checkpoint(tmp_path):
    opt = apex()
    try:
        for _ in range(3):
            opt.step()
        opt.save(tmp_path / "apex.ckpt")
        saved_weights, saved_counts = opt.weights(), counts(opt)
        sizes = shard_sizes(opt)
    finally:
        opt.stop()
    resumed = apex()
    try:
        resumed.restore(tmp_path / "apex.ckpt")
        np.testing.assert_array_equal(resumed.weights(), saved_weights)
        assert counts(resumed) == saved_counts
        assert shard_sizes(resumed) == sizes == [min(rows, CAPACITY) for rows in resumed.stored]
        assert sum(resumed.stored) == saved_counts[0]
        resumed.step()
        assert resumed.stats.updates == saved_counts[1] + 4
    finally:
        resumed.stop()


def shard_sizes(opt: AsyncReplay) -> list[int]:
    return ray.get([shard.__ray_call__.remote(len) for shard in opt.shards])


def test_uniform_replay_takes_the_same_calls():
    buffer = ReplayBuffer(10)
    batch, _ = ReplayWorker(SMALL).sample()
    buffer.add(batch, np.ones(len(batch)))  # priorities an Ape-X evaluator sends are ignored
    assert len(buffer) == 10
