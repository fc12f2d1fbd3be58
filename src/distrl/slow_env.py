"""StepDelay: an environment made slower by a set time per step, to make a straggler.

Asynchronous sampling (`WorkerSet.async_sample`) exists for evaluators that differ in
speed; with identical evaluators it cannot beat synchronous sampling. To measure the
difference, one evaluator's environments are given a longer step than the others'. The
delay is waiting, not computing (a simulator in another process, or across a network),
so a slowed evaluator leaves its core to the others and the experiment does not also
measure how the operating system shares the cores.

A delay of d seconds per step is kept on average, not only as a lower bound: `time.sleep`
overshoots by tens of microseconds, so each step sleeps what is still owed after the
previous steps' overshoot.

Use it through `WorkerConfig(env_kwargs={"wrappers": [StepDelay]})` (gymnasium's
`make_vec` wraps every sub-environment), then set each live evaluator's delay with
`set_step_delay`.
"""

from __future__ import annotations

import time

import gymnasium as gym
import ray


class StepDelay(gym.Wrapper):
    """Adds `delay_s` seconds, on average, to every `step()` of the wrapped environment."""

    def __init__(self, env: gym.Env, delay_s: float = 0.0):
        super().__init__(env)
        self.delay_s = delay_s
        self.owed = 0.0  # seconds still to wait: positive after an undershoot, negative after an overshoot

    def step(self, action):
        self.owed += self.delay_s
        if self.owed > 0:
            start = time.perf_counter()
            time.sleep(self.owed)
            self.owed -= time.perf_counter() - start
        return self.env.step(action)


def _set_delay(worker, delay_s: float) -> None:
    worker.env.set_attr("delay_s", delay_s)  # every sub-environment's StepDelay
    worker.env.set_attr("owed", 0.0)


def set_step_delay(workers: list, delays_s: list[float]) -> None:
    """Give each remote RolloutWorker in `workers` (actor handles) its environments' delay
    per step; returns once every one has it. The workers' environments must be wrapped in
    StepDelay."""
    assert len(workers) == len(delays_s), "one delay per worker"
    ray.get([w.__ray_call__.remote(_set_delay, d) for w, d in zip(workers, delays_s)])
