"""Policy: flat weights round trip, determinism under a seed, gradients as one vector."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from distrl.losses import a2c_loss, ppo_loss
from distrl.policy import Policy, PolicyConfig
from distrl.sample_batch import SampleBatch

SPACES = {
    "discrete": (gym.spaces.Box(-1, 1, (4,), np.float32), gym.spaces.Discrete(2)),
    "box": (gym.spaces.Box(-1, 1, (3,), np.float32), gym.spaces.Box(-2, 2, (2,), np.float32)),
}


def make(kind="discrete", seed=0, loss=None):
    obs_space, act_space = SPACES[kind]
    return Policy(obs_space, act_space, loss or ppo_loss(), PolicyConfig(hidden=(16, 16), seed=seed))


def batch_for(policy, kind="discrete", n=32, seed=1):
    rng = np.random.default_rng(seed)
    obs = rng.uniform(-1, 1, (n, SPACES[kind][0].shape[0])).astype(np.float32)
    actions, logp, values = policy.compute_actions(obs)
    return SampleBatch({
        "obs": obs, "actions": actions, "logp": logp, "values": values,
        "advantages": rng.normal(size=n).astype(np.float32), "value_targets": rng.normal(size=n).astype(np.float32),
    })


def test_weights_round_trip_as_one_flat_vector():
    for kind in SPACES:
        a, b = make(kind, seed=0), make(kind, seed=1)
        w = a.get_weights()
        assert w.dtype == np.float32 and w.ndim == 1
        assert not np.array_equal(w, b.get_weights())
        b.set_weights(w)
        np.testing.assert_array_equal(b.get_weights(), w)
        obs = np.zeros((3, SPACES[kind][0].shape[0]), np.float32)
        np.testing.assert_array_equal(a.compute_values(obs), b.compute_values(obs))


def test_deterministic_under_a_seed():
    for kind in SPACES:
        a, b = make(kind, seed=7), make(kind, seed=7)
        np.testing.assert_array_equal(a.get_weights(), b.get_weights())
        obs = np.random.default_rng(0).uniform(-1, 1, (16, SPACES[kind][0].shape[0])).astype(np.float32)
        for x, y in zip(a.compute_actions(obs), b.compute_actions(obs)):
            np.testing.assert_array_equal(x, y)


def test_compute_then_apply_equals_learn_on_batch():
    for loss in (ppo_loss(), a2c_loss()):
        a, b = make(loss=loss), make(loss=loss)
        batch = batch_for(a)
        grads, stats = a.compute_gradients(batch)
        assert grads.shape == a.get_weights().shape and np.isfinite(grads).all()
        a.apply_gradients(grads)
        b.learn_on_batch(batch)
        np.testing.assert_allclose(a.get_weights(), b.get_weights(), rtol=0, atol=1e-7)
        assert "policy_loss" in stats and "entropy" in stats


def test_ppo_statistics_at_the_old_policy():
    policy = make()
    _, stats = policy.compute_gradients(batch_for(policy))
    # Right after sampling, π = π_old: ratio 1, nothing clipped, KL 0.
    assert abs(stats["approx_kl"]) < 1e-6 and stats["clip_fraction"] == 0.0


def test_sampling_path_agrees_with_the_distribution_the_loss_uses():
    import torch

    for kind in SPACES:
        policy = make(kind)
        obs = np.random.default_rng(2).uniform(-1, 1, (64, SPACES[kind][0].shape[0])).astype(np.float32)
        actions, logp, values = policy.compute_actions(obs)
        with torch.no_grad():
            dist, v = policy.distribution(torch.as_tensor(obs))
            expected = dist.log_prob(torch.as_tensor(actions))
            expected = expected if kind == "discrete" else expected.sum(-1)
        np.testing.assert_allclose(logp, expected.numpy(), rtol=0, atol=1e-5)
        np.testing.assert_allclose(values, v.numpy(), rtol=0, atol=1e-6)


def test_discrete_actions_are_drawn_from_pi():
    import torch

    policy = make("discrete")
    policy.model.actor[-1].bias.data[:] = torch.tensor([0.0, 1.0])  # π = (0.27, 0.73) whatever the state
    obs = np.zeros((20_000, 4), np.float32)
    actions, _, _ = policy.compute_actions(obs)
    with torch.no_grad():
        p1 = policy.distribution(torch.as_tensor(obs[:1]))[0].probs[0, 1].item()
    # 20,000 Bernoulli draws: the standard error of the mean is about 0.003.
    assert abs(actions.mean() - p1) < 0.015


def test_the_clip_answers_where_the_gradient_is_and_matches_its_definition():
    policy = make()
    rng = np.random.default_rng(0)
    for scale in (1e-3, 1.0, 1e3):  # inside the max norm (0.5), and far outside it
        g = (rng.standard_normal(sum(policy.sizes)) * scale).astype(np.float32)
        clipped = policy.clip_gradients(g)
        assert isinstance(clipped, torch.Tensor) and clipped.dtype == torch.float32
        norm = np.sqrt(np.sum(np.square(g, dtype=np.float64)))
        want = g * min(1.0, policy.config.max_grad_norm / (norm + 1e-6))
        np.testing.assert_allclose(clipped.numpy(), want, rtol=1e-6)
        np.testing.assert_array_equal(policy.clip_gradients(torch.from_numpy(g)).numpy(), clipped.numpy())


def test_a_batch_moves_to_a_device_as_tensors_with_its_values():
    policy = make()
    batch = batch_for(policy)
    moved = batch.to("cpu")
    assert set(moved.columns) == set(batch.columns)
    for name, column in batch.columns.items():
        assert isinstance(moved[name], torch.Tensor)
        np.testing.assert_array_equal(moved[name].numpy(), column)
    # the loss reads either form alike, and minibatches take the same rows
    assert policy.loss(policy, moved)[1] == policy.loss(policy, batch)[1]
    pairs = zip(batch.minibatches(10, np.random.default_rng(3)), moved.minibatches(10, np.random.default_rng(3)), strict=True)
    for numpy_rows, tensor_rows in pairs:
        np.testing.assert_array_equal(tensor_rows["obs"].numpy(), numpy_rows["obs"])


def test_state_is_host_memory_and_restores_the_next_update():
    policy, twin = make(), make(seed=5)
    batch = batch_for(policy)
    policy.learn_on_batch(batch)
    state = policy.get_state()
    assert all(v.device.type == "cpu" for moment in state["optimizer"]["state"].values()
               for v in moment.values() if torch.is_tensor(v))
    policy.learn_on_batch(batch)
    taken = state["optimizer"]["state"][0]["exp_avg"].clone()
    # copies both ways: the live moments moved on, the state taken before did not, and
    # neither does it when another policy restores it and learns
    assert not torch.equal(taken, policy.optimizer.state[policy.parameters[0]]["exp_avg"])
    twin.set_state(state)
    twin.learn_on_batch(batch)
    np.testing.assert_array_equal(twin.get_weights(), policy.get_weights())
    assert torch.equal(state["optimizer"]["state"][0]["exp_avg"], taken)
