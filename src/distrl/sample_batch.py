"""SampleBatch: experience as columns of arrays, and GAE(γ, λ) advantages.

A policy evaluator returns its experience as a SampleBatch: one row per environment step,
one column per quantity (RLlib's representation). Columns are numpy arrays, except where a
learner keeps its experience on the device (`AnakinLearner`'s, and a batch `SyncSamples`
moved to a GPU with `to`, are torch tensors, which `take` and `minibatches` index alike). Columns used across distrl:

    obs            (T, *obs_shape)  observation the action was taken in, s_t
    next_obs       (T, *obs_shape)  s_{t+1}, the true next observation (the final one where an
                                    episode ended), so a learner can re-evaluate V(s_{t+1})
    actions        (T, *act_shape)  a_t
    rewards        (T,)             r_t
    terminateds    (T,)             the episode ended at t (no bootstrap: V(s_{t+1}) = 0)
    truncateds     (T,)             the episode was cut at t (time limit): bootstrap from s_{t+1}
    logp           (T,)             log π(a_t | s_t) under the policy that acted
    values         (T,)             V(s_t) under that policy
    next_values    (T,)             V(s_{t+1}), s_{t+1} being the true next observation (the final
                                    one on truncation), so the bootstrap is right at every boundary
    advantages     (T,)             Â_t, added by `gae`
    value_targets  (T,)             Â_t + V(s_t), the critic's regression target
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SampleBatch:
    """Columns of equal length; immutable, so a batch can be shared without copies."""

    columns: dict[str, np.ndarray]

    def __post_init__(self) -> None:
        lengths = {name: len(col) for name, col in self.columns.items()}
        assert len(set(lengths.values())) <= 1, f"columns differ in length: {lengths}"

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def __contains__(self, name: str) -> bool:
        return name in self.columns

    def with_columns(self, **new: np.ndarray) -> "SampleBatch":
        return SampleBatch({**self.columns, **new})

    def slice(self, start: int, stop: int) -> "SampleBatch":
        return SampleBatch({name: col[start:stop] for name, col in self.columns.items()})

    def take(self, index: np.ndarray) -> "SampleBatch":
        return SampleBatch({name: col[index] for name, col in self.columns.items()})

    def minibatches(self, size: int, rng: np.random.Generator) -> Iterator["SampleBatch"]:
        """Shuffled minibatches of `size` rows covering the batch once (the last may be short)."""
        assert size > 0, "minibatch size must be positive"
        order = rng.permutation(len(self))
        first = next(iter(self.columns.values()), None)
        if first is not None and not isinstance(first, np.ndarray):  # torch tensors: the index goes to their device once
            import torch

            order = torch.as_tensor(order, device=first.device)
        for start in range(0, len(self), size):
            yield self.take(order[start : start + size])

    def to(self, device) -> "SampleBatch":
        """Every column as a torch tensor on `device` (a torch.device or its name), moved in
        one copy per column, so a learner on a GPU takes its minibatches there."""
        import torch  # only learners that move batches need torch here

        return SampleBatch({name: torch.as_tensor(col, device=device) for name, col in self.columns.items()})

    @staticmethod
    def concat(batches: list["SampleBatch"]) -> "SampleBatch":
        """Rows of every batch, in order; all batches must have the same columns."""
        if not batches:
            return SampleBatch({})
        names = batches[0].columns.keys()
        assert all(b.columns.keys() == names for b in batches), "batches have different columns"
        return SampleBatch({name: np.concatenate([b[name] for b in batches]) for name in names})


def gae(
    rewards: np.ndarray,
    values: np.ndarray,
    next_values: np.ndarray,
    terminateds: np.ndarray,
    truncateds: np.ndarray,
    gamma: float,
    lam: float,
) -> np.ndarray:
    """Generalized advantage estimates Â_t (Schulman et al., 2016), time along axis 0.

        δ_t = r_t + γ (1 − term_t) V(s_{t+1}) − V(s_t)
        Â_t = δ_t + γ λ (1 − done_t) Â_{t+1},   done_t = term_t or trunc_t

    A terminated step has no future value; a truncated one bootstraps from V(s_{t+1}) in δ_t
    but, like termination, stops the recursion, since s_{t+1} starts nothing in this batch.
    The last row's Â is δ alone (the fragment's end bootstraps through next_values).
    Trailing axes (e.g. one per vectorized env) are independent streams.

    Example: one step, r = 1, V(s) = 0.5, V(s') = 2, γ = 0.9, not done:
    δ = 1 + 0.9 · 2 − 0.5 = 2.3, so Â = [2.3].
    """
    deltas = rewards + gamma * (1.0 - terminateds) * next_values - values
    carry = gamma * lam * (1.0 - np.logical_or(terminateds, truncateds))
    advantages = np.zeros_like(deltas, dtype=np.float64)
    running = np.zeros_like(deltas[0], dtype=np.float64) if len(deltas) else 0.0
    for t in reversed(range(len(deltas))):  # the one visible backwards loop
        running = deltas[t] + carry[t] * running
        advantages[t] = running
    return advantages.astype(np.float32)


def add_advantages(batch: SampleBatch, gamma: float, lam: float) -> SampleBatch:
    """The batch with `advantages` and `value_targets` (rows in time order, one stream)."""
    adv = gae(batch["rewards"], batch["values"], batch["next_values"], batch["terminateds"].astype(np.float64),
              batch["truncateds"].astype(np.float64), gamma, lam)
    return batch.with_columns(advantages=adv, value_targets=(adv + batch["values"]).astype(np.float32))
