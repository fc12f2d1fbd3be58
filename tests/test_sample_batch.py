"""SampleBatch and GAE: a hand-computed example, and a direct reference on random episodes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distrl.sample_batch import SampleBatch, add_advantages, gae


def test_hand_computed_two_episodes_with_truncation():
    # Episode A: steps 0-1, terminated at 1. Episode B: steps 2-3, truncated at 3 (V(s') = 4).
    rewards = np.array([1.0, 2.0, 3.0, 4.0])
    values = np.array([0.5, 1.0, 1.5, 2.0])
    next_values = np.array([1.0, 9.0, 2.0, 4.0])  # 9.0 must be ignored: terminated
    term = np.array([0.0, 1.0, 0.0, 0.0])
    trunc = np.array([0.0, 0.0, 0.0, 1.0])
    g, lam = 0.5, 0.5
    d3 = 4 + 0.5 * 4.0 - 2.0  # 4.0, bootstrapped from the truncated episode's next value
    d2 = 3 + 0.5 * 2.0 - 1.5  # 2.5
    d1 = 2 + 0.0 - 1.0  # 1.0
    d0 = 1 + 0.5 * 1.0 - 0.5  # 1.0
    expected = [d0 + 0.25 * d1, d1, d2 + 0.25 * d3, d3]
    np.testing.assert_allclose(gae(rewards, values, next_values, term, trunc, g, lam), expected, rtol=1e-6)


def reference_gae(rewards, values, next_values, term, trunc, gamma, lam):
    """Â_t as the explicit sum Σ_l (γλ)^l δ_{t+l}, up to the end of t's episode or the batch."""
    n = len(rewards)
    deltas = [rewards[t] + gamma * (1 - term[t]) * next_values[t] - values[t] for t in range(n)]
    out = []
    for t in range(n):
        total, weight, k = 0.0, 1.0, t
        while k < n:
            total += weight * deltas[k]
            if term[k] or trunc[k]:
                break
            weight *= gamma * lam
            k += 1
        out.append(total)
    return np.array(out)


@settings(max_examples=200, deadline=None)
@given(
    data=st.lists(
        st.tuples(st.floats(-10, 10), st.floats(-10, 10), st.floats(-10, 10), st.sampled_from(["", "term", "trunc"])),
        min_size=0,
        max_size=40,
    ),
    gamma=st.floats(0.0, 1.0),
    lam=st.floats(0.0, 1.0),
)
def test_gae_matches_the_direct_definition(data, gamma, lam):
    rewards = np.array([d[0] for d in data], dtype=np.float64)
    values = np.array([d[1] for d in data], dtype=np.float64)
    next_values = np.array([d[2] for d in data], dtype=np.float64)
    term = np.array([d[3] == "term" for d in data], dtype=np.float64)
    trunc = np.array([d[3] == "trunc" for d in data], dtype=np.float64)
    got = gae(rewards, values, next_values, term, trunc, gamma, lam)
    want = reference_gae(rewards, values, next_values, term, trunc, gamma, lam)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)


def test_vectorized_streams_are_independent():
    rng = np.random.default_rng(0)
    r, v, nv = rng.normal(size=(3, 12, 4))
    term = (rng.random((12, 4)) < 0.2).astype(float)
    trunc = (rng.random((12, 4)) < 0.1).astype(float)
    together = gae(r, v, nv, term, trunc, 0.99, 0.95)
    for env in range(4):
        alone = gae(r[:, env], v[:, env], nv[:, env], term[:, env], trunc[:, env], 0.99, 0.95)
        np.testing.assert_allclose(together[:, env], alone, rtol=1e-6)


def test_concat_slice_minibatches():
    a = SampleBatch({"x": np.arange(5), "y": np.arange(5) * 2})
    b = SampleBatch({"x": np.arange(5, 8), "y": np.arange(5, 8) * 2})
    both = SampleBatch.concat([a, b])
    assert len(both) == 8 and both["x"].tolist() == list(range(8))
    assert both.slice(2, 4)["y"].tolist() == [4, 6]
    seen = np.concatenate([mb["x"] for mb in both.minibatches(3, np.random.default_rng(1))])
    assert sorted(seen.tolist()) == list(range(8))
    with pytest.raises(AssertionError):
        SampleBatch({"x": np.arange(2), "y": np.arange(3)})


def test_add_advantages_adds_value_targets():
    batch = SampleBatch({
        "rewards": np.array([1.0], dtype=np.float32), "values": np.array([0.5], dtype=np.float32),
        "next_values": np.array([2.0], dtype=np.float32), "terminateds": np.array([False]), "truncateds": np.array([False]),
    })
    out = add_advantages(batch, gamma=0.9, lam=0.95)
    np.testing.assert_allclose(out["advantages"], [2.3], rtol=1e-6)
    np.testing.assert_allclose(out["value_targets"], [2.8], rtol=1e-6)
