"""Q-learning's pieces for DQN and Ape-X: n-step returns, the Q-network, the double-DQN loss
and the learner that applies it.

From row t of one environment's stream, with m the steps until its episode or the fragment
ends (at most n), the n-step return and its bootstrap are

    R_t = Σ_{k<m} γ^k r_{t+k},   bootstrapped from s_{t+m} (next_obs of row t+m−1)
                                  with discount γ^m, or with 0 if the episode terminated

(a truncated episode, or the fragment's end, still bootstraps: the state was not final).
Double DQN (van Hasselt et al., 2016) lets the online network θ choose the next action and
the target network θ⁻ value it, which removes max's upward bias:

    y_t = R_t + γ^m (1 − term) · Q_θ⁻(s_{t+m}, argmax_a Q_θ(s_{t+m}, a))
    L(θ) = (1/B) Σ_i w_i · huber(Q_θ(s_i, a_i) − y_i)

w_i are prioritized replay's importance weights (1 for uniform replay), and |Q_θ(s_i, a_i) − y_i|
is the TD error prioritized replay keeps as row i's priority. A dueling network (Wang et
al., 2016) splits Q into a state value and advantages: Q(s, a) = V(s) + A(s, a) − mean_a A(s, a).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from .sample_batch import SampleBatch


def n_step(rewards: np.ndarray, terminateds: np.ndarray, truncateds: np.ndarray, gamma: float,
           n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R_t, the row t+m−1 whose next_obs to bootstrap from, and the bootstrap's discount, for
    each row of a fragment (time along axis 0; trailing axes are independent streams).

    Example, γ = 0.5, n = 2, rewards [1, 1, 1], terminated at row 1:
    R = [1.5, 1, 1], bootstrap rows [1, 1, 2], discounts [0, 0, 0.5].
    """
    T = len(rewards)
    t = np.arange(T).reshape(-1, *[1] * (rewards.ndim - 1))
    returns = np.zeros(rewards.shape)
    last = np.broadcast_to(t, rewards.shape).copy()
    open_ = np.ones(rewards.shape, bool)  # the episode and the fragment go on past row t + k − 1
    terminated = np.zeros(rewards.shape, bool)
    for k in range(n):
        rows = np.broadcast_to(np.minimum(t + k, T - 1), rewards.shape)
        step = open_ & (t + k < T)
        returns += np.where(step, gamma ** k * np.take_along_axis(rewards, rows, 0), 0.0)
        last = np.where(step, rows, last)
        term, trunc = np.take_along_axis(terminateds, rows, 0), np.take_along_axis(truncateds, rows, 0)
        terminated |= step & term
        open_ = step & ~(term | trunc)
    discounts = np.where(terminated, 0.0, gamma ** (last - t + 1))
    return returns.astype(np.float32), last, discounts.astype(np.float32)


class QNetwork(nn.Module):
    """An MLP from observations to one Q value per action; with `dueling`, through V and A."""

    def __init__(self, obs_dim: int, num_actions: int, hidden: tuple[int, ...] = (64, 64), dueling: bool = False):
        super().__init__()
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [nn.Linear(obs_dim, width), nn.ReLU()]
            obs_dim = width
        self.torso = nn.Sequential(*layers)
        self.advantage = nn.Linear(obs_dim, num_actions)
        self.value = nn.Linear(obs_dim, 1) if dueling else None

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        features = self.torso(obs)
        advantages = self.advantage(features)
        if self.value is None:
            return advantages
        return self.value(features) + advantages - advantages.mean(-1, keepdim=True)


def double_dqn_loss(online: nn.Module, target: nn.Module, batch: SampleBatch) -> tuple[torch.Tensor, np.ndarray, dict[str, float]]:
    """L(θ) on a batch with columns obs, actions, returns, bootstrap_obs, discounts (and weights
    from prioritized replay); also returns each row's TD error for its new priority."""
    # torch.tensor copies: a batch from Ray's object store is read-only, which as_tensor warns of.
    obs = torch.tensor(batch["obs"], dtype=torch.float32)
    actions = torch.tensor(batch["actions"], dtype=torch.int64)
    following = torch.tensor(batch["bootstrap_obs"], dtype=torch.float32)
    q = online(obs).gather(1, actions.unsqueeze(1)).squeeze(1)
    with torch.no_grad():
        choice = online(following).argmax(1, keepdim=True)
        bootstrap = target(following).gather(1, choice).squeeze(1)
        y = torch.tensor(batch["returns"]) + torch.tensor(batch["discounts"]) * bootstrap
    td = q - y
    weights = torch.tensor(batch["weights"]) if "weights" in batch else torch.ones_like(td)
    loss = (weights * F.huber_loss(q, y, reduction="none", delta=1.0)).mean()
    td_errors = td.detach().numpy()
    return loss, td_errors, {"q_mean": float(q.detach().mean()), "td_abs_mean": float(np.abs(td_errors).mean())}


class QLearner:
    """DQN's learner: the online network θ, the target network θ⁻ (θ copied into it every
    `target_period` updates) and Adam on L(θ). Built from the same seed as the evaluators'
    networks, so all start from the same θ."""

    def __init__(self, obs_dim: int, num_actions: int, hidden: tuple[int, ...] = (64, 64), dueling: bool = False,
                 lr: float = 1e-3, target_period: int = 500, max_grad_norm: float = 10.0, seed: int = 0):
        torch.manual_seed(seed)
        self.online = QNetwork(obs_dim, num_actions, hidden, dueling)
        self.target = copy.deepcopy(self.online)
        self.optimizer = torch.optim.Adam(self.online.parameters(), lr=lr, foreach=True)
        self.target_period, self.max_grad_norm, self.updates = target_period, max_grad_norm, 0

    def learn_on_batch(self, batch: SampleBatch) -> tuple[np.ndarray, dict[str, float]]:
        """One Adam step on the batch; returns each row's TD error (its new priority) and statistics."""
        loss, td_errors, stats = double_dqn_loss(self.online, self.target, batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.online.parameters(), self.max_grad_norm)
        self.optimizer.step()
        self.updates += 1
        if self.updates % self.target_period == 0:
            self.target.load_state_dict(self.online.state_dict())
        return td_errors, stats | {"loss": float(loss.detach())}

    def get_weights(self) -> np.ndarray:
        """θ as one flat float32 vector, the layout `ReplayWorker.set_weights` takes."""
        return parameters_to_vector(self.online.parameters()).detach().numpy().copy()

    def set_weights(self, weights: np.ndarray) -> None:
        vector_to_parameters(torch.as_tensor(weights), self.online.parameters())

    def get_state(self) -> dict:
        return {"online": copy.deepcopy(self.online.state_dict()), "target": copy.deepcopy(self.target.state_dict()),
                "optimizer": copy.deepcopy(self.optimizer.state_dict()), "updates": self.updates}

    def set_state(self, state: dict) -> None:
        self.online.load_state_dict(state["online"])
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.updates = state["updates"]
