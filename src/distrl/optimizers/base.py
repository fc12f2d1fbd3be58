"""What every policy optimizer shares: its training statistics, its timers, its checkpoints.

A policy optimizer (the RLlib paper's term) is the distributed strategy of an algorithm:
where experience is collected, where gradients are computed and applied, and how weights
move. The driver calls `step()` in a loop; each optimizer keeps its statistics in the one
shape of `TrainingStats`, so runs of different strategies compare column by column.

Times are the driver's view of a step: waiting for experience (or for gradients computed on
it), learning, and moving weights or gradients. Work in other processes overlaps these.
"""

from __future__ import annotations

import os
import pickle
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..rollout_worker import EpisodeStats


@dataclass
class TrainingStats:
    env_steps: int = 0  # rows of experience the learner consumed (the sum of the batch sizes)
    episodes: int = 0  # episodes completed in that experience
    updates: int = 0  # gradient steps applied to the weights
    returns: list[float] = field(default_factory=list)  # every episode's return, batch by batch as consumed
    sample_s: float = 0.0  # driver time waiting for experience or for gradients on it
    learn_s: float = 0.0  # driver time computing or applying updates
    sync_s: float = 0.0  # driver time moving weights or gradients between processes

    def add_experience(self, rows: int, episodes: EpisodeStats) -> None:
        self.env_steps += rows
        self.episodes += len(episodes.returns)
        self.returns.extend(episodes.returns)

    def mean_return(self, window: int = 20) -> float:
        """Mean return of the last `window` episodes (NaN before the first one ends)."""
        return float(np.mean(self.returns[-window:])) if self.returns else float("nan")


class PolicyOptimizer:
    """The interface: `step()` advances training by one round of the strategy."""

    def __init__(self) -> None:
        self.stats = TrainingStats()

    def step(self) -> dict[str, float]:
        """One round; returns the last update's loss statistics."""
        raise NotImplementedError

    def weights(self) -> np.ndarray:
        """The current weights θ of the policy being trained."""
        raise NotImplementedError

    def get_state(self) -> dict:
        """What the next step depends on, besides the statistics (weights, optimizer
        moments, workers' environments, random generators)."""
        raise NotImplementedError

    def set_state(self, state: dict) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    @contextmanager
    def timed(self, phase: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            setattr(self.stats, phase, getattr(self.stats, phase) + time.perf_counter() - start)

    def save(self, path: str | Path) -> None:
        """A checkpoint, written atomically: a reader finds the previous file or this one."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            pickle.dump({"stats": asdict(self.stats), "state": self.get_state()}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def restore(self, path: str | Path) -> None:
        """Continue from a checkpoint: the next step is the one the saved run would take."""
        with open(path, "rb") as f:
            saved = pickle.load(f)
        self.stats = TrainingStats(**saved["stats"])
        self.set_state(saved["state"])


def annealed(lr: float, steps: int, anneal_steps: int | None) -> float:
    """Linear annealing to 0 over `anneal_steps` env steps (constant when None)."""
    return lr if not anneal_steps else lr * max(0.0, 1.0 - steps / anneal_steps)
