"""Replay buffers: the sum tree, proportional sampling, importance weights, the ring, stale
priority updates, and checkpoints."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

from distrl.replay import PrioritizedReplayBuffer, ReplayBuffer, SumTree
from distrl.sample_batch import SampleBatch


def rows(start: int, n: int) -> SampleBatch:
    ids = np.arange(start, start + n)
    return SampleBatch({"obs": np.stack([ids, -ids], 1).astype(np.float32), "actions": ids})


@given(st.lists(st.integers(0, 50), min_size=1, max_size=40).filter(any), st.data())
def test_the_sum_tree_finds_the_leaf_a_prefix_sum_falls_in(values, data):
    # Integer values: every partial sum is exact, so the tree must agree with cumsum exactly.
    tree = SumTree(len(values))
    tree.set(np.arange(len(values)), np.array(values, dtype=np.float64))
    assert tree.total() == sum(values)
    prefixes = data.draw(st.lists(st.floats(0, sum(values), exclude_max=True), min_size=1, max_size=20))
    expected = np.searchsorted(np.cumsum(values), prefixes, side="right")
    assert tree.find(np.array(prefixes)).tolist() == expected.tolist()


def test_setting_a_leaf_again_updates_every_sum_above_it():
    tree = SumTree(5)
    tree.set(np.arange(5), np.ones(5))
    tree.set(np.array([3, 3, 0]), np.array([7.0, 7.0, 0.0]))
    assert tree.total() == 10 and tree.find(np.array([0.5, 2.5, 9.5])).tolist() == [1, 3, 4]


def chi2_critical(df: int, z: float = 4.75) -> float:
    """The χ² quantile at 1 − 10⁻⁶ (z its normal quantile), by the Wilson–Hilferty approximation."""
    return df * (1 - 2 / (9 * df) + z * np.sqrt(2 / (9 * df))) ** 3


@settings(max_examples=20, deadline=None, derandomize=True)
@given(st.lists(st.floats(0.01, 10), min_size=2, max_size=12), st.sampled_from([0.0, 0.6, 1.0]))
def test_prioritized_sampling_follows_the_priorities(priorities, alpha):
    buffer = PrioritizedReplayBuffer(16, alpha=alpha, epsilon=0.0, seed=1)
    buffer.add(rows(0, len(priorities)), np.array(priorities))
    draws = np.concatenate([buffer.sample(64)["slots"] for _ in range(200)])
    expected = np.array(priorities) ** alpha
    expected = expected / expected.sum() * len(draws)
    observed = np.bincount(draws, minlength=len(priorities))
    assert observed.sum() == len(draws) and len(observed) == len(priorities)
    # Stratified draws vary less than independent ones, so the bound is conservative.
    assert ((observed - expected) ** 2 / expected).sum() < chi2_critical(len(priorities) - 1)


def test_importance_weights_are_their_definition():
    p = np.array([0.5, 1.0, 2.0, 4.0])
    alpha, beta = 0.7, 0.5
    buffer = PrioritizedReplayBuffer(8, alpha=alpha, beta=beta, epsilon=0.0)
    buffer.add(rows(0, 4), p)
    batch = buffer.sample(400)
    probabilities = p ** alpha / (p ** alpha).sum()
    weights = (len(p) * probabilities) ** -beta
    expected = weights / weights.max()
    np.testing.assert_allclose(batch["weights"], expected[batch["slots"]], rtol=1e-6)
    assert set(batch["slots"].tolist()) == {0, 1, 2, 3}


def test_new_rows_get_the_largest_priority_seen():
    buffer = PrioritizedReplayBuffer(8, alpha=1.0, epsilon=0.0)
    buffer.add(rows(0, 2), np.array([1.0, 5.0]))
    buffer.add(rows(2, 1))
    assert buffer.tree.values(np.arange(3)).tolist() == [1.0, 5.0, 5.0]


def test_the_ring_keeps_the_last_capacity_rows():
    buffer = ReplayBuffer(5)
    for start in range(0, 8, 2):
        buffer.add(rows(start, 2))
    assert len(buffer) == 5 and buffer.columns["obs"].shape == (5, 2)
    assert sorted(buffer.columns["actions"].tolist()) == [3, 4, 5, 6, 7]
    sample = buffer.sample(50)
    assert set(sample["actions"].tolist()) <= {3, 4, 5, 6, 7}
    np.testing.assert_array_equal(sample["obs"][:, 0], sample["actions"])  # rows stay whole


def test_a_priority_for_a_row_since_overwritten_is_dropped():
    buffer = PrioritizedReplayBuffer(4, alpha=1.0, epsilon=0.0)
    buffer.add(rows(0, 4), np.ones(4))
    batch = buffer.sample(4)
    buffer.add(rows(4, 2), np.ones(2))  # slots 0 and 1 now hold new rows
    buffer.update_priorities(batch["slots"], batch["serials"], np.full(4, 9.0))
    kept = buffer.tree.values(np.arange(4))
    for slot in batch["slots"]:
        assert kept[slot] == (1.0 if slot < 2 else 9.0)


def test_a_restored_buffer_samples_what_the_original_would():
    original = PrioritizedReplayBuffer(6, seed=3)
    original.add(rows(0, 9), np.arange(1.0, 10.0))
    restored = PrioritizedReplayBuffer(6)
    restored.set_state(original.get_state())
    for _ in range(3):
        a, b = original.sample(5), restored.sample(5)
        assert all(np.array_equal(a[k], b[k]) for k in a.columns)
        original.update_priorities(a["slots"], a["serials"], np.ones(5))
        restored.update_priorities(b["slots"], b["serials"], np.ones(5))
