"""n-step returns, the double-DQN target and loss, and the dueling head."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

from distrl.q_learning import QNetwork, double_dqn_loss, n_step
from distrl.sample_batch import SampleBatch


def test_n_step_docstring_example():
    R, last, disc = n_step(np.ones(3), np.array([False, True, False]), np.zeros(3, bool), 0.5, 2)
    assert R.tolist() == [1.5, 1, 1] and last.tolist() == [1, 1, 2] and disc.tolist() == [0, 0, 0.5]


def test_n_step_by_hand_with_termination_truncation_and_the_fragments_end():
    # Two streams (columns): the first terminates at row 1, the second is truncated at row 2.
    rewards = np.array([[1.0, 2.0]] * 4)
    terminateds = np.zeros((4, 2), bool)
    truncateds = np.zeros((4, 2), bool)
    terminateds[1, 0] = truncateds[2, 1] = True
    R, last, disc = n_step(rewards, terminateds, truncateds, 0.9, 3)
    np.testing.assert_allclose(R, [[1.9, 5.42], [1, 3.8], [1.9, 2], [1, 2]], rtol=1e-6)
    assert last.tolist() == [[1, 2], [1, 2], [3, 2], [3, 3]]
    np.testing.assert_allclose(disc, [[0, 0.729], [0, 0.81], [0.81, 0.9], [0.9, 0.9]], rtol=1e-6)


def reference(rewards, terminateds, truncateds, gamma, n):
    """The definition, one row at a time."""
    R, last, disc = [], [], []
    for t in range(len(rewards)):
        total, k = 0.0, 0
        while True:
            total += gamma ** k * rewards[t + k]
            if terminateds[t + k] or truncateds[t + k] or k + 1 == n or t + k + 1 == len(rewards):
                break
            k += 1
        R.append(total)
        last.append(t + k)
        disc.append(0.0 if terminateds[t + k] else gamma ** (k + 1))
    return R, last, disc


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(-5, 5), st.booleans(), st.booleans()), min_size=1, max_size=30),
       st.integers(1, 6), st.floats(0.5, 1.0))
def test_n_step_matches_its_definition(steps, n, gamma):
    rewards = np.array([s[0] for s in steps])
    flags = np.array([s[1:] for s in steps])
    terminateds, truncateds = flags[:, 0] & ~flags[:, 1], flags[:, 1] & ~flags[:, 0]  # at most one per step
    R, last, disc = n_step(rewards, terminateds, truncateds, gamma, n)
    expected = reference(rewards, terminateds, truncateds, gamma, n)
    np.testing.assert_allclose(R, expected[0], rtol=1e-5, atol=1e-5)
    assert last.tolist() == expected[1]
    np.testing.assert_allclose(disc, expected[2], rtol=1e-6)


def linear(weights) -> nn.Module:
    layer = nn.Linear(1, 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weights).view(2, 1))
    return layer


def test_the_online_network_chooses_and_the_target_values():
    online = linear([1.0, 2.0])  # at s' = 1, online prefers action 1
    target = linear([10.0, 3.0])  # the target would prefer action 0 (worth 10): plain DQN's max
    batch = SampleBatch({"obs": np.ones((2, 1), np.float32), "actions": np.array([0, 1]),
                         "returns": np.array([1.0, 1.0], np.float32), "bootstrap_obs": np.ones((2, 1), np.float32),
                         "discounts": np.array([0.5, 0.0], np.float32), "weights": np.array([1.0, 3.0], np.float32)})
    loss, td, _ = double_dqn_loss(online, target, batch)
    y = np.array([1 + 0.5 * 3.0, 1.0])  # action 1's target value, not max = 10
    q = np.array([1.0, 2.0])
    np.testing.assert_allclose(td, q - y)
    huber = np.where(np.abs(q - y) < 1, 0.5 * (q - y) ** 2, np.abs(q - y) - 0.5)
    assert abs(float(loss.detach()) - float(np.mean([1.0, 3.0] * huber))) < 1e-6


def test_a_dueling_networks_mean_q_is_its_state_value():
    net = QNetwork(4, 3, hidden=(8,), dueling=True)
    obs = torch.randn(5, 4)
    features = net.torso(obs)
    torch.testing.assert_close(net(obs).mean(-1), net.value(features).squeeze(-1))
