"""SyncAllReduce: decentralized PPO (DD-PPO, Wijmans et al., 2020), no central learner.

Every worker samples its own batch and keeps it. Then, for each minibatch of each epoch,
every worker computes its gradient, the workers average their gradients with distrl's
ring all-reduce (`CollectiveGroup`, the workers being its ranks), and each applies the same
averaged gradient to its own copy of the weights. Starting from equal weights and equal
optimizer state, the copies stay equal without weights ever being sent.

The driver only starts a step and collects statistics: it submits the whole step (gradient
tasks, ring plans, apply tasks, for every minibatch) at once and waits for the end. Each
worker runs its tasks in the order submitted, so a ring reads the gradient just computed
and an apply reads the ring's result; gradients move worker to worker, never through a
learner.
"""

from __future__ import annotations

import numpy as np
import ray

from ..collective import CollectiveGroup, Participant
from ..rollout_worker import EpisodeStats, RolloutWorker, WorkerConfig
from ..worker_set import WorkerSet
from .base import PolicyOptimizer, annealed


class AllReduceWorker(RolloutWorker, Participant):
    """A rollout worker that is also a rank of the gradient all-reduce; its buffer holds g."""

    def __init__(self, config: WorkerConfig, index: int, loss=None):
        RolloutWorker.__init__(self, config, index, loss)
        Participant.__init__(self, rank=index - 1, size=1)
        self.rng = np.random.default_rng(config.seed + 1000 * index)  # its own minibatch shuffling

    def join(self, size: int) -> None:
        self.size = size

    def start_round(self, lr: float, epochs: int, minibatch_size: int) -> tuple[int, EpisodeStats]:
        """Sample this round's batch and plan its minibatches; report rows and episodes."""
        self.policy.set_lr(lr)
        self.batch = self.sample()
        rows = len(self.batch)
        self.minibatches = [order[i : i + minibatch_size] for order in (self.rng.permutation(rows) for _ in range(epochs))
                            for i in range(0, rows, minibatch_size)]
        return rows, self.last_episodes

    def gradient(self, k: int) -> None:
        """The buffer ← g on minibatch k. Unlike a central learner, each rank clips its own g
        to the max norm and normalises advantages over its own share before averaging."""
        self.flat, self.loss_stats = self.policy.compute_gradients(self.batch.take(self.minibatches[k]))
        self.shape = self.flat.shape

    def apply(self) -> dict[str, float]:
        """Apply the buffer, which the all-reduce has made the mean of every rank's g."""
        self.policy.apply_gradients(self.flat)
        return self.loss_stats

    def get_state(self) -> dict:
        return {**super().get_state(), "rng": self.rng.bit_generator.state}

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        self.rng.bit_generator.state = state["rng"]


class SyncAllReduce(PolicyOptimizer):
    def __init__(self, config: WorkerConfig, num_workers: int, loss=None, epochs: int = 4,
                 minibatch_size: int = 128, anneal_steps: int | None = None, **worker_set_options):
        super().__init__()
        assert num_workers >= 1, "SyncAllReduce needs remote workers: they are the all-reduce's ranks"
        assert minibatch_size % num_workers == 0, "each worker takes an equal share of every minibatch"
        self.workers = WorkerSet(config, num_workers, loss, worker_class=AllReduceWorker, **worker_set_options)
        remotes = self.workers.remotes
        self.epochs, self.minibatch_size = epochs, minibatch_size // num_workers  # per worker: same global minibatch
        self.lr, self.anneal_steps = self.workers.local.policy.config.lr, anneal_steps
        ray.get([w.join.remote(num_workers) for w in remotes])
        self.workers.broadcast_weights()  # one starting point for every copy
        self.group = CollectiveGroup.of(remotes, length=len(self.workers.local.get_weights()))

    def step(self) -> dict[str, float]:
        lr = annealed(self.lr, self.stats.env_steps, self.anneal_steps)
        remotes = self.workers.remotes
        with self.timed("sample_s"):
            rounds = ray.get([w.start_round.remote(lr, self.epochs, self.minibatch_size) for w in remotes])
        for rows, episodes in rounds:
            self.stats.add_experience(rows, episodes)
        minibatches = self.epochs * -(-rounds[0][0] // self.minibatch_size)
        with self.timed("learn_s"):
            pending = []
            for k in range(minibatches):
                pending += [w.gradient.remote(k) for w in remotes]
                pending += self.group.allreduce("mean", "ring", wait=False)
                applied = [w.apply.remote() for w in remotes]
                pending += applied
            ray.get(pending)  # surfaces any failure (the chunks are a gradient's size: small here)
            stats = ray.get(applied)[0]
        self.stats.updates += minibatches
        return stats

    def weights(self) -> np.ndarray:
        return ray.get(self.workers.remotes[0].get_weights.remote())

    def get_state(self) -> dict:
        return {"workers": ray.get([w.get_state.remote() for w in self.workers.remotes])}

    def set_state(self, state: dict) -> None:
        ray.get([w.set_state.remote(s) for w, s in zip(self.workers.remotes, state["workers"], strict=True)])

    def stop(self) -> None:
        self.workers.stop()
