"""Replay: experience stored once and sampled many times, uniformly or by priority.

Off-policy learners (DQN, Ape-X) keep the last `capacity` transitions and learn from random
minibatches of them. A buffer holds SampleBatch columns in preallocated numpy arrays used
as a ring: the (capacity + 1)-th row overwrites the oldest, so memory is bounded by
capacity × row size from the first add.

Prioritized replay (Schaul et al., 2016, proportional variant) samples transition i with

    P(i) = p_i^α / Σ_k p_k^α,      p_i = |δ_i| + ε

where δ_i is its last TD error, and corrects the bias this brings with importance weights

    w_i = (N · P(i))^−β / max_k w_k = (P(i) / min_k P(k))^−β

(N transitions stored; the maximum is over the buffer, so w_i ≤ 1). Drawing from P takes a
sum tree: each node holds the sum of its children, so a leaf is set and a prefix sum is
located in O(log N). numpy has no such structure, hence the class below.

Both buffers are plain objects, so a learner holds one in its process and Ape-X runs them
as Ray actors (replay shards) unchanged: every method takes and returns picklable values.
With replay in another process, a batch's priorities arrive after newer rows may have
overwritten the ones sampled: each row carries the serial number of its insertion, and an
update for a row that has since been replaced is dropped.
"""

from __future__ import annotations

import numpy as np

from .sample_batch import SampleBatch


class SumTree:
    """Non-negative values on `capacity` leaves, with their running sums in the nodes above."""

    def __init__(self, capacity: int):
        self.leaves = 1 << max(0, capacity - 1).bit_length()  # a power of two: every leaf at one depth
        self.nodes = np.zeros(2 * self.leaves)  # node k has children 2k and 2k + 1; the root is 1

    def total(self) -> float:
        return float(self.nodes[1])

    def values(self, indices: np.ndarray) -> np.ndarray:
        return self.nodes[self.leaves + np.asarray(indices)]

    def set(self, indices: np.ndarray, values: np.ndarray) -> None:
        """Set leaves (a batch at once) and recompute the sums above them, level by level."""
        nodes = self.leaves + np.asarray(indices)
        self.nodes[nodes] = values
        while nodes[0] > 1:
            nodes = np.unique(nodes // 2)
            self.nodes[nodes] = self.nodes[2 * nodes] + self.nodes[2 * nodes + 1]

    def find(self, prefix: np.ndarray) -> np.ndarray:
        """For each prefix sum u in [0, total), the leaf i with Σ_{k<i} v_k ≤ u < Σ_{k≤i} v_k."""
        prefix = np.array(prefix, dtype=np.float64)
        nodes = np.ones(len(prefix), dtype=np.int64)
        while nodes[0] < self.leaves:
            left = 2 * nodes
            right = prefix >= self.nodes[left]
            prefix -= np.where(right, self.nodes[left], 0.0)
            nodes = left + right
        return nodes - self.leaves


class ReplayBuffer:
    """The last `capacity` rows, sampled uniformly with replacement."""

    def __init__(self, capacity: int, seed: int = 0):
        assert capacity > 0, "capacity must be positive"
        self.capacity = capacity
        self.columns: dict[str, np.ndarray] = {}
        self.serials = np.full(capacity, -1, dtype=np.int64)  # insertion number of each slot's row
        self.added = 0  # rows ever added
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return min(self.added, self.capacity)

    def add(self, batch: SampleBatch, priorities: np.ndarray | None = None) -> np.ndarray:
        """Store the rows (overwriting the oldest once full); returns the slots they went to.
        Uniform replay ignores priorities: both buffers take the same calls."""
        if not self.columns:
            self.columns = {name: np.zeros((self.capacity, *col.shape[1:]), col.dtype) for name, col in batch.columns.items()}
        assert batch.columns.keys() == self.columns.keys(), f"columns {sorted(batch.columns)} differ from {sorted(self.columns)}"
        serials = self.added + np.arange(len(batch))
        slots = serials % self.capacity
        for name, col in batch.columns.items():
            self.columns[name][slots] = col
        self.serials[slots] = serials
        self.added += len(batch)
        return slots

    def sample(self, n: int) -> SampleBatch:
        """n rows drawn uniformly, with columns `slots` and `serials` to address them later."""
        assert len(self) > 0, "sampling an empty buffer"
        return self._rows(self.rng.integers(0, len(self), n))

    def update_priorities(self, slots: np.ndarray, serials: np.ndarray, td_errors: np.ndarray) -> None:
        """Nothing: uniform replay keeps no priorities (see `add`)."""

    def _rows(self, slots: np.ndarray) -> SampleBatch:
        rows = {name: col[slots] for name, col in self.columns.items()}
        return SampleBatch({**rows, "slots": slots, "serials": self.serials[slots]})

    def get_state(self) -> dict:
        return {"columns": {k: v[:len(self)].copy() for k, v in self.columns.items()}, "serials": self.serials.copy(),
                "added": self.added, "rng": self.rng.bit_generator.state}

    def set_state(self, state: dict) -> None:
        self.columns = {k: np.zeros((self.capacity, *v.shape[1:]), v.dtype) for k, v in state["columns"].items()}
        for k, v in state["columns"].items():
            self.columns[k][:len(v)] = v
        self.serials, self.added = state["serials"].copy(), state["added"]
        self.rng.bit_generator.state = state["rng"]


class PrioritizedReplayBuffer(ReplayBuffer):
    """Rows sampled with probability ∝ p^α, returned with importance weights (see the module)."""

    def __init__(self, capacity: int, alpha: float = 0.6, beta: float = 0.4, epsilon: float = 1e-6, seed: int = 0):
        super().__init__(capacity, seed)
        self.alpha, self.beta, self.epsilon = alpha, beta, epsilon
        self.tree = SumTree(capacity)
        self.max_priority = 1.0  # p of a row added without one: the largest seen, so it is sampled soon

    def add(self, batch: SampleBatch, priorities: np.ndarray | None = None) -> np.ndarray:
        """Store rows with priorities p (Ape-X's actors compute them); by default the largest so far."""
        slots = super().add(batch)
        p = np.full(len(slots), self.max_priority) if priorities is None else np.abs(priorities) + self.epsilon
        self.max_priority = max(self.max_priority, float(p.max()))
        self.tree.set(slots, p ** self.alpha)
        return slots

    def sample(self, n: int, beta: float | None = None) -> SampleBatch:
        """n rows drawn ∝ p^α, one from each of n equal slices of the total mass (PER's
        stratified draw), with a `weights` column w_i."""
        assert len(self) > 0, "sampling an empty buffer"
        beta = self.beta if beta is None else beta
        total = self.tree.total()
        prefix = (np.arange(n) + self.rng.random(n)) * (total / n)
        # Rounding in the sums can put a prefix at the very end past the last stored row.
        slots = np.minimum(self.tree.find(prefix), len(self) - 1)
        probabilities = self.tree.values(slots) / total
        smallest = self.tree.values(np.arange(len(self))).min() / total  # O(N), microseconds at these sizes
        weights = (probabilities / smallest) ** -beta
        return self._rows(slots).with_columns(weights=weights.astype(np.float32))

    def update_priorities(self, slots: np.ndarray, serials: np.ndarray, td_errors: np.ndarray) -> None:
        """p_i = |δ_i| + ε for the sampled rows still stored (a row since overwritten is skipped)."""
        current = self.serials[slots] == serials
        p = np.abs(td_errors[current]) + self.epsilon
        if len(p):
            self.max_priority = max(self.max_priority, float(p.max()))
            self.tree.set(slots[current], p ** self.alpha)

    def get_state(self) -> dict:
        return {**super().get_state(), "tree": self.tree.nodes.copy(), "max_priority": self.max_priority}

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        self.tree.nodes, self.max_priority = state["tree"].copy(), state["max_priority"]
