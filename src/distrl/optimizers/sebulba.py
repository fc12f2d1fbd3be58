"""Sebulba (Hessel et al., 2021, "Podracer architectures"): actors and a learner that never wait.

Where environments must stay on the host (a simulator, Atari), Sebulba splits the cores: actor
cores step a batch of host environments and run the policy on the whole batch at once,
learner cores learn, and trajectories go straight from actor to learner while parameters
flow back. Neither side waits for the other in steady state:

    actor (its own process, free-running)            learner (the driver)
    ───────────────────────────────────────          ─────────────────────────────────
    θ_v ← the newest published parameters            B ← trajectories.get()
    B ← T steps of N host envs, batched inference    PPO epochs on B (ratios against B's μ)
    trajectories.put((v, B))   ← a queue of one:     publish θ_{v+1}
        blocks while the learner has one waiting

The queue of size one is the back-pressure: an actor is at most one batch ahead of the
learner, so the policy lag (the learner's version minus the version that sampled a batch)
is bounded, and it is measured (`lags`), not assumed. In steady state it is 2: while the
learner learns on one batch, the next waits in the queue, sampled with the parameters
the actor read one update earlier. It can reach 3, because the learner does not wait for
its publication to land, so an actor may still read the version before. PPO's ratio π/μ
is taken against the log-probabilities the actor stored, so a lagged batch still gets a
correct loss.

The learner learns on `device` (the paper's learner cores are an accelerator's): each batch
moves there once, and the published parameters come back to host memory, where the actors
read them.

`synchronous=True` is the control with the one thing Sebulba adds taken away: the actor waits
for the parameters its last batch produced before it samples again, so acting and learning
alternate (lag 0) instead of overlapping.
"""

from __future__ import annotations

import asyncio

import numpy as np
import ray
from ray.util.queue import Empty, Queue

from ..rollout_worker import RolloutWorker, WorkerConfig
from ..worker_set import WorkerSet
from .base import PolicyOptimizer, annealed


@ray.remote(num_cpus=0)
class ParameterSlot:
    """The newest parameters and their version: the learner writes, the actors read."""

    def __init__(self, weights: np.ndarray):
        self.version, self.weights, self.stopped = 0, weights, False
        self.changed = asyncio.Condition()

    async def publish(self, version: int, weights: np.ndarray) -> None:
        async with self.changed:
            self.version, self.weights = version, weights
            self.changed.notify_all()

    async def read(self, newer_than: int) -> tuple[int, np.ndarray] | None:
        """(version, θ) once the version is above `newer_than`; None after `stop`."""
        async with self.changed:
            await self.changed.wait_for(lambda: self.version > newer_than or self.stopped)
            return None if self.stopped else (self.version, self.weights)

    async def stop(self) -> None:
        async with self.changed:
            self.stopped = True
            self.changed.notify_all()


class SebulbaActor(RolloutWorker):
    """A rollout worker that samples in a loop of its own instead of on request."""

    def run(self, slot, trajectories: Queue, synchronous: bool) -> int:
        """Sample and hand over batches until the slot is stopped; return the batches sampled."""
        version, sampled = -1, 0
        while (newest := ray.get(slot.read.remote(version if synchronous else -1))) is not None:
            if newest[0] != version:
                version = newest[0]
                self.set_weights(newest[1])
            batch = self.sample()
            trajectories.put((version, batch, self.last_episodes))
            sampled += 1
        return sampled


class Sebulba(PolicyOptimizer):
    def __init__(self, config: WorkerConfig, num_actors: int = 1, loss=None, epochs: int = 4, minibatch_size: int = 512,
                 anneal_steps: int | None = None, synchronous: bool = False, seed: int = 0, device: str = "cpu",
                 **worker_set_options):
        super().__init__()
        self.workers = WorkerSet(config, num_actors, loss, worker_class=SebulbaActor, **worker_set_options)
        self.policy = self.workers.local.policy.to(device)  # the learner's; the actors hold copies
        self.epochs, self.minibatch_size, self.anneal_steps = epochs, minibatch_size, anneal_steps
        self.lr, self.rng = self.policy.config.lr, np.random.default_rng(seed)
        self.version, self.lags = 0, []  # lags[k]: how many versions behind the learner batch k was
        self.slot = ParameterSlot.remote(self.policy.get_weights())
        self.trajectories = Queue(maxsize=1)
        self.synchronous, self.running = synchronous, []  # the actors' loops, started by the first step

    def step(self) -> dict[str, float]:
        """Learn on the next batch an actor hands over, then publish the new parameters."""
        if not self.running:  # from now on an actor answers nothing else: its loop is its one task
            self.running = [w.run.remote(self.slot, self.trajectories, self.synchronous) for w in self.workers.remotes]
        with self.timed("sample_s"):
            try:
                version, batch, episodes = self.trajectories.get(timeout=self.workers.timeout_s)
            except Empty:
                ended, _ = ray.wait(self.running, num_returns=len(self.running), timeout=0)
                ray.get(ended)  # raises the error of an actor whose loop ended
                raise TimeoutError(f"no trajectory from the actors within {self.workers.timeout_s} s") from None
        self.lags.append(self.version - version)
        self.stats.add_experience(len(batch), episodes)
        self.policy.set_lr(annealed(self.lr, self.stats.env_steps, self.anneal_steps))
        with self.timed("learn_s"):
            if self.policy.device.type != "cpu":  # on the CPU the loss reads the numpy columns in place
                batch = batch.to(self.policy.device)
            for _ in range(self.epochs):
                for minibatch in batch.minibatches(self.minibatch_size, self.rng):
                    stats = self.policy.learn_on_batch(minibatch)
                    self.stats.updates += 1
        self.version += 1
        with self.timed("sync_s"):
            self.slot.publish.remote(self.version, self.policy.get_weights())  # not waited for
        return stats

    def weights(self) -> np.ndarray:
        return self.policy.get_weights()

    def get_state(self) -> dict:
        """The learner's state. The actors' environments are not saved: they run ahead of the
        learner, so there is no one moment at which both could be captured without stopping."""
        return {"local": self.workers.local.get_state(), "rng": self.rng.bit_generator.state, "version": self.version}

    def set_state(self, state: dict) -> None:
        self.workers.local.set_state(state["local"])
        self.rng.bit_generator.state, self.version = state["rng"], state["version"]
        ray.get(self.slot.publish.remote(self.version, self.policy.get_weights()))

    def stop(self) -> None:
        ray.get(self.slot.stop.remote())
        running, deadline = self.running, 100  # tenths of a second
        while running and deadline:  # an actor blocked in put() gets its place once the queue is drained, then sees the stop
            while not self.trajectories.empty():
                self.trajectories.get_nowait()
            _, running = ray.wait(running, num_returns=len(running), timeout=0.1)
            deadline -= 1
        self.trajectories.shutdown()
        ray.kill(self.slot)
        self.workers.stop()

