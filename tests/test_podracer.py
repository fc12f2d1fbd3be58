"""Anakin and Sebulba: the Podracer optimizers' rollouts against their definitions, replicas
that stay bit-identical, resuming from a checkpoint, and Sebulba's policy lag."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import ray
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from distrl.anakin_learner import AnakinConfig, AnakinLearner, gae_tensor
from distrl.envs import cartpole
from distrl.optimizers.anakin import Anakin
from distrl.tensor_rollout import TANH_BY_SIGMOID_FROM, act_and_step, acting_tanh
from distrl.optimizers.sebulba import Sebulba
from distrl.policy import PolicyConfig
from distrl.rollout_worker import WorkerConfig
from distrl.sample_batch import gae

SMALL = AnakinConfig(num_envs=8, unroll=16, minibatches=2, epochs=2, policy=PolicyConfig(hidden=(16,)))


# 8 environments with 16 hidden units act through torch.tanh, 256 with 64 through 2σ(2x) − 1.
@pytest.mark.parametrize("config", [SMALL, AnakinConfig(num_envs=256, unroll=16)], ids=["small", "large"])
def test_a_rollout_is_a_chain_of_real_transitions_sampled_from_the_policy(config):
    learner = AnakinLearner(config)
    columns, returns = learner.rollout.run(40)  # long enough for a few episodes to end (random policy: ~20 steps)
    done = columns["terminateds"] | columns["truncateds"]
    assert done.any() and len(returns) == int(done.sum())
    # Where no episode ended, the next row starts where this one's transition went.
    following = ~done[:-1]
    assert torch.equal(columns["obs"][1:][following], columns["next_obs"][:-1][following])
    # Each transition is the physics applied to (s_t, a_t).
    assert torch.allclose(cartpole.physics(columns["obs"].flatten(0, 1), columns["actions"].flatten()),
                          columns["next_obs"].flatten(0, 1))
    # log π(a|s) agrees with the Policy's own definition (the one the loss uses).
    with torch.no_grad():
        dist, _ = learner.policy.distribution(columns["obs"].flatten(0, 1))
    assert torch.allclose(dist.log_prob(columns["actions"].flatten()), columns["logp"].flatten(), atol=1e-6)
    assert set(returns.tolist()) <= set(range(1, 501)) and all(r == int(r) for r in returns.tolist())


def test_the_acting_tanh_is_tanh_on_either_side_of_its_switch():
    x = torch.linspace(-12, 12, 2 * TANH_BY_SIGMOID_FROM).reshape(-1, 64)
    small = x[: TANH_BY_SIGMOID_FROM // 64 - 1]
    assert torch.equal(acting_tanh(small), torch.tanh(small))
    gap = (acting_tanh(x) - torch.tanh(x)).abs()
    assert 0 < float(gap.max()) < 2.5e-7  # above the switch it is the identity, not torch.tanh again
    far = torch.tensor([-1e4, 1e4]).repeat(TANH_BY_SIGMOID_FROM)  # saturates to ±1, no overflow to nan
    assert torch.equal(acting_tanh(far), torch.tanh(far))


def test_a_learners_state_is_host_memory_and_resumes_to_the_same_round():
    learner = AnakinLearner(AnakinConfig(num_envs=4, unroll=8))
    learner.round(2.5e-4)
    state = learner.get_state()
    assert all(t.device.type == "cpu" for t in state["envs"][:3])
    expected = learner.round(2.5e-4), learner.get_weights()
    resumed = AnakinLearner(AnakinConfig(num_envs=4, unroll=8, seed=1))  # other weights and streams until restored
    resumed.set_state(state)
    assert resumed.round(2.5e-4) == expected[0]
    np.testing.assert_array_equal(resumed.get_weights(), expected[1])


def test_a_learners_batch_carries_the_critics_values_and_gae():
    learner = AnakinLearner(SMALL)
    batch, _ = learner.sample()
    assert len(batch) == 8 * 16
    with torch.no_grad():
        _, values = learner.policy.distribution(batch["obs"])
    assert torch.allclose(values, batch["values"], atol=1e-6)
    assert torch.allclose(batch["value_targets"], batch["advantages"] + batch["values"])


@settings(max_examples=100, deadline=None)
@given(steps=st.integers(1, 12), envs=st.integers(1, 5), seed=st.integers(0, 2**32 - 1),
       gamma=st.floats(0.0, 1.0), lam=st.floats(0.0, 1.0))
def test_the_learners_gae_on_tensors_is_distrls_gae_bit_for_bit(steps, envs, seed, gamma, lam):
    rng = np.random.default_rng(seed)
    rewards, values, next_values = rng.normal(size=(3, steps, envs)).astype(np.float32)
    term, trunc = rng.random((2, steps, envs)) < 0.2
    want = gae(rewards, values, next_values, term.astype(np.float32), trunc.astype(np.float32), gamma, lam)
    got = gae_tensor(*map(torch.from_numpy, (rewards, values, next_values, term, trunc)), gamma, lam)
    assert got.dtype == torch.float32 and np.array_equal(got.numpy(), want)


def test_the_gpu_benchmark_measures_what_the_lab_reads():
    """bench/anakin_gpu.py, tried on the CPU at tiny sizes: the rows the podracer lab's GPU cell reads."""
    spec = importlib.util.spec_from_file_location("anakin_gpu", Path(__file__).parents[1] / "bench" / "anakin_gpu.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    acting = bench.acting(16, unroll=8, repeats=1, compile=False, device="cpu")
    training = bench.training(16, repeats=1, compile=False, device="cpu")
    learning = bench.time_to_450(8, max_s=0.5, device="cpu")
    assert acting["median_steps_per_s"] > 0 and training["median_steps_per_s"] > 0
    assert training["median_acting_s"] > 0 and training["median_learning_s"] > 0
    assert learning["rounds"] == len(learning["last20_mean_per_round"]) and learning["env_steps"] == learning["rounds"] * 8 * 32


def test_episode_returns_add_up_across_rollouts():
    learner = AnakinLearner(SMALL)
    total_rewards, total_returns, steps = 0, 0.0, 0
    for _ in range(5):
        columns, returns = learner.rollout.run(16)
        total_returns += float(returns.sum())
        steps += columns["rewards"].numel()
    # Every step pays 1: what finished episodes returned plus what the running ones hold is every step taken.
    assert total_returns + float(learner.rollout.running_return.sum()) == steps


def test_the_gumbel_max_draw_follows_the_policys_probabilities():
    learner = AnakinLearner(AnakinConfig(num_envs=20_000, policy=PolicyConfig(hidden=(8,), seed=3)))
    actor = learner.rollout.actor
    with torch.no_grad():
        actor[-1][0].mul_(100)  # a far-from-uniform π, so a wrong sampler shows
    state = torch.zeros(20_000, 4) + torch.tensor([0.03, 0.0, 0.03, 0.5])
    gumbel = torch.empty(20_000, 2).exponential_(generator=torch.Generator().manual_seed(0)).log_().neg_()
    with torch.inference_mode():
        out = act_and_step(actor, state, torch.zeros(20_000, dtype=torch.int64), torch.zeros(20_000), gumbel, state)
        p = learner.policy.distribution(state[:1])[0].probs[0, 1]
    share = out[3].float().mean()
    assert 0.05 < float(p) < 0.95 and abs(float(share - p)) < 4 * float((p * (1 - p) / 20_000) ** 0.5)


def test_resuming_from_a_checkpoint_continues_the_same_run(tmp_path):
    first = Anakin(SMALL)
    first.step()
    first.save(tmp_path / "anakin.pkl")
    first.step()
    second = Anakin(SMALL)
    second.restore(tmp_path / "anakin.pkl")
    second.step()
    assert np.array_equal(first.weights(), second.weights())
    assert first.stats.returns == second.stats.returns and first.stats.env_steps == second.stats.env_steps == 2 * 8 * 16


@pytest.mark.usefixtures("ray_session")
def test_replicas_stay_bit_identical_and_differ_from_one_learner():
    anakin = Anakin(SMALL, replicas=2, num_cpus_per_replica=0.25)
    try:
        for _ in range(3):
            anakin.step()
        first, second = anakin.replica_weights()
        assert np.array_equal(first, second)
        assert anakin.stats.env_steps == 3 * 2 * 8 * 16  # both replicas' experience counts
        single = Anakin(SMALL)
        for _ in range(3):
            single.step()
        # The same start, but the replicas averaged two streams of experience: a different θ.
        assert not np.array_equal(single.weights(), first)
    finally:
        anakin.stop()


@pytest.mark.usefixtures("ray_session")
@pytest.mark.parametrize("synchronous", [True, False], ids=["synchronous", "overlapped"])
def test_sebulbas_lag_is_zero_when_synchronous_and_bounded_when_overlapped(synchronous):
    config = WorkerConfig(num_envs=4, fragment_length=32, policy=PolicyConfig(hidden=(16,)))
    sebulba = Sebulba(config, num_actors=1, epochs=2, minibatch_size=64, synchronous=synchronous,
                      num_cpus_per_worker=0.25)
    try:
        ray.get([w.__ray_ready__.remote() for w in sebulba.workers.remotes])  # the actors answer until the first step
        for _ in range(12):
            sebulba.step()
        assert sebulba.stats.env_steps == 12 * 4 * 32 and sebulba.version == 12
        if synchronous:
            assert sebulba.lags == [0] * 12
        else:
            # One batch waits in the queue while the actor samples the next (2 behind); one
            # more when the actor reads the slot before the learner's last publication lands.
            assert set(sebulba.lags) <= {0, 1, 2, 3} and max(sebulba.lags) >= 1
    finally:
        sebulba.stop()


@pytest.mark.usefixtures("ray_session")
def test_a_sebulba_stopped_before_its_first_step_stops_cleanly():
    config = WorkerConfig(num_envs=2, fragment_length=8, policy=PolicyConfig(hidden=(8,)))
    sebulba = Sebulba(config, num_actors=1, num_cpus_per_worker=0.25)
    actor = sebulba.workers.remotes[0]
    sebulba.stop()
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(actor.__ray_ready__.remote(), timeout=30)
