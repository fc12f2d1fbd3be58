"""StepDelay: a slower environment with the same dynamics, and a straggler that async sampling does not wait for."""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np
import pytest

from distrl.policy import PolicyConfig
from distrl.rollout_worker import WorkerConfig
from distrl.slow_env import StepDelay, set_step_delay
from distrl.worker_set import WorkerSet


def rollout(env: gym.Env, steps: int) -> list[np.ndarray]:
    obs, _ = env.reset(seed=3)
    seen = [obs]
    for _ in range(steps):
        obs, _, terminated, truncated, _ = env.step(0)
        seen.append(obs)
        if terminated or truncated:
            obs, _ = env.reset()
    return seen


def test_step_delay_keeps_the_dynamics_and_pays_every_step_its_delay():
    steps, delay = 40, 0.002
    slow = StepDelay(gym.make("CartPole-v1"), delay_s=delay)
    start = time.perf_counter()
    seen = rollout(slow, steps)
    elapsed = time.perf_counter() - start
    np.testing.assert_array_equal(np.array(seen), np.array(rollout(gym.make("CartPole-v1"), steps)))
    assert elapsed >= steps * delay
    # What the sleeps overshot is carried to the next step, so at the end only the last
    # sleep's overshoot is unpaid back: the delay is kept on average, not only at least.
    assert slow.owed <= 0


@pytest.fixture
def straggling(ray_session):
    config = WorkerConfig(num_envs=1, fragment_length=10, policy=PolicyConfig(hidden=(16,)),
                          env_kwargs={"wrappers": [StepDelay]})
    ws = WorkerSet(config, num_workers=2)
    ws.sync_sample()  # both workers started and warm
    yield ws
    ws.stop()


def test_sync_waits_for_the_straggler_and_async_does_not(straggling):
    set_step_delay(straggling.remotes, [0.05, 0.0])  # worker 1: 10 steps x 50 ms per call
    start = time.perf_counter()
    straggling.sync_sample()
    assert time.perf_counter() - start >= 10 * 0.05
    first = [s.worker for s in straggling.async_sample(4)]
    assert first.count(2) >= 3, first  # the fast worker is asked again at once, not held back


def test_set_step_delay_reaches_every_sub_environment(straggling):
    import ray

    set_step_delay(straggling.remotes, [0.003, 0.001])
    delays = ray.get([w.__ray_call__.remote(lambda self: self.env.get_attr("delay_s")) for w in straggling.remotes])
    assert [list(d) for d in delays] == [[0.003], [0.001]]
    with pytest.raises(AssertionError, match="one delay per worker"):
        set_step_delay(straggling.remotes, [0.0])
