"""Policy: the actor-critic network, what it does with experience, and its flat weights.

In the RLlib paper the policy holds the model and the loss; the policy optimizer decides
where gradients are computed and applied. So everything here is local and synchronous:
`compute_gradients(batch)` returns g = ∇θ L(θ; B) as one flat float32 vector, and
`get_weights()` / `set_weights()` move θ as one flat float32 vector, so a parameter server
or an all-reduce moves a single buffer, never one message per tensor.

The loss is pluggable (`Loss`): PPO's clipped surrogate and A2C's policy gradient both take
the batch and the network's outputs and return a scalar plus statistics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical, Distribution, Normal

from .sample_batch import SampleBatch

Loss = Callable[["Policy", SampleBatch], tuple[torch.Tensor, dict[str, float]]]


@dataclass(frozen=True)
class PolicyConfig:
    hidden: tuple[int, ...] = (64, 64)  # widths of the shared MLP's hidden layers
    lr: float = 2.5e-4  # Adam step size α
    max_grad_norm: float = 0.5  # gradients are clipped to this global norm before a step
    seed: int = 0  # seeds the initial weights and the action sampler


class ActorCritic(nn.Module):
    """Separate MLP heads for π(a|s) and V(s), orthogonally initialised (as in CleanRL)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...]):
        super().__init__()
        self.actor = _mlp(obs_dim, hidden, act_dim, last_gain=0.01)
        self.critic = _mlp(obs_dim, hidden, 1, last_gain=1.0)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.actor(obs), self.critic(obs).squeeze(-1)


def _mlp(inputs: int, hidden: tuple[int, ...], outputs: int, last_gain: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [_init(nn.Linear(inputs, width), np.sqrt(2)), nn.Tanh()]
        inputs = width
    return nn.Sequential(*layers, _init(nn.Linear(inputs, outputs), last_gain))


def _init(layer: nn.Linear, gain: float) -> nn.Linear:
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


class Policy:
    """An actor-critic policy for a Discrete or Box action space."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, loss: Loss, config: PolicyConfig = PolicyConfig()):
        assert isinstance(observation_space, gym.spaces.Box), "observations must be a Box"
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        assert self.discrete or isinstance(action_space, gym.spaces.Box), "actions must be Discrete or Box"
        act_dim = int(action_space.n) if self.discrete else int(np.prod(action_space.shape))
        torch.manual_seed(config.seed)
        self.model = ActorCritic(int(np.prod(observation_space.shape)), act_dim, config.hidden)
        self.log_std = None if self.discrete else nn.Parameter(torch.zeros(act_dim))
        self.parameters = list(self.model.parameters()) + ([self.log_std] if self.log_std is not None else [])
        self.optimizer = torch.optim.Adam(self.parameters, lr=config.lr, eps=1e-5)
        self.config, self.loss = config, loss
        self.sampler = torch.Generator().manual_seed(config.seed)
        self.sizes = [p.numel() for p in self.parameters]

    def distribution(self, obs: torch.Tensor) -> tuple[Distribution, torch.Tensor]:
        """π(·|s) and V(s) for a batch of observations."""
        logits_or_mean, value = self.model(obs)
        if self.discrete:
            return Categorical(logits=logits_or_mean), value
        return Normal(logits_or_mean, self.log_std.exp()), value

    @torch.no_grad()
    def compute_actions(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sample a ~ π(·|s) for each row; return actions, log π(a|s) and V(s)."""
        dist, value = self.distribution(torch.as_tensor(obs, dtype=torch.float32))
        if self.discrete:
            probs = dist.probs
            actions = torch.multinomial(probs, 1, generator=self.sampler).squeeze(-1)
            logp = dist.log_prob(actions)
        else:
            noise = torch.randn(dist.mean.shape, generator=self.sampler)
            actions = dist.mean + dist.stddev * noise
            logp = dist.log_prob(actions).sum(-1)
        return actions.numpy(), logp.numpy(), value.numpy()

    @torch.no_grad()
    def compute_values(self, obs: np.ndarray) -> np.ndarray:
        return self.model.critic(torch.as_tensor(obs, dtype=torch.float32)).squeeze(-1).numpy()

    def compute_gradients(self, batch: SampleBatch) -> tuple[np.ndarray, dict[str, float]]:
        """g = ∇θ L(θ; B), flattened into one float32 vector, and the loss statistics."""
        self.optimizer.zero_grad(set_to_none=False)
        loss, stats = self.loss(self, batch)
        loss.backward()
        nn.utils.clip_grad_norm_(self.parameters, self.config.max_grad_norm)
        flat = torch.cat([p.grad.reshape(-1) for p in self.parameters])
        return flat.numpy().astype(np.float32, copy=True), stats

    def apply_gradients(self, grads: np.ndarray) -> None:
        """One optimizer step with the given flat gradient (e.g. a mean over workers)."""
        assert grads.shape == (sum(self.sizes),), f"expected {sum(self.sizes)} gradient entries, got {grads.shape}"
        flat = torch.as_tensor(grads, dtype=torch.float32)
        for p, g in zip(self.parameters, torch.split(flat, self.sizes)):
            p.grad = g.view_as(p).clone()
        self.optimizer.step()

    def learn_on_batch(self, batch: SampleBatch) -> dict[str, float]:
        grads, stats = self.compute_gradients(batch)
        self.apply_gradients(grads)
        return stats

    def get_weights(self) -> np.ndarray:
        """θ as one flat float32 vector (a copy)."""
        with torch.no_grad():
            return torch.cat([p.reshape(-1) for p in self.parameters]).numpy().astype(np.float32, copy=True)

    def set_weights(self, weights: np.ndarray) -> None:
        assert weights.shape == (sum(self.sizes),), f"expected {sum(self.sizes)} weights, got {weights.shape}"
        with torch.no_grad():
            flat = torch.as_tensor(weights, dtype=torch.float32)
            for p, w in zip(self.parameters, torch.split(flat, self.sizes)):
                p.copy_(w.view_as(p))
