"""Evolution strategies: OpenAI-ES, whose workers send back seeds and returns, not vectors.

Salimans et al. (2017) optimise a policy's parameters θ ∈ R^D without gradients through the
policy. For a perturbation scale σ, the smoothed objective J(θ) = E_ε[F(θ + σε)], ε ~ N(0, I),
has the gradient

    ∇J(θ) = (1/σ) E_ε[F(θ + σε) ε],

estimated from n antithetic pairs (each ε used as +ε and −ε, which cancels the even terms
of F's expansion and costs nothing more to evaluate):

    g = 1/(2nσ) Σ_i (F̃(θ + σε_i) − F̃(θ − σε_i)) ε_i,

where F̃ is fitness shaping: the 2n returns are replaced by their centred ranks, spread
evenly over [−0.5, 0.5], so one lucky episode cannot dominate a step and the step does not
depend on the scale of the rewards. θ then takes an Adam step up g − λθ (weight decay λ).

Why it scales. Every ε is a slice of one table of Gaussian numbers that every process
holds: the driver makes it once and puts it in the object store, and each worker maps the
same object (zero-copy on one node). A worker returns, per pair, the slice's index and two
returns: a few bytes whatever D is, where a gradient method's worker returns D numbers.
The driver rebuilds Σ w_i ε_i from the indices. `ESWorker.evaluate(..., vectors=True)` also
sends every ε back, the naive protocol the lab measures against.

Who does the sum. The flat driver (`ES`) rebuilds all n slices itself: O(nD) work in one
process. With an aggregation tree (`ESTree`), each sub-driver keeps its group's indices,
the root ranks the returns (all 2n are needed for the ranks), sends every group its
weights, and sums one partial vector per group: the O(nD) work is spread over the groups.
It is `HierarchicalWorkerSet`'s delegation with a second round: that set's sub-drivers
finish their work in one call (a batch), where ranks make the sum wait for every group.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import ray

from .cluster import actor_cpus


@dataclass(frozen=True)
class ESConfig:
    env_id: str = "CartPole-v1"
    # Defaults that reached a perturbed mean return of 450 on CartPole-v1 in 25 iterations
    # with 2 workers (a first check here, one seed; the lab measures).
    hidden: tuple[int, ...] = (16,)  # tanh layers of the deterministic policy
    sigma: float = 0.1  # perturbation scale σ
    lr: float = 0.05  # Adam's step size
    weight_decay: float = 0.005  # λ in the step up g − λθ
    pairs_per_worker: int = 8  # antithetic pairs each worker evaluates per iteration
    noise_size: int = 10_000_000  # Gaussian numbers in the shared table (40 MB of float32)
    centred_ranks: bool = True  # fitness shaping; False uses the raw returns
    max_episode_steps: int | None = None  # the environment's own limit when None
    seed: int = 0


class MLPPolicy:
    """A deterministic MLP a ← argmax(f_θ(s)) (Discrete) or f_θ(s) (Box), θ one flat vector.

    numpy, not torch: ES runs one observation at a time through a network of a few hundred
    parameters, where torch's per-call dispatch costs more than the arithmetic."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, hidden: tuple[int, ...]):
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        outputs = int(action_space.n) if self.discrete else int(np.prod(action_space.shape))
        sizes = [int(np.prod(observation_space.shape)), *hidden, outputs]
        self.shapes = [(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
        self.dim = sum(a * b + b for a, b in self.shapes)

    def initial(self, rng: np.random.Generator) -> np.ndarray:
        """θ₀: weights ~ N(0, 1/fan_in), biases 0."""
        parts = []
        for a, b in self.shapes:
            parts += [rng.standard_normal(a * b, dtype=np.float32) / np.sqrt(a), np.zeros(b, np.float32)]
        return np.concatenate(parts)

    def layers(self, theta: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        out, at = [], 0
        for a, b in self.shapes:
            out.append((theta[at:at + a * b].reshape(a, b), theta[at + a * b:at + a * b + b]))
            at += a * b + b
        return out

    def act(self, layers: list[tuple[np.ndarray, np.ndarray]], obs: np.ndarray):
        x = obs.astype(np.float32)
        for weight, bias in layers[:-1]:
            x = np.tanh(x @ weight + bias)
        weight, bias = layers[-1]
        y = x @ weight + bias
        return int(np.argmax(y)) if self.discrete else y


def centred_ranks(returns: np.ndarray) -> np.ndarray:
    """Each value's rank among all, mapped linearly onto [−0.5, 0.5] (ties keep their order)."""
    flat = returns.ravel()
    ranks = np.empty(flat.size, np.float64)
    ranks[np.argsort(flat, kind="stable")] = np.arange(flat.size)
    return (ranks / max(flat.size - 1, 1) - 0.5).reshape(returns.shape)


def pair_weights(returns: np.ndarray, shaped: bool = True) -> np.ndarray:
    """w_i = F̃(θ + σε_i) − F̃(θ − σε_i) for returns of shape (n, 2); F̃ = F without shaping."""
    fitness = centred_ranks(returns) if shaped else returns
    return fitness[:, 0] - fitness[:, 1]


def estimate_gradient(weighted_sum: np.ndarray, pairs: int, sigma: float) -> np.ndarray:
    """g = Σ_i w_i ε_i / (2nσ), from the weighted sum of the n pairs' ε."""
    return weighted_sum / (2 * pairs * sigma)


def weighted_noise_sum(noise: np.ndarray, indices: np.ndarray, weights: np.ndarray, dim: int) -> np.ndarray:
    """Σ_i w_i ε_i, ε_i = noise[indices[i] : indices[i] + dim], accumulated in float64."""
    total = np.zeros(dim, np.float64)
    for index, weight in zip(indices, weights):
        total += weight * noise[index:index + dim]
    return total


class Adam:
    """Adam ascent on a flat vector (Kingma & Ba), as OpenAI-ES steps θ.

    Written here, not torch.optim.Adam: ES needs no autograd, and this module stays free of
    torch, so a worker process starts without importing it (1.45 s here, for each of the
    dozens of workers the lab starts)."""

    def __init__(self, dim: int, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.m, self.v, self.t = np.zeros(dim), np.zeros(dim), 0

    def step(self, theta: np.ndarray, g: np.ndarray) -> np.ndarray:
        self.t += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * g
        self.v = self.beta2 * self.v + (1 - self.beta2) * g * g
        rate = self.lr * np.sqrt(1 - self.beta2 ** self.t) / (1 - self.beta1 ** self.t)
        return (theta + rate * self.m / (np.sqrt(self.v) + self.eps)).astype(np.float32)


@dataclass(frozen=True)
class Evaluated:
    """One worker's answer: per pair, the noise index and the returns at θ ± σε."""

    indices: np.ndarray  # (pairs,) int64
    returns: np.ndarray  # (pairs, 2): F(θ + σε), F(θ − σε)
    lengths: np.ndarray  # (pairs, 2): episode lengths, the environment steps spent
    vectors: np.ndarray | None = None  # (pairs, D) ε themselves, in the naive protocol only

    def payload_bytes(self) -> int:
        """The bytes of the arrays sent back (the message's content, without framing)."""
        return sum(a.nbytes for a in (self.indices, self.returns, self.lengths, self.vectors) if a is not None)


class ESWorker:
    """Runs episodes at θ ± σε for slices ε of the shared noise table."""

    def __init__(self, config: ESConfig, noise: np.ndarray, worker_index: int):
        # As a Ray actor, `noise` arrives from an ObjectRef: a read-only view of the object
        # store's one copy, which every worker on the node maps.
        self.noise, self.config = noise, config
        kwargs = {} if config.max_episode_steps is None else {"max_episode_steps": config.max_episode_steps}
        self.env = gym.make(config.env_id, **kwargs)
        self.policy = MLPPolicy(self.env.observation_space, self.env.action_space, config.hidden)
        self.rng = np.random.default_rng([config.seed, worker_index])

    def rollout(self, theta: np.ndarray, seed: int) -> tuple[float, int]:
        """One episode's return and length at θ, from the environment's reset with `seed`."""
        layers, total, steps = self.policy.layers(theta), 0.0, 0
        obs, _ = self.env.reset(seed=seed)
        while True:
            obs, reward, terminated, truncated, _ = self.env.step(self.policy.act(layers, obs))
            total, steps = total + float(reward), steps + 1
            if terminated or truncated:
                return total, steps

    def evaluate(self, theta: np.ndarray, pairs: int, vectors: bool = False) -> Evaluated:
        """`pairs` antithetic pairs at fresh noise indices; with `vectors`, the ε too.

        Both episodes of a pair start from the environment seeded with the pair's noise
        index: common random numbers, so F(θ + σε) − F(θ − σε) measures ε and not two
        different start states, and any answer can be replayed from what it contains."""
        dim, sigma = len(theta), self.config.sigma
        indices = self.rng.integers(0, len(self.noise) - dim + 1, size=pairs)
        returns, lengths = np.zeros((pairs, 2)), np.zeros((pairs, 2), np.int64)
        for i, index in enumerate(indices):
            eps = self.noise[index:index + dim]
            for j, sign in enumerate((1.0, -1.0)):
                returns[i, j], lengths[i, j] = self.rollout(theta + np.float32(sign * sigma) * eps, int(index))
        sent = np.stack([self.noise[i:i + dim] for i in indices]) if vectors else None
        return Evaluated(indices, returns, lengths, sent)


@dataclass(frozen=True)
class ESStats:
    """One iteration: the episodes run (2n, perturbed) and what they returned."""

    episodes: int
    steps: int
    mean_return: float
    max_return: float

    @classmethod
    def of(cls, returns: np.ndarray, lengths: np.ndarray) -> "ESStats":
        return cls(returns.size, int(lengths.sum()), float(returns.mean()), float(returns.max()))


def make_noise(config: ESConfig) -> np.ndarray:
    """The shared table: `noise_size` draws of N(0, 1), the same for the same seed."""
    return np.random.default_rng(config.seed).standard_normal(config.noise_size, dtype=np.float32)


class ES:
    """OpenAI-ES with a flat driver: it sends θ, gathers every worker's pairs and rebuilds g.

    With `vectors=True` the workers send each ε back and the driver sums those instead of
    slicing its own table: the naive protocol, the same update."""

    def __init__(self, config: ESConfig, num_workers: int, vectors: bool = False,
                 num_cpus_per_worker: float | None = None):
        self.config, self.vectors = config, vectors
        self.noise = make_noise(config)
        self.noise_ref = ray.put(self.noise)  # one copy in the store, mapped by every worker
        space = gym.make(config.env_id)
        self.policy = MLPPolicy(space.observation_space, space.action_space, config.hidden)
        self.theta = self.policy.initial(np.random.default_rng(config.seed))
        self.optimizer = Adam(self.policy.dim, config.lr)
        num_cpus_per_worker = actor_cpus() if num_cpus_per_worker is None else num_cpus_per_worker
        worker = ray.remote(num_cpus=num_cpus_per_worker)(ESWorker)
        self.workers = [worker.remote(config, self.noise_ref, i) for i in range(num_workers)]

    def step(self) -> ESStats:
        theta = ray.put(self.theta)  # put once; every worker reads the same object
        received = ray.get([w.evaluate.remote(theta, self.config.pairs_per_worker, self.vectors)
                            for w in self.workers])
        returns = np.concatenate([r.returns for r in received])
        weights = pair_weights(returns, self.config.centred_ranks)
        if self.vectors:
            total = np.concatenate([r.vectors for r in received]).T.astype(np.float64) @ weights
        else:
            total = weighted_noise_sum(self.noise, np.concatenate([r.indices for r in received]), weights,
                                       self.policy.dim)
        self._update(total, len(weights))
        return ESStats.of(returns, np.concatenate([r.lengths for r in received]))

    def _update(self, weighted_sum: np.ndarray, pairs: int) -> None:
        """θ ← Adam step up g − λθ, g = Σ w_i ε_i / (2nσ)."""
        g = estimate_gradient(weighted_sum, pairs, self.config.sigma)
        self.theta = self.optimizer.step(self.theta, g - self.config.weight_decay * self.theta)

    def stop(self) -> None:
        for w in self.workers:
            ray.kill(w)
        self.workers = []


class ESSubDriver:
    """Drives one group of ESWorkers: gathers their pairs, hands the root only the returns,
    and later sums its own pairs' ε with the weights the root sends."""

    def __init__(self, workers: list, noise: np.ndarray):
        self.workers, self.noise, self.indices = workers, noise, np.zeros(0, np.int64)

    def evaluate(self, wrapped: list, pairs: int) -> tuple[np.ndarray, np.ndarray]:
        (theta,) = wrapped  # an ObjectRef shared with the group's workers
        answers = ray.get([w.evaluate.remote(theta, pairs) for w in self.workers])
        self.indices = np.concatenate([a.indices for a in answers])
        return np.concatenate([a.returns for a in answers]), np.concatenate([a.lengths for a in answers])

    def weighted_sum(self, weights: np.ndarray, dim: int) -> np.ndarray:
        return weighted_noise_sum(self.noise, self.indices, weights, dim)


class ESTree(ES):
    """The same OpenAI-ES with an aggregation tree: `num_groups` sub-drivers of `group_size`
    workers each. Two rounds per iteration, because the centred ranks need all 2n returns:
    the groups send their returns up, the root ranks them and sends each group its weights,
    and each group sends up one D-vector, its Σ w_i ε_i."""

    def __init__(self, config: ESConfig, num_groups: int, group_size: int, num_cpus_per_worker: float | None = None):
        super().__init__(config, num_groups * group_size, num_cpus_per_worker=num_cpus_per_worker)
        sub_driver = ray.remote(num_cpus=actor_cpus() if num_cpus_per_worker is None else num_cpus_per_worker)(ESSubDriver)
        self.groups = [sub_driver.remote(self.workers[g * group_size:(g + 1) * group_size], self.noise_ref)
                       for g in range(num_groups)]

    def step(self) -> ESStats:
        theta = ray.put(self.theta)
        answers = ray.get([g.evaluate.remote([theta], self.config.pairs_per_worker) for g in self.groups])
        returns = np.concatenate([r for r, _ in answers])
        weights = pair_weights(returns, self.config.centred_ranks)
        bounds = np.cumsum([0] + [len(r) for r, _ in answers])
        partial = ray.get([g.weighted_sum.remote(weights[lo:hi], self.policy.dim)
                           for g, lo, hi in zip(self.groups, bounds[:-1], bounds[1:])])
        self._update(np.sum(partial, axis=0), len(weights))
        return ESStats.of(returns, np.concatenate([n for _, n in answers]))

    def stop(self) -> None:
        for g in self.groups:
            ray.kill(g)
        self.groups = []
        super().stop()
