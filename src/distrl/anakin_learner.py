"""Anakin's program (Hessel et al., 2021, "Podracer architectures"): act and learn in one place.

Anakin's premise is that nothing should cross between processes, or between host and
accelerator, inside the training loop. The environment is a tensor program too
(`distrl.envs.cartpole`), so one step of N environments, the policy that acts in them and
the PPO update that learns from them all run in the same process, on the same device, as a
handful of batched kernels:

    T steps of N environments and the actor            distrl.tensor_rollout.TensorRollout
    V(s_t), V(s_{t+1}) for all T·N rows at once        one forward pass of the critic
    Â = GAE(γ, λ) over the [T, N] block                 `gae_tensor`, on the same device
    epochs × minibatches of PPO on the T·N rows

This module is one replica of that program, on any torch device, and needs neither Ray nor
a second process. `distrl.optimizers.anakin` replicates it over processes, the paper's
pmap, with gradients averaged by an all-reduce, the paper's pmean.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import gymnasium as gym
import numpy as np
import torch

from .envs import cartpole
from .losses import ppo_loss
from .policy import Policy, PolicyConfig
from .sample_batch import SampleBatch
from .tensor_rollout import TensorRollout, linear_layers, mlp

OBSERVATIONS = gym.spaces.Box(-np.inf, np.inf, (cartpole.OBS_DIM,), np.float32)
ACTIONS = gym.spaces.Discrete(cartpole.NUM_ACTIONS)


@dataclass(frozen=True)
class AnakinConfig:
    num_envs: int = 16  # N environments per replica, stepped as one batch
    unroll: int = 32  # T steps per environment per update round
    epochs: int = 4
    minibatches: int = 4  # per epoch; with R replicas a minibatch is R shares of N·T/minibatches rows, one per replica
    gamma: float = 0.99
    lam: float = 0.95
    anneal_steps: int | None = None  # env steps (all replicas) over which the step size falls to 0
    seed: int = 0  # initial weights (shared by all replicas); replica r's streams use seed + 1000·(r+1)
    clip_value: float | None = 0.2  # PPO's value clipping (ppo_loss), as CleanRL and PureJaxRL use it
    policy: PolicyConfig = PolicyConfig()


class AnakinLearner:
    """One replica: its environments, its copy of the policy, acting and learning in turn."""

    def __init__(self, config: AnakinConfig, rank: int = 0, compile: bool = False, device: torch.device | str = "cpu"):
        assert config.num_envs * config.unroll % config.minibatches == 0, "minibatches must divide N·T"
        self.config, self.device = config, torch.device(device)
        # The same seed everywhere: every replica starts from the same θ.
        self.policy = Policy(OBSERVATIONS, ACTIONS, ppo_loss(clip_value=config.clip_value),
                             replace(config.policy, seed=config.seed), self.device)
        streams = config.seed + 1000 * (rank + 1)
        self.rollout = TensorRollout(linear_layers(self.policy.model.actor), config.num_envs, streams, compile, self.device)
        self.critic = linear_layers(self.policy.model.critic)
        # Minibatch shuffling on the device: on an H200, numpy's permutation of the T·N rows
        # on the host was most of the learning time at N ≥ 65,536 (bench/anakin_gpu.py).
        self.shuffle = torch.Generator(device=self.device).manual_seed(streams)
        self.allreduce = None  # set for R > 1: turns this replica's gradient (on the device) into the mean over replicas

    def round(self, lr: float) -> tuple[int, tuple[float, ...], dict[str, float]]:
        """Act for T steps, then learn on them: rows, returns of the episodes that ended, last loss statistics."""
        self.policy.set_lr(lr)
        batch, returns = self.sample()
        stats = self.learn(batch)
        return len(batch), tuple(returns.tolist()), stats

    def sample(self) -> tuple[SampleBatch, torch.Tensor]:
        c = self.config
        columns, returns = self.rollout.run(c.unroll)
        with torch.inference_mode():  # V(s_t) and V(s_{t+1}) in one pass: one large matmul beats T small ones
            columns["values"], next_values = mlp(self.critic, torch.stack((columns["obs"], columns["next_obs"]))).squeeze(-1)
            advantages = gae_tensor(columns["rewards"], columns["values"], next_values, columns["terminateds"],
                                    columns["truncateds"], c.gamma, c.lam)
        rows = {name: columns[name].flatten(0, 1) for name in ("obs", "actions", "logp", "values")}
        rows |= {"advantages": advantages.flatten(), "value_targets": (advantages + columns["values"]).flatten()}
        # Inference tensors cannot be saved for backward; the learner gets ordinary ones.
        return SampleBatch({name: value.clone() for name, value in rows.items()}), returns

    def learn(self, batch: SampleBatch) -> dict[str, float]:
        size = len(batch) // self.config.minibatches
        for _ in range(self.config.epochs):
            order = torch.randperm(len(batch), generator=self.shuffle, device=self.device)
            for start in range(0, len(batch), size):
                minibatch = batch.take(order[start : start + size])
                if self.allreduce is None:
                    stats = self.policy.learn_on_batch(minibatch)
                else:
                    grads, stats = self.policy.compute_unclipped_gradients(minibatch)
                    self.policy.apply_gradients(self.policy.clip_gradients(self.allreduce(grads)))
        return stats

    def get_state(self) -> dict:
        """In host memory, as a Policy's state is, so a replica's state reaches a driver without
        a GPU. The random streams are of the device's own kind (torch's CPU and CUDA generators
        differ), so it restores on the same kind of device."""
        r = self.rollout
        envs = tuple(t.to("cpu", copy=True) for t in (r.state, r.elapsed, r.running_return))
        return {"policy": self.policy.get_state(), "shuffle": self.shuffle.get_state(),
                "envs": (*envs, r.generator.get_state())}

    def set_state(self, state: dict) -> None:
        self.policy.set_state(state["policy"])
        self.shuffle.set_state(state["shuffle"])
        r = self.rollout
        *envs, generator = state["envs"]
        with torch.inference_mode():  # the kind of tensor the rollout's own are (a compiled step sees one kind)
            r.state, r.elapsed, r.running_return = (t.to(self.device, copy=True) for t in envs)
        r.generator.set_state(generator)

    def get_weights(self) -> np.ndarray:
        return self.policy.get_weights()


def gae_tensor(rewards: torch.Tensor, values: torch.Tensor, next_values: torch.Tensor, terminateds: torch.Tensor,
               truncateds: torch.Tensor, gamma: float, lam: float) -> torch.Tensor:
    """`distrl.sample_batch.gae` on torch tensors, so the advantages never leave the device.

    The same recursion in the same order and precision (float32 deltas, float64 carries and
    running sum), so on the same inputs it gives the numpy definition's values bit for bit (tested)."""
    deltas = rewards + gamma * (1.0 - terminateds.float()) * next_values - values
    carry = gamma * lam * (1.0 - torch.logical_or(terminateds, truncateds).double())
    advantages = torch.empty_like(deltas, dtype=torch.float64)
    running = torch.zeros_like(deltas[0], dtype=torch.float64)
    for t in reversed(range(len(deltas))):
        running = deltas[t] + carry[t] * running
        advantages[t] = running
    return advantages.float()
