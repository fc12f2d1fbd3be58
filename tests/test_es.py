"""OpenAI-ES: the update is the definition, the antithetic estimate is unbiased, workers send
a few bytes whatever D is, and the flat driver, the naive protocol and the tree agree."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distrl.es import (ES, Adam, ESConfig, ESTree, ESWorker, centred_ranks, estimate_gradient, make_noise,
                       pair_weights, weighted_noise_sum)


def test_centred_ranks_spread_evenly_over_minus_half_to_half():
    np.testing.assert_allclose(centred_ranks(np.array([[3.0, 1.0], [0.0, 2.0]])), [[0.5, -1 / 6], [-0.5, 1 / 6]])


def test_the_update_equals_the_definition_by_hand():
    # Two pairs, D = 2, ε_0 = noise[0:2] = (1, 2), ε_1 = noise[2:4] = (3, 4), σ = 0.5.
    # Returns (3, 1) and (0, 2) rank as 3, 1, 0, 2 of 0..3, so F̃ = (1/2, −1/6), (−1/2, 1/6)
    # and w = (2/3, −2/3); Σ w_i ε_i = (−4/3, −4/3); g = that / (2 · 2 · 0.5) = (−2/3, −2/3).
    noise = np.arange(1, 9, dtype=np.float32)
    weights = pair_weights(np.array([[3.0, 1.0], [0.0, 2.0]]))
    np.testing.assert_allclose(weights, [2 / 3, -2 / 3])
    total = weighted_noise_sum(noise, np.array([0, 2]), weights, 2)
    np.testing.assert_allclose(estimate_gradient(total, 2, 0.5), [-2 / 3, -2 / 3])
    # Adam's first step moves every coordinate by lr in the sign of g − λθ.
    theta = np.array([1.0, -1.0], np.float32)
    g = estimate_gradient(total, 2, 0.5) - 0.005 * theta
    np.testing.assert_allclose(Adam(2, lr=0.1).step(theta, g), theta + 0.1 * np.sign(g), rtol=1e-6)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), dim=st.integers(1, 4), sigma=st.floats(0.01, 1.0))
def test_the_antithetic_estimate_is_unbiased_on_a_quadratic(seed, dim, sigma):
    # F(θ) = −½ θᵀAθ + bᵀθ: (F(θ+σε) − F(θ−σε)) / 2σ = ∇F(θ)·ε exactly (the even terms
    # cancel), so the unshaped estimate's mean is ∇F(θ), with a standard error we can bound.
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((dim, dim))
    a, b, theta = a @ a.T, rng.standard_normal(dim), rng.standard_normal(dim)
    noise, pairs = rng.standard_normal(20_000 * dim).astype(np.float32), 20_000
    indices = np.arange(pairs) * dim  # disjoint slices: independent ε
    eps = noise.reshape(pairs, dim).astype(np.float64)

    def f(x):
        return -0.5 * np.einsum("ni,ij,nj->n", x, a, x) + x @ b

    returns = np.stack([f(theta + sigma * eps), f(theta - sigma * eps)], axis=1)
    g = estimate_gradient(weighted_noise_sum(noise, indices, pair_weights(returns, shaped=False), dim), pairs, sigma)
    true = b - a @ theta
    per_pair = (eps @ true)[:, None] * eps  # each pair's own estimate, for the standard error
    stderr = per_pair.std(axis=0) / np.sqrt(pairs)
    assert (np.abs(g - true) < 5 * stderr + 1e-9).all(), (g, true, stderr)


def worker(hidden: tuple[int, ...], **changes) -> ESWorker:
    config = replace(ESConfig(hidden=hidden, noise_size=200_000, max_episode_steps=20), **changes)
    return ESWorker(config, make_noise(config), worker_index=0)


def test_a_worker_sends_the_same_few_bytes_whatever_the_size_of_the_policy():
    small, large = worker((8,)), worker((256,))
    answers = {}
    for w in (small, large):
        theta = w.policy.initial(np.random.default_rng(0))
        answers[w.policy.dim] = (w.evaluate(theta, pairs=3), w.evaluate(theta, pairs=3, vectors=True))
    (d1, (seeds1, full1)), (d2, (seeds2, full2)) = answers.items()
    assert seeds1.payload_bytes() == seeds2.payload_bytes() == 3 * 8 + 3 * 2 * 8 + 3 * 2 * 8
    assert full2.payload_bytes() - seeds2.payload_bytes() == 3 * d2 * 4
    # What the naive protocol sends is exactly the slices the indices name.
    np.testing.assert_array_equal(full1.vectors[1], small.noise[full1.indices[1]:full1.indices[1] + d1])


def test_a_worker_evaluates_each_pair_at_plus_and_minus_sigma_epsilon_from_one_start():
    w = worker((8,), sigma=0.1)
    theta = w.policy.initial(np.random.default_rng(1))
    answer = w.evaluate(theta, pairs=3)
    for i, index in enumerate(answer.indices):
        eps = w.noise[index:index + w.policy.dim]
        for j, sign in enumerate((1.0, -1.0)):
            assert w.rollout(theta + np.float32(sign * 0.1) * eps, int(index)) == (answer.returns[i, j], answer.lengths[i, j])
    assert len(set(answer.indices)) == 3  # fresh slices (from a table of 200,000)


def test_flat_naive_and_tree_drivers_make_the_same_updates(ray_session):
    config = ESConfig(hidden=(16,), noise_size=100_000, max_episode_steps=50, pairs_per_worker=2)
    runs = {"flat": ES(config, 2, num_cpus_per_worker=0.1), "naive": ES(config, 2, vectors=True, num_cpus_per_worker=0.1),
            "tree": ESTree(config, num_groups=2, group_size=1, num_cpus_per_worker=0.1)}
    try:
        for _ in range(3):
            stats = {name: run.step() for name, run in runs.items()}
            assert len({(s.episodes, s.steps, s.mean_return) for s in stats.values()}) == 1
        # The three sum the same terms in different orders (float64), then round to float32.
        for name in ("naive", "tree"):
            np.testing.assert_allclose(runs[name].theta, runs["flat"].theta, rtol=1e-6, atol=1e-7)
        assert not np.array_equal(runs["flat"].theta, runs["flat"].policy.initial(np.random.default_rng(0)))
    finally:
        for run in runs.values():
            run.stop()
