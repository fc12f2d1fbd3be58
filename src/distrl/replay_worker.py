"""ReplayWorker: the policy evaluator of value-based learning (DQN, Ape-X).

Like `RolloutWorker` it owns a gymnasium vector environment and a copy of the network and
returns experience on request, but what it returns is made for a replay buffer: each row
is an n-step transition (obs, action, R_t, the state to bootstrap from and its discount;
see `distrl.q_learning.n_step`), whole in itself, so rows can be stored and sampled in
any order. It acts ε-greedily: with probability ε a uniformly random action, otherwise
argmax_a Q(s, a).

Ape-X's actors also compute each row's first priority, |δ| under their own copy of the
network (which serves as online and target network both: an actor holds no target), so a
new row enters prioritized replay with its own surprise rather than the largest one seen.

The same class runs in the learner's process (DQN) or as a Ray actor (Ape-X).
"""

from __future__ import annotations

import os
import pickle
import time
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import ray
import torch
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from .q_learning import QNetwork, double_dqn_loss, n_step
from .rollout_worker import EpisodeStats, RolloutWorker
from .sample_batch import SampleBatch


@dataclass(frozen=True)
class ReplayWorkerConfig:
    env_id: str = "CartPole-v1"
    num_envs: int = 4  # sub-environments stepped together (one batched forward pass per step)
    fragment_length: int = 32  # steps per sub-environment per sample() call
    gamma: float = 0.99
    n_step: int = 3  # n of the n-step return
    hidden: tuple[int, ...] = (64, 64)
    dueling: bool = False
    priorities: bool = False  # compute each row's first priority (Ape-X)
    seed: int = 0  # worker i uses seed + 1000 · i for its environments and its ε draws
    # Added to the process's niceness: where processes outnumber cores, a nicer evaluator
    # yields its core to the replay shards and the learner, which the pipeline waits on.
    niceness: int = 0
    env_kwargs: dict[str, Any] = field(default_factory=dict)  # passed to gymnasium.make_vec


class ReplayWorker:
    """An ε-greedy evaluator returning n-step transitions."""

    def __init__(self, config: ReplayWorkerConfig = ReplayWorkerConfig(), worker_index: int = 0, epsilon: float = 1.0,
                 weights: np.ndarray | None = None):
        """`weights`: the θ to start from (by default the one the config's seed initialises)."""
        self.config, self.index, self.epsilon = config, worker_index, epsilon
        if config.niceness:
            os.nice(config.niceness)
        seed = config.seed + 1000 * worker_index
        self.env = gym.make_vec(config.env_id, num_envs=config.num_envs, vectorization_mode="sync",
                                vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
                                **config.env_kwargs)
        torch.manual_seed(config.seed)  # every worker and the learner start from the same θ
        self.q = QNetwork(int(np.prod(self.env.single_observation_space.shape)), int(self.env.single_action_space.n),
                          config.hidden, config.dueling)
        if weights is not None:
            self.set_weights(weights)
        self.rng = np.random.default_rng(seed)
        self.obs, _ = self.env.reset(seed=seed)
        self.episode_return = np.zeros(config.num_envs)
        self.episode_length = np.zeros(config.num_envs, dtype=np.int64)
        self.busy_s = 0.0  # time spent in sample(): the evaluator's share of the pipeline's occupancy

    def set_epsilon(self, epsilon: float) -> None:
        self.epsilon = epsilon

    def act(self, obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            greedy = self.q(torch.as_tensor(obs, dtype=torch.float32)).argmax(1).numpy()
        explore = self.rng.random(len(obs)) < self.epsilon
        return np.where(explore, self.rng.integers(0, self.env.single_action_space.n, len(obs)), greedy)

    def sample(self) -> tuple[SampleBatch, EpisodeStats]:
        """fragment_length × num_envs n-step rows, env-major, and the episodes that ended."""
        start = time.perf_counter()
        T, N = self.config.fragment_length, self.config.num_envs
        obs = np.zeros((T, N, *self.env.single_observation_space.shape), np.float32)
        next_obs, actions = np.zeros_like(obs), np.zeros((T, N), np.int64)
        rewards, terminateds, truncateds = np.zeros((T, N), np.float32), np.zeros((T, N), bool), np.zeros((T, N), bool)
        for t in range(T):
            obs[t] = self.obs
            actions[t] = self.act(self.obs)
            self.obs, rewards[t], terminateds[t], truncateds[t], infos = self.env.step(actions[t])
            next_obs[t] = self.obs
            for env in np.flatnonzero(terminateds[t] | truncateds[t]):  # SAME_STEP: the true last state is in infos
                next_obs[t, env] = infos["final_obs"][env]
        returns, last, discounts = n_step(rewards, terminateds, truncateds, self.config.gamma, self.config.n_step)
        bootstrap_obs = next_obs[last, np.arange(N)]
        # RolloutWorker's bookkeeping of episodes across calls, on this worker's own counters.
        episodes = RolloutWorker._count_episodes(self, rewards, terminateds | truncateds)
        columns = {"obs": obs, "actions": actions, "returns": returns, "bootstrap_obs": bootstrap_obs, "discounts": discounts}
        batch = SampleBatch({k: np.swapaxes(v, 0, 1).reshape(T * N, *v.shape[2:]) for k, v in columns.items()})
        self.busy_s += time.perf_counter() - start
        return batch, episodes

    def priorities(self, batch: SampleBatch) -> np.ndarray:
        """|δ| of each row under this worker's θ, as online and target network both."""
        start = time.perf_counter()
        with torch.no_grad():
            _, td_errors, _ = double_dqn_loss(self.q, self.q, batch)
        self.busy_s += time.perf_counter() - start
        return np.abs(td_errors)

    def sample_with_episodes(self) -> tuple[SampleBatch, EpisodeStats]:
        return self.sample()

    @ray.method(num_returns=3)
    def sample_for_replay(self) -> tuple[SampleBatch, np.ndarray | None, dict]:
        """A batch, its priorities (None unless the config asks for them) and a small report
        (rows, episodes, busy time so far): three objects, so the driver can pass the first
        two on to a replay shard by reference without fetching them."""
        batch, episodes = self.sample()
        priorities = self.priorities(batch) if self.config.priorities else None
        return batch, priorities, {"rows": len(batch), "episodes": episodes, "busy_s": self.busy_s}

    def get_weights(self) -> np.ndarray:
        return parameters_to_vector(self.q.parameters()).detach().numpy().copy()

    def set_weights(self, weights: np.ndarray) -> None:
        vector_to_parameters(torch.as_tensor(weights), self.q.parameters())

    def get_state(self) -> dict:
        """What the next sample depends on: θ, ε, the environments, the random generator and
        the episodes in progress."""
        return {"weights": self.get_weights(), "epsilon": self.epsilon, "envs": pickle.dumps(self.env.envs),
                "obs": self.obs.copy(), "rng": self.rng.bit_generator.state,
                "episode_return": self.episode_return.copy(), "episode_length": self.episode_length.copy()}

    def set_state(self, state: dict) -> None:
        self.set_weights(state["weights"])
        self.epsilon, self.env.envs, self.obs = state["epsilon"], pickle.loads(state["envs"]), state["obs"].copy()
        self.rng.bit_generator.state = state["rng"]
        self.episode_return, self.episode_length = state["episode_return"].copy(), state["episode_length"].copy()
