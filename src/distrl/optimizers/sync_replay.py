"""SyncReplay: DQN, sampling and learning in turn in one process.

Mnih et al. (2015) with double Q-learning and n-step returns (`distrl.q_learning`). One step:

    the evaluator acts ε-greedily for fragment_length × num_envs steps   (ReplayWorker.sample)
    the rows go into the replay buffer
    the learner takes `updates_per_row` updates per row sampled, each on a minibatch drawn
    from the buffer (once it holds `learning_starts` rows), and gives the buffer the rows'
    TD errors as their new priorities (a uniform buffer ignores them)   (QLearner.learn_on_batch)
    the evaluator receives the new weights

The replay ratio (rows replayed per row sampled, batch_size × updates_per_row) is fixed, so
the learner neither outruns the data nor falls behind it; ε falls linearly from 1 over
`explore_steps` env steps.
"""

from __future__ import annotations

import numpy as np

from ..q_learning import QLearner
from ..replay import ReplayBuffer
from ..replay_worker import ReplayWorker
from .base import PolicyOptimizer


def linear_epsilon(steps: int, explore_steps: int, final: float) -> float:
    """ε after `steps` env steps: from 1 down to `final` over `explore_steps`, then flat."""
    return final + (1.0 - final) * max(0.0, 1.0 - steps / explore_steps)


class SyncReplay(PolicyOptimizer):
    def __init__(self, worker: ReplayWorker, learner: QLearner, buffer: ReplayBuffer, batch_size: int = 128,
                 updates_per_row: float = 0.1, learning_starts: int = 1000, explore_steps: int = 10_000,
                 final_epsilon: float = 0.05):
        super().__init__()
        self.worker, self.learner, self.buffer = worker, learner, buffer
        self.batch_size, self.updates_per_row, self.learning_starts = batch_size, updates_per_row, learning_starts
        self.explore_steps, self.final_epsilon = explore_steps, final_epsilon
        self.owed = 0.0  # updates due but not yet taken (a fractional number carries over)
        self.worker.set_weights(self.learner.get_weights())

    def step(self) -> dict[str, float]:
        self.worker.set_epsilon(linear_epsilon(self.stats.env_steps, self.explore_steps, self.final_epsilon))
        with self.timed("sample_s"):
            batch, episodes = self.worker.sample()
        self.buffer.add(batch)
        self.stats.add_experience(len(batch), episodes)
        stats: dict[str, float] = {}
        if len(self.buffer) >= self.learning_starts:
            self.owed += len(batch) * self.updates_per_row
            with self.timed("learn_s"):
                while self.owed >= 1:
                    minibatch = self.buffer.sample(self.batch_size)
                    td_errors, stats = self.learner.learn_on_batch(minibatch)
                    self.buffer.update_priorities(minibatch["slots"], minibatch["serials"], td_errors)
                    self.stats.updates += 1
                    self.owed -= 1
        with self.timed("sync_s"):
            self.worker.set_weights(self.learner.get_weights())
        return stats

    def weights(self) -> np.ndarray:
        return self.learner.get_weights()

    def get_state(self) -> dict:
        return {"worker": self.worker.get_state(), "learner": self.learner.get_state(),
                "buffer": self.buffer.get_state(), "owed": self.owed}

    def set_state(self, state: dict) -> None:
        self.worker.set_state(state["worker"])
        self.learner.set_state(state["learner"])
        self.buffer.set_state(state["buffer"])
        self.owed = state["owed"]

    def stop(self) -> None:
        self.worker.env.close()
