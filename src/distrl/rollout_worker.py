"""RolloutWorker: the RLlib paper's policy evaluator.

It owns a gymnasium vector environment and a copy of the policy, and on request returns a
fixed number of steps of experience as a SampleBatch with advantages computed. The same
class runs in-process (the "local" worker) and as a Ray actor (`ray.remote(RolloutWorker)`),
so the driver composes evaluators without knowing where they run. Its interface is the
narrow one the policy optimizers use: sample (with its episodes), compute_gradients (or both
in one call), apply_gradients, get_weights, set_weights, and get_state/set_state for
checkpoints.

Episode bookkeeping: each sub-environment's running return and length are kept across
`sample()` calls, and each episode is reported once, in the batch in which it ends.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import ray

from .losses import ppo_loss
from .policy import Policy, PolicyConfig
from .sample_batch import SampleBatch, gae


@dataclass(frozen=True)
class WorkerConfig:
    env_id: str = "CartPole-v1"  # a gymnasium environment id
    num_envs: int = 4  # sub-environments stepped together (vectorized inference)
    fragment_length: int = 128  # steps per sub-environment per sample() call
    gamma: float = 0.99  # discount γ
    lam: float = 0.95  # GAE λ
    seed: int = 0  # base seed; worker i uses seed + 1000 · i for its environments
    env_kwargs: dict[str, Any] = field(default_factory=dict)  # passed to gymnasium.make_vec
    policy: PolicyConfig = PolicyConfig()


@dataclass(frozen=True)
class EpisodeStats:
    """Episodes completed within one batch."""

    returns: tuple[float, ...]
    lengths: tuple[int, ...]


class RolloutWorker:
    """A policy evaluator: environments plus a policy copy, sampling on request."""

    def __init__(self, config: WorkerConfig = WorkerConfig(), worker_index: int = 0, loss=None):
        self.config, self.index = config, worker_index
        seed = config.seed + 1000 * worker_index  # seeds derived per worker
        self.env = gym.make_vec(
            config.env_id,
            num_envs=config.num_envs,
            vectorization_mode="sync",
            # SAME_STEP: a finished sub-env is reset within the step that ends it, and the true
            # final observation comes in infos, so every row is a real transition.
            vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
            **config.env_kwargs,
        )
        self.policy = Policy(
            self.env.single_observation_space,
            self.env.single_action_space,
            loss or ppo_loss(),
            PolicyConfig(**{**config.policy.__dict__, "seed": seed}),
        )
        self.obs, _ = self.env.reset(seed=seed)
        self.episode_return = np.zeros(config.num_envs)
        self.episode_length = np.zeros(config.num_envs, dtype=np.int64)
        self.last_episodes = EpisodeStats((), ())

    def sample(self) -> SampleBatch:
        """fragment_length × num_envs steps, flattened env-major, with advantages."""
        T, N = self.config.fragment_length, self.config.num_envs
        obs_shape = self.env.single_observation_space.shape
        obs = np.zeros((T, N, *obs_shape), np.float32)  # (steps, envs, obs_dim)
        actions = np.zeros((T, N, *self.env.single_action_space.shape), self.env.single_action_space.dtype)
        rewards, logp, values = (np.zeros((T, N), np.float32) for _ in range(3))
        terminateds, truncateds = np.zeros((T, N), bool), np.zeros((T, N), bool)
        final_at, final_obs = [], []  # (t, env) where an episode ended, and its last observation
        # One forward pass per step: V(s_t+1) is the next step's V(s), so it is not computed
        # twice; only where an episode ends (the next row starts a new one) and after the last
        # step is the next state's value computed on its own, below.
        for t in range(T):
            obs[t] = self.obs
            actions[t], logp[t], values[t] = self.policy.compute_actions(self.obs)
            self.obs, rewards[t], terminateds[t], truncateds[t], infos = self.env.step(actions[t])
            done = terminateds[t] | truncateds[t]
            if done.any():
                for env in np.flatnonzero(done):
                    final_at.append((t, env))
                    final_obs.append(infos["final_obs"][env])
        next_obs, next_values = np.empty_like(obs), np.empty_like(values)
        next_obs[:-1], next_obs[-1] = obs[1:], self.obs
        next_values[:-1] = values[1:]
        next_values[-1] = self.policy.compute_values(self.obs)
        if final_at:
            rows, envs = zip(*final_at)
            next_obs[rows, envs] = final_obs
            next_values[rows, envs] = self.policy.compute_values(np.stack(final_obs))
        advantages = gae(rewards, values, next_values, terminateds.astype(np.float32), truncateds.astype(np.float32),
                         self.config.gamma, self.config.lam)
        self.last_episodes = self._count_episodes(rewards, terminateds | truncateds)
        columns = {
            "obs": obs, "next_obs": next_obs, "actions": actions, "rewards": rewards, "terminateds": terminateds, "truncateds": truncateds,
            "logp": logp, "values": values, "next_values": next_values, "advantages": advantages,
            "value_targets": advantages + values,
        }
        # (steps, envs, ...) -> (envs · steps, ...): each env's stream stays contiguous in time.
        return SampleBatch({k: np.swapaxes(v, 0, 1).reshape(T * N, *v.shape[2:]) for k, v in columns.items()})

    def _count_episodes(self, rewards: np.ndarray, dones: np.ndarray) -> EpisodeStats:
        """Close the episodes that ended in this fragment; carry the running ones over."""
        returns, lengths = [], []
        for env in range(self.config.num_envs):
            start = 0
            for end in np.flatnonzero(dones[:, env]) + 1:
                returns.append(float(self.episode_return[env] + rewards[start:end, env].sum(dtype=np.float64)))
                lengths.append(int(self.episode_length[env] + end - start))
                self.episode_return[env], self.episode_length[env], start = 0.0, 0, end
            self.episode_return[env] += rewards[start:, env].sum(dtype=np.float64)
            self.episode_length[env] += len(rewards) - start
        return EpisodeStats(tuple(returns), tuple(lengths))

    def episodes(self) -> EpisodeStats:
        """Episodes that ended during the last sample() call."""
        return self.last_episodes

    def sample_with_episodes(self) -> tuple[SampleBatch, EpisodeStats]:
        """sample() and the episodes it completed, in one call (one round trip when remote)."""
        batch = self.sample()
        return batch, self.last_episodes

    def compute_gradients(self, batch: SampleBatch) -> tuple[np.ndarray, dict[str, float]]:
        return self.policy.compute_gradients(batch)

    @ray.method(num_returns=2)
    def sample_and_compute_gradients(self) -> tuple[np.ndarray, dict]:
        """g on a fresh sample, and a small report (rows, episodes, loss statistics): two
        objects, so a driver can pass g on to a server by reference without fetching it."""
        batch = self.sample()
        grads, stats = self.policy.compute_gradients(batch)
        return grads, {"steps": len(batch), "episodes": self.last_episodes, "stats": stats}

    def apply_gradients(self, grads: np.ndarray) -> None:
        self.policy.apply_gradients(grads)

    def get_weights(self) -> np.ndarray:
        return self.policy.get_weights()

    def set_weights(self, weights: np.ndarray) -> None:
        self.policy.set_weights(weights)

    def get_state(self) -> dict:
        """The worker as a checkpoint holds it: its policy's state, its environments (pickled:
        physics state and random generators), and the episodes in progress. A worker given
        this state samples exactly what this one would sample next."""
        return {"policy": self.policy.get_state(), "envs": pickle.dumps(self.env.envs), "obs": self.obs.copy(),
                "episode_return": self.episode_return.copy(), "episode_length": self.episode_length.copy()}

    def set_state(self, state: dict) -> None:
        self.policy.set_state(state["policy"])
        # SyncVectorEnv steps this list; in SAME_STEP autoreset mode it keeps no other state.
        self.env.envs = pickle.loads(state["envs"])
        self.obs = state["obs"].copy()
        self.episode_return, self.episode_length = state["episode_return"].copy(), state["episode_length"].copy()
