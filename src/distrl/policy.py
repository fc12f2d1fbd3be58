"""Policy: the actor-critic network, what it does with experience, and its flat weights.

In the RLlib paper the policy holds the model and the loss; the policy optimizer decides
where gradients are computed and applied. So everything here is local and synchronous:
`compute_gradients(batch)` returns g = ∇θ L(θ; B) as one flat float32 vector, and
`get_weights()` / `set_weights()` move θ as one flat float32 vector, so a parameter server
or an all-reduce moves a single buffer, never one message per tensor.

A policy computes on one torch device (`device`, or `to(device)` later): the CPU, where
rollout workers act, or a GPU, where a central learner learns. Observations, actions,
weights and state (`get_state`) are host memory whatever the device, so a checkpoint taken
on a GPU restores on a CPU; the unclipped gradient, its clip and the gradient applied may
stay on the device, so gradients all-reduced there (NCCL) never come back to the host. The
action sampler's random stream is drawn on the CPU on every device: a policy acts alike
wherever it computes.

The loss is pluggable (`Loss`): PPO's clipped surrogate and A2C's policy gradient both take
the batch and the network's outputs and return a scalar plus statistics.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.distributions import Categorical, Distribution, Normal

from .sample_batch import SampleBatch

_HOST = torch.device("cpu")  # where the action sampler draws, whatever the policy's device
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

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, loss: Loss, config: PolicyConfig = PolicyConfig(),
                 device: torch.device | str = "cpu"):
        assert isinstance(observation_space, gym.spaces.Box), "observations must be a Box"
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        assert self.discrete or isinstance(action_space, gym.spaces.Box), "actions must be Discrete or Box"
        act_dim = int(action_space.n) if self.discrete else int(np.prod(action_space.shape))
        torch.manual_seed(config.seed)
        self.model = ActorCritic(int(np.prod(observation_space.shape)), act_dim, config.hidden)
        self.log_std = None if self.discrete else nn.Parameter(torch.zeros(act_dim))
        self.parameters = list(self.model.parameters()) + ([self.log_std] if self.log_std is not None else [])
        # foreach: one fused update over all tensors instead of a Python loop per tensor.
        self.optimizer = torch.optim.Adam(self.parameters, lr=config.lr, eps=1e-5, foreach=True)
        self.config, self.loss = config, loss
        self.device = torch.device("cpu")
        self.sampler = torch.Generator().manual_seed(config.seed)
        self.sizes = [p.numel() for p in self.parameters]
        self._actor, self._critic = _linear_layers(self.model.actor), _linear_layers(self.model.critic)
        self.to(device)

    def to(self, device: torch.device | str) -> "Policy":
        """Compute on `device` from now on: θ, its gradients and the optimizer's moments move
        there. The Parameter objects stay the same ones (the optimizer and the layer lists
        hold them), only their data moves."""
        device = torch.device(device)
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        if device == self.device:
            return self
        moments = self.optimizer.state_dict()
        with torch.no_grad():
            for p in self.parameters:
                p.data = p.data.to(device)
                if p.grad is not None:
                    p.grad = p.grad.to(device)
        self.optimizer.load_state_dict(moments)  # puts each moment where its parameter now is
        self.device = device
        return self

    def distribution(self, obs: torch.Tensor) -> tuple[Distribution, torch.Tensor]:
        """π(·|s) and V(s) for a batch of observations."""
        logits_or_mean, value = self.model(obs)
        # No argument validation: the network's outputs are valid by construction, and the
        # checks cost a tenth of a minibatch update at these sizes.
        if self.discrete:
            return Categorical(logits=logits_or_mean, validate_args=False), value
        return Normal(logits_or_mean, self.log_std.exp(), validate_args=False), value

    # Sampling runs once per environment step at batch sizes of 1 to a few rows, where each
    # torch call costs microseconds of dispatch and nn.Module.__call__ and a Distribution
    # object cost several more. So it calls the layers' functions directly on the same
    # parameter tensors (set_weights and the optimizer update them in place) and writes the
    # two log-densities out; `distribution()` stays the one definition the losses use, and
    # tests check both agree.
    @torch.inference_mode()
    def compute_actions(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sample a ~ π(·|s) for each row; return actions, log π(a|s) and V(s)."""
        x = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        out, value = _forward(self._actor, x), _forward(self._critic, x).squeeze(-1)
        if self.discrete:
            logp_all = torch.log_softmax(out, -1)
            # Gumbel-max: argmax(log π + G), G = −log E with E ~ Exp(1), is a draw from π
            # (a third of torch.multinomial's time at one row).
            gumbel = torch.empty_like(logp_all, device=_HOST).exponential_(generator=self.sampler).log_().neg_()
            gumbel = gumbel.to(self.device)  # (no copy on the CPU)
            actions = (logp_all + gumbel).argmax(-1, keepdim=True)
            logp = logp_all.gather(-1, actions).squeeze(-1)
            actions = actions.squeeze(-1)
        else:
            noise = torch.randn(out.shape, generator=self.sampler).to(self.device)  # (no copy on the CPU)
            actions = out + self.log_std.exp() * noise
            # log N(a; μ, σ) summed over dimensions, with a − μ = σ·noise.
            logp = (-0.5 * noise.square() - self.log_std - 0.5 * np.log(2 * np.pi)).sum(-1)
        return actions.numpy(force=True), logp.numpy(force=True), value.numpy(force=True)

    @torch.inference_mode()
    def compute_values(self, obs: np.ndarray) -> np.ndarray:
        """V(s) for each row."""
        x = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        return _forward(self._critic, x).squeeze(-1).numpy(force=True)

    def compute_gradients(self, batch: SampleBatch) -> tuple[np.ndarray, dict[str, float]]:
        """g = ∇θ L(θ; B), clipped to the max global norm, flattened into one float32 vector,
        and the loss statistics."""
        stats = self._backward(batch)
        nn.utils.clip_grad_norm_(self.parameters, self.config.max_grad_norm, foreach=True)
        return self._flat_grad().numpy(force=True), stats

    def compute_unclipped_gradients(self, batch: SampleBatch) -> tuple[torch.Tensor, dict[str, float]]:
        """g = ∇θ L(θ; B) as the loss gives it, as one flat tensor on the policy's device, for
        a caller that combines gradients first and clips the combination (DD-PPO clips the
        mean over ranks: `clip_gradients`). `.numpy(force=True)` brings it to the host (on the
        CPU: a view, no copy)."""
        stats = self._backward(batch)
        return self._flat_grad(), stats

    def clip_gradients(self, grads: np.ndarray | torch.Tensor) -> torch.Tensor:
        """g · min(1, c / (‖g‖₂ + 10⁻⁶)), c = max_grad_norm: torch's global-norm clip, on a flat g,
        answered where g is. In host memory the norm is summed in float64 by numpy in a fixed
        order, so equal inputs on different processes give bit-equal outputs whatever their
        thread counts (tested); on a GPU it is one float64 reduction on the device, with no
        round trip to the host, alike on ranks with the same GPU model."""
        grads = torch.as_tensor(grads)
        if grads.device.type == "cpu":
            norm = float(np.sqrt(np.sum(np.square(grads.numpy(), dtype=np.float64))))
            return grads * np.float32(min(1.0, self.config.max_grad_norm / (norm + 1e-6)))
        norm = torch.linalg.vector_norm(grads, dtype=torch.float64)
        return grads * (self.config.max_grad_norm / (norm + 1e-6)).clamp(max=1.0).float()

    def _backward(self, batch: SampleBatch) -> dict[str, float]:
        """Gradients of the loss into each parameter's .grad, unclipped."""
        self.optimizer.zero_grad(set_to_none=False)
        loss, stats = self.loss(self, batch)
        loss.backward()
        return stats

    def _flat_grad(self) -> torch.Tensor:
        return torch.cat([p.grad.reshape(-1) for p in self.parameters])  # new memory: no copy needed

    def apply_gradients(self, grads: np.ndarray | torch.Tensor) -> None:
        """One optimizer step with the given flat gradient (e.g. a mean over workers), from
        host memory or already on the device."""
        assert tuple(grads.shape) == (sum(self.sizes),), f"expected {sum(self.sizes)} gradient entries, got {tuple(grads.shape)}"
        flat = torch.as_tensor(grads, dtype=torch.float32, device=self.device)
        for p, g in zip(self.parameters, torch.split(flat, self.sizes)):
            p.grad = g.view_as(p).clone()
        self.optimizer.step()

    def learn_on_batch(self, batch: SampleBatch) -> dict[str, float]:
        """compute_gradients then apply_gradients, without flattening in between."""
        stats = self._backward(batch)
        nn.utils.clip_grad_norm_(self.parameters, self.config.max_grad_norm, foreach=True)
        self.optimizer.step()
        return stats

    def set_lr(self, lr: float) -> None:
        """The optimizer's step size from now on (for schedules such as linear annealing)."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def get_state(self) -> dict:
        """Everything the next update and the next action depend on: θ, the optimizer's
        moments and step counts, and the action sampler's random state."""
        moments = self.optimizer.state_dict()
        # Copies in host memory: state_dict() hands out the optimizer's live moment tensors,
        # on the policy's device (`set_state` puts them back wherever the parameters are).
        on_host = {"state": {i: {name: value.to("cpu", copy=True) if torch.is_tensor(value) else value
                                 for name, value in moment.items()} for i, moment in moments["state"].items()},
                   "param_groups": copy.deepcopy(moments["param_groups"])}
        return {"weights": self.get_weights(), "optimizer": on_host, "sampler": self.sampler.get_state()}

    def set_state(self, state: dict) -> None:
        self.set_weights(state["weights"])
        # A copy: load_state_dict keeps tensors already where the parameters are, and the
        # steps that follow update them in place, which would change the caller's state.
        self.optimizer.load_state_dict(copy.deepcopy(state["optimizer"]))
        self.sampler.set_state(state["sampler"])

    def get_weights(self) -> np.ndarray:
        """θ as one flat float32 vector (a copy: `torch.cat` writes new memory)."""
        with torch.no_grad():
            return torch.cat([p.reshape(-1) for p in self.parameters]).numpy(force=True)

    def set_weights(self, weights: np.ndarray) -> None:
        assert weights.shape == (sum(self.sizes),), f"expected {sum(self.sizes)} weights, got {weights.shape}"
        with torch.no_grad():
            flat = torch.as_tensor(weights, dtype=torch.float32, device=self.device)
            for p, w in zip(self.parameters, torch.split(flat, self.sizes)):
                p.copy_(w.view_as(p))


def _linear_layers(mlp: nn.Sequential) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(m.weight, m.bias) for m in mlp if isinstance(m, nn.Linear)]


def _forward(layers: list[tuple[torch.Tensor, torch.Tensor]], x: torch.Tensor) -> torch.Tensor:
    """The MLP of `_mlp` as plain calls: tanh after every layer but the last."""
    for weight, bias in layers[:-1]:
        x = torch.tanh(F.linear(x, weight, bias))
    return F.linear(x, *layers[-1])
