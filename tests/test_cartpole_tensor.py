"""distrl.envs.cartpole against gymnasium's CartPole-v1, step for step."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from distrl.envs import cartpole


def gymnasium_episode(seed: int, actions_from) -> tuple[np.ndarray, list[tuple]]:
    """Run gymnasium's CartPole-v1 from `seed` with a policy of its float64 state; return the
    initial state and each step's (action, float64 state, reward, terminated, truncated)."""
    env = gym.make("CartPole-v1")
    env.reset(seed=seed)
    start = np.array(env.unwrapped.state, dtype=np.float64)
    steps, done = [], False
    while not done:
        action = actions_from(np.asarray(env.unwrapped.state))
        _, reward, terminated, truncated, _ = env.step(action)
        steps.append((action, np.array(env.unwrapped.state, dtype=np.float64), reward, terminated, truncated))
        done = terminated or truncated
    return start, steps


def balancing(state: np.ndarray) -> int:
    """A controller that keeps the pole up for all 500 steps, so truncation is exercised."""
    return int(state[2] + 0.5 * state[3] + 0.01 * state[1] > 0)


def replay(start: np.ndarray, steps: list[tuple], dtype: torch.dtype, teacher_forced: bool) -> list[cartpole.Step]:
    """Our steps for gymnasium's actions: each from our own previous state, or (teacher
    forced) from gymnasium's, so that every step is compared on its own."""
    state = torch.tensor(start[None], dtype=dtype)
    elapsed = torch.zeros(1, dtype=torch.int64)
    never = torch.full((1, 4), float("nan"), dtype=dtype)  # a reset would show as NaN
    out = []
    for action, gym_state, *_ in steps:
        result = cartpole.step(state, elapsed, torch.tensor([action]), never)
        elapsed = result.elapsed
        state = torch.tensor(gym_state[None], dtype=dtype) if teacher_forced else result.state
        out.append(result)
    return out


@pytest.mark.parametrize("controller", [balancing, lambda s: int(s[3] > 0) ^ int(abs(s[0]) > 1)], ids=["truncates", "falls"])
def test_float64_steps_reproduce_gymnasium_for_a_whole_episode(controller):
    # Each step from gymnasium's own state: the same equations in float64, with constants
    # folded and products fused (`physics`), differ from gymnasium's order of operations by
    # a few ulps (about 1e-16 relative).
    start, steps = gymnasium_episode(3, controller)
    ours = replay(start, steps, torch.float64, teacher_forced=True)
    for t, ((_, state, reward, terminated, truncated), step) in enumerate(zip(steps, ours)):
        np.testing.assert_allclose(step.final_obs[0].numpy(), state, rtol=1e-13, atol=1e-15, err_msg=f"step {t}")
        assert (float(step.reward[0]), bool(step.terminated[0]), bool(step.truncated[0])) == (reward, terminated, truncated), t
    ended_by = "truncated" if steps[-1][4] else "terminated"
    assert ended_by == ("truncated" if controller is balancing else "terminated") and (len(steps) == 500) == (ended_by == "truncated")
    assert bool(ours[-1].terminated[0] | ours[-1].truncated[0]) and int(ours[-1].elapsed[0]) == 0


def test_float64_trajectories_agree_until_chaos_amplifies_the_rounding():
    # Free-running, those ulps grow: the closed loop of this controller amplifies a
    # difference about tenfold every 30 steps, so the trajectories agree to 1e-10 for the
    # first 150 steps (measured: 1e-13 at step 100, 1e-10 at 200, order 1 by 500).
    start, steps = gymnasium_episode(3, balancing)
    ours = replay(start, steps, torch.float64, teacher_forced=False)
    for t in range(150):
        np.testing.assert_allclose(ours[t].final_obs[0].numpy(), steps[t][1], rtol=0, atol=1e-10, err_msg=f"step {t}")


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), actions=st.lists(st.integers(0, 1), min_size=1, max_size=30))
def test_float32_agrees_with_gymnasium_observations_over_thirty_steps(seed, actions):
    # gymnasium hands out float32 observations of a float64 state; our float32 state is
    # rounded at every operation instead, so over 30 steps they agree to ~1e-5.
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=seed)
    state = torch.tensor(obs[None])
    elapsed = torch.zeros(1, dtype=torch.int64)
    for action in actions:
        obs, _, terminated, truncated, _ = env.step(action)
        result = cartpole.step(state, elapsed, torch.tensor([action]), state)
        np.testing.assert_allclose(result.final_obs[0].numpy(), obs, rtol=1e-4, atol=1e-5)
        if terminated or truncated:
            break
        state, elapsed = result.state, result.elapsed


def test_a_finished_environment_restarts_from_the_reset_state_and_the_others_go_on():
    state = torch.tensor([[0.0, 0.0, 0.21, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    elapsed = torch.tensor([3, 7, 499])
    reset = torch.full((3, 4), 0.01)
    out = cartpole.step(state, elapsed, torch.tensor([1, 0, 1]), reset)
    assert out.terminated.tolist() == [True, False, False]  # the pole is past 12° (0.209 rad)
    assert out.truncated.tolist() == [False, False, True]  # the 500th step
    assert out.elapsed.tolist() == [0, 8, 0]
    assert torch.equal(out.state[0], reset[0]) and torch.equal(out.state[2], reset[2])
    assert torch.equal(out.state[1], out.final_obs[1]) and not torch.equal(out.final_obs[0], reset[0])
    assert out.reward.tolist() == [1.0, 1.0, 1.0]


def test_initial_states_are_uniform_in_gymnasiums_interval():
    states = cartpole.initial_state(10_000, torch.Generator().manual_seed(0))
    assert states.shape == (10_000, 4) and states.min() >= -0.05 and states.max() < 0.05
    assert abs(float(states.mean())) < 2e-3 and 0.0285 < float(states.std()) < 0.0292  # 0.1/√12 = 0.0289


def test_the_object_steps_the_same_as_the_function():
    env = cartpole.CartPole(8, seed=1)
    start = env.state.clone()
    out = env.step(torch.ones(8, dtype=torch.int64))
    assert torch.equal(out.final_obs, cartpole.physics(start, torch.ones(8, dtype=torch.int64)))
