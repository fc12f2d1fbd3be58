"""CartPole-v1 for N environments at once, as tensors on any torch device.

Podracer's Anakin keeps the environment inside the program that acts and learns, so it must
be a function of tensors: one call steps all N carts, with no Python per environment. This
is gymnasium's CartPole-v1 (Barto, Sutton and Anderson's equations, Euler integration with
τ = 0.02 s, ±10 N, termination past 12° or 2.4 m, truncation at 500 steps, reward 1 on every
step including the last) with gymnasium's numbers, rewritten for a batch:

    θ̈ = (g sin θ − cos θ · f̃) / (l (4/3 − m_p cos² θ / M)),   f̃ = (F + m_p l θ̇² sin θ) / M
    ẍ = f̃ − m_p l θ̈ cos θ / M,                                 M = m_c + m_p

A finished environment is reset within the step that ends it (gymnasium's "same-step"
autoreset): the step returns the new episode's first observation, and the state it ended in
separately as `final_obs`, so a learner can bootstrap V(s_{t+1}) after a truncation.

The state stays in the caller's dtype. gymnasium computes in float64 and hands out float32
observations. The tests compare float64 steps taken from gymnasium's own states (equal to
a few ulps: the constants here are folded differently), and whole float64 trajectories for
as long as the chaotic dynamics leave those ulps small.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

GRAVITY, CART_MASS, POLE_MASS, HALF_LENGTH, FORCE, TAU = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
TOTAL_MASS = CART_MASS + POLE_MASS
POLE_MASS_LENGTH = POLE_MASS * HALF_LENGTH
THETA_LIMIT, X_LIMIT = 12 * 2 * math.pi / 360, 2.4
MAX_STEPS = 500  # CartPole-v1's TimeLimit
OBS_DIM, NUM_ACTIONS = 4, 2
LIMITS = torch.tensor([X_LIMIT, THETA_LIMIT])


class Step(NamedTuple):
    state: torch.Tensor  # [N, 4] x, ẋ, θ, θ̇ after the step (a reset one where the episode ended)
    elapsed: torch.Tensor  # [N] steps taken in the current episode
    reward: torch.Tensor  # [N] 1 for every step
    terminated: torch.Tensor  # [N] bool: the pole fell or the cart left the track
    truncated: torch.Tensor  # [N] bool: the episode's 500th step (set even when it also terminated, as gymnasium does)
    final_obs: torch.Tensor  # [N, 4] the state the step reached, before any reset


def initial_state(num_envs: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu",
                  dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Each of x, ẋ, θ, θ̇ uniform in [−0.05, 0.05), as gymnasium's reset draws them."""
    uniform = torch.rand(num_envs, OBS_DIM, generator=generator, device=device, dtype=dtype)
    return uniform * 0.1 - 0.05


def physics(state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """One Euler step of the cart and pole for each row; `action` is 0 (push left) or 1.

    Written for few tensor operations, not for the fewest flops: at the batch sizes an
    actor steps, each eager torch call costs microseconds of dispatch whatever its size, so
    the constants are folded (F/M, m_p l/M) and products are fused with `addcmul`. This
    rounds differently from gymnasium's order of operations, by an ulp per step in float64.
    """
    x_dot, theta, theta_dot = state[:, 1], state[:, 2], state[:, 3]
    cos, sin = torch.cos(theta), torch.sin(theta)
    push = torch.where(action.bool(), FORCE, -FORCE).to(state.dtype) / TOTAL_MASS  # ±10 is exact in any dtype; F/M is not
    temp = torch.addcmul(push, theta_dot.square(), sin, value=POLE_MASS_LENGTH / TOTAL_MASS)  # f̃ = F/M + m_p l θ̇² sin θ / M
    denominator = torch.addcmul(torch.full_like(cos, HALF_LENGTH * 4.0 / 3.0), cos, cos, value=-HALF_LENGTH * POLE_MASS / TOTAL_MASS)
    theta_acc = torch.addcmul(sin * GRAVITY, cos, temp, value=-1.0) / denominator
    x_acc = torch.addcmul(temp, theta_acc, cos, value=-POLE_MASS_LENGTH / TOTAL_MASS)
    return torch.add(state, torch.stack((x_dot, x_acc, theta_dot, theta_acc), -1), alpha=TAU)


def step(state: torch.Tensor, elapsed: torch.Tensor, action: torch.Tensor, reset_state: torch.Tensor) -> Step:
    """Advance every environment one step; where one ends, start it again from `reset_state`'s row.

    `reset_state` is drawn by the caller (`initial_state`) so this function stays pure: the
    same inputs give the same outputs, which is what lets torch.compile trace it and lets
    replicas reproduce each other.
    """
    reached = physics(state, action)
    terminated = (reached[:, 0::2].abs() > LIMITS.to(reached)).any(-1)  # |x| > 2.4 or |θ| > 12°
    elapsed = elapsed + 1
    truncated = elapsed >= MAX_STEPS
    done = terminated | truncated
    return Step(
        state=torch.where(done.unsqueeze(-1), reset_state, reached),
        elapsed=torch.where(done, 0, elapsed),
        reward=torch.ones_like(elapsed, dtype=state.dtype),
        terminated=terminated,
        truncated=truncated,
        final_obs=reached,
    )


class CartPole:
    """N CartPole-v1 environments with their state, for code that prefers an object."""

    def __init__(self, num_envs: int, seed: int = 0, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.num_envs, self.device, self.dtype = num_envs, device, dtype
        self.state = initial_state(num_envs, self.generator, device, dtype)
        self.elapsed = torch.zeros(num_envs, dtype=torch.int64, device=device)

    def step(self, action: torch.Tensor) -> Step:
        out = step(self.state, self.elapsed, action, initial_state(self.num_envs, self.generator, self.device, self.dtype))
        self.state, self.elapsed = out.state, out.elapsed
        return out
