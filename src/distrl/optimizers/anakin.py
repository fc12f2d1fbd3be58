"""Anakin (Hessel et al., 2021, "Podracer architectures"): act and learn in one program.

Anakin's premise is that nothing should cross between processes, or between host and
accelerator, inside the training loop. The environment is a tensor program too
(`distrl.envs.cartpole`), so one step of N environments, the policy that acts in them and
the PPO update that learns from them all run in the same process, on the same device, as a
handful of batched kernels:

    T steps of N environments and the actor            distrl.tensor_rollout.TensorRollout
    V(s_t), V(s_{t+1}) for all T·N rows at once        one forward pass of the critic
    Â = GAE(γ, λ) over the [T, N] block
    epochs × minibatches of PPO on the T·N rows

The paper replicates this program over the cores of a TPU with pmap and averages gradients
with pmean. Here R replicas are R processes (Ray actors), each with its own environments and
random streams; for each minibatch every replica computes g_r on its share, an all-reduce
(gloo, the pmean) gives each the mean ḡ, and each clips and applies the same ḡ to the same
θ: the replicas' parameters stay bit-identical without ever being sent. With R = 1 the whole
thing runs in the caller's process.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import gymnasium as gym
import numpy as np
import ray
import torch

from ..collective import Participant
from ..envs import cartpole
from ..losses import ppo_loss
from ..policy import Policy, PolicyConfig
from ..rollout_worker import EpisodeStats
from ..sample_batch import SampleBatch, gae
from ..tensor_rollout import TensorRollout, linear_layers, mlp
from .base import PolicyOptimizer, annealed

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

    def __init__(self, config: AnakinConfig, rank: int = 0, compile: bool = False):
        assert config.num_envs * config.unroll % config.minibatches == 0, "minibatches must divide N·T"
        self.config = config
        # The same seed everywhere: every replica starts from the same θ.
        self.policy = Policy(OBSERVATIONS, ACTIONS, ppo_loss(clip_value=config.clip_value), replace(config.policy, seed=config.seed))
        streams = config.seed + 1000 * (rank + 1)
        self.rollout = TensorRollout(linear_layers(self.policy.model.actor), config.num_envs, streams, compile)
        self.critic = linear_layers(self.policy.model.critic)
        self.rng = np.random.default_rng(streams)  # minibatch shuffling
        self.allreduce = None  # set for R > 1: turns this replica's gradient into the mean over replicas

    def round(self, lr: float) -> tuple[int, EpisodeStats, dict[str, float]]:
        """Act for T steps, then learn on them: rows, finished episodes, last loss statistics."""
        self.policy.set_lr(lr)
        batch, returns = self.sample()
        stats = self.learn(batch)
        returns = tuple(returns.tolist())
        # CartPole pays 1 per step, so an episode's length is its return.
        return len(batch), EpisodeStats(returns, tuple(int(r) for r in returns)), stats

    def sample(self) -> tuple[SampleBatch, torch.Tensor]:
        c = self.config
        columns, returns = self.rollout.run(c.unroll)
        with torch.inference_mode():  # V(s_t) and V(s_{t+1}) in one pass: one large matmul beats T small ones
            columns["values"], next_values = mlp(self.critic, torch.stack((columns["obs"], columns["next_obs"]))).squeeze(-1)
        # GAE over the [T, N] block: distrl's one definition, each column of envs a stream.
        advantages = torch.from_numpy(gae(columns["rewards"].numpy(), columns["values"].numpy(), next_values.numpy(),
                                          columns["terminateds"].numpy().astype(np.float32),
                                          columns["truncateds"].numpy().astype(np.float32), c.gamma, c.lam))
        rows = {name: columns[name].flatten(0, 1) for name in ("obs", "actions", "logp", "values")}
        # Inference tensors cannot be saved for backward; the learner gets ordinary ones.
        rows = {name: value.clone() for name, value in rows.items()}
        batch = SampleBatch({**rows, "advantages": advantages.flatten(),
                             "value_targets": (advantages + columns["values"]).flatten()})
        return batch, returns

    def learn(self, batch: SampleBatch) -> dict[str, float]:
        size = len(batch) // self.config.minibatches
        for _ in range(self.config.epochs):
            for minibatch in batch.minibatches(size, self.rng):
                if self.allreduce is None:
                    stats = self.policy.learn_on_batch(minibatch)
                else:
                    grads, stats = self.policy.compute_unclipped_gradients(minibatch)
                    self.policy.apply_gradients(self.policy.clip_gradients(self.allreduce(grads)))
        return stats

    def get_state(self) -> dict:
        r = self.rollout
        return {"policy": self.policy.get_state(), "rng": self.rng.bit_generator.state,
                "envs": (r.state.clone(), r.elapsed.clone(), r.running_return.clone(), r.generator.get_state())}

    def set_state(self, state: dict) -> None:
        self.policy.set_state(state["policy"])
        self.rng.bit_generator.state = state["rng"]
        r = self.rollout
        r.state, r.elapsed, r.running_return, generator = state["envs"]
        r.generator.set_state(generator)

    def get_weights(self) -> np.ndarray:
        return self.policy.get_weights()


class AnakinReplica(AnakinLearner, Participant):
    """A replica in its own process, and a rank of the gloo all-reduce its gradients go through."""

    def __init__(self, config: AnakinConfig, rank: int, replicas: int, compile: bool = False):
        AnakinLearner.__init__(self, config, rank, compile)
        Participant.__init__(self, rank, replicas)
        self.allreduce = self._mean

    def _mean(self, grads: np.ndarray) -> np.ndarray:
        self.flat = grads
        self.gloo_allreduce("mean")  # in place, over the replicas
        return self.flat


class Anakin(PolicyOptimizer):
    def __init__(self, config: AnakinConfig = AnakinConfig(), replicas: int = 1, compile: bool = False,
                 num_cpus_per_replica: float = 1.0):
        super().__init__()
        self.config, self.replicas = config, replicas
        if replicas == 1:
            self.learners = [AnakinLearner(config, compile=compile)]
        else:
            cls = ray.remote(num_cpus=num_cpus_per_replica)(AnakinReplica)
            self.learners = [cls.remote(config, r, replicas, compile) for r in range(replicas)]
            address, port = ray.get(self.learners[0].gloo_address.remote())  # rank 0 hosts the rendezvous
            ray.get([r.gloo_init.remote(address, port, 60.0) for r in self.learners])

    def step(self) -> dict[str, float]:
        lr = annealed(self.config.policy.lr, self.stats.env_steps, self.config.anneal_steps)
        with self.timed("learn_s"):  # acting and learning are one program: the driver only waits
            rounds = self._call("round", lr)
        for rows, episodes, _ in rounds:
            self.stats.add_experience(rows, episodes)
        self.stats.updates += self.config.epochs * self.config.minibatches
        return rounds[0][2]

    def _call(self, method: str, *args):
        if self.replicas == 1:
            return [getattr(self.learners[0], method)(*args)]
        return ray.get([getattr(r, method).remote(*args) for r in self.learners])

    def weights(self) -> np.ndarray:
        return self._call("get_weights")[0]

    def replica_weights(self) -> list[np.ndarray]:
        """θ as each replica holds it (they should be bit-identical)."""
        return self._call("get_weights")

    def get_state(self) -> dict:
        return {"replicas": self._call("get_state")}

    def set_state(self, state: dict) -> None:
        if self.replicas == 1:
            self.learners[0].set_state(state["replicas"][0])
        else:
            ray.get([r.set_state.remote(s) for r, s in zip(self.learners, state["replicas"], strict=True)])

    def stop(self) -> None:
        if self.replicas > 1:
            for r in self.learners:
                ray.kill(r)
