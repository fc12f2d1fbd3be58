# ---
# jupyter:
#   jupytext:
#     notebook_metadata_filter: studylog
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
#   studylog:
#     code-fold: true
#     profiles:
#       full:
#         cap_s: 120
#         dims: [1000, 10000, 100000, 1000000, 10000000]
#         driver_iterations: 20
#         driver_rounds: 2
#         pbt_cap_s: 240
#         pbt_workers: 2
#         scaling_iterations: 10
#         scaling_rounds: 5
#         seeds: [0, 1, 2, 3, 4]
#         target: 450
#         workers: [2, 4, 8, 16, 32]
#       quick:
#         cap_s: 20
#         dims: [1000, 100000]
#         driver_iterations: 4
#         driver_rounds: 1
#         pbt_cap_s: 20
#         pbt_workers: 0
#         scaling_iterations: 2
#         scaling_rounds: 1
#         seeds: [0]
#         target: 100
#         workers: [2, 4]
#     summary: OpenAI-ES whose workers send seeds and returns instead of vectors, its driver
#       relieved by an aggregation tree, raced against PPO and EvoTorch on CartPole; and
#       population-based training wrapped around unchanged PPO optimizers.
#     title: 'Evolution strategies and population-based training'
# ---

# %% [markdown]
# # Evolution strategies and population-based training
#
# **The question.** Two claims of the RLlib paper [@liang2018] have no lab yet. The first
# is about evolution strategies [@salimans2017]: they scale because a worker sends back a
# seed and two returns instead of a vector, and RLlib's version reached a Humanoid reward
# of 6000 in a median 3.7 minutes on 8,192 cores "with an aggregation tree of actors".
# The second is about composition: because a policy optimizer is an object with `step()`,
# a hyperparameter search such as population-based training [@jaderberg2017] can wrap an
# unchanged one in a few lines. On two cores, what do seeds-and-returns save, what does
# the tree take off the driver, how fast does ES learn CartPole against PPO and against
# EvoTorch [@toklu2023], and does PBT make its population's best member faster?
#
# **The idea.** ES optimises the policy's parameters $\theta \in \mathbb{R}^D$ without
# back-propagating through the policy. It climbs the smoothed objective
# $J(\theta) = \mathbb{E}_{\varepsilon \sim N(0, I)}[F(\theta + \sigma\varepsilon)]$, whose
# gradient $\nabla J = \frac{1}{\sigma}\mathbb{E}[F(\theta + \sigma\varepsilon)\,\varepsilon]$
# is estimated from $n$ antithetic pairs,
#
# $$
# g = \frac{1}{2n\sigma} \sum_{i=1}^{n} \big(\tilde F(\theta + \sigma\varepsilon_i) - \tilde F(\theta - \sigma\varepsilon_i)\big)\,\varepsilon_i,
# \qquad \theta \leftarrow \theta + \mathrm{Adam}(g - \lambda\theta),
# $$
#
# where $\tilde F$ replaces the $2n$ returns by their centred ranks in $[-0.5, 0.5]$ and
# $\lambda$ is weight decay. Every $\varepsilon_i$ is a slice of one table of Gaussian
# numbers that every process holds, so a worker names its slice by an index: per pair it
# sends $(i, F^+, F^-)$, a few bytes, where a gradient method sends $D$ numbers. The driver
# rebuilds $\sum_i w_i \varepsilon_i$ from the indices. Each answer it receives costs it
# CPU time; with $N$ workers that is $N$ messages per iteration. An aggregation tree of $G$
# sub-drivers sends the root $G$ answers, then (since the ranks need all $2n$ returns)
# takes $G$ weight vectors down and brings $G$ partial sums up: $2G$ messages. If each
# message costs the root $c$,
#
# $$
# t_\text{flat}(N) \approx c_0 + cN, \qquad t_\text{tree}(N, G) \approx c_0 + 2cG,
# $$
#
# so the tree takes work off the root once $N > 2G$. PBT trains $M$ members at once; every
# few steps the worst quarter takes a best member's whole state (weights, Adam's moments,
# workers, random generators) and hyperparameters, then multiplies each hyperparameter by
# 0.8 or 1.2.

# %% tags=["parameters"]
dims = [1_000, 100_000]  # parameter counts D of the communication measurement
workers = [2, 4]  # worker counts N of the driver-cost measurement
driver_iterations = 4  # iterations timed per configuration and round
driver_rounds = 1  # rounds of the driver-cost measurement, every configuration in turn
seeds = [0]  # one learning run per seed and contender
target = 100  # a run ends when its mean return reaches this
cap_s = 20.0  # a learning run that has not reached the target by then stops
scaling_rounds = 1  # rounds of the one-against-two-workers throughput measurement
scaling_iterations = 2  # ES iterations timed per round and worker count
pbt_workers = 0  # remote evaluators of each PBT member (0: the member samples itself)
pbt_cap_s = 20.0  # a population that has no member at the target by then stops

# %%
import contextlib
import inspect
import io
import logging
import math
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import matplotlib.pyplot as plt
import numpy as np
import ray
import torch
from evotorch.algorithms import PGPE
from evotorch.neuroevolution import GymNE
from radon.raw import analyze

import distrl.pbt
from distrl import cluster
from distrl.es import ES, ESConfig, ESTree, ESWorker, MLPPolicy
from distrl.losses import ppo_loss
from distrl.optimizers import SyncSamples
from distrl.pbt import PBT
from distrl.policy import PolicyConfig
from distrl.rollout_worker import WorkerConfig
from distrl.worker_set import WorkerSet
from studylog import record, record_environment, record_median

cluster.init()
record_environment("ray", cluster.describe())  # where the actors ran: this machine or a cluster
logging.getLogger("evotorch").setLevel(logging.WARNING)  # it logs each new problem's settings at INFO
# PPO's learner runs in this process; one thread, so that it leaves the second core to the workers.
torch.set_num_threads(1)
print(f"ray {ray.__version__}, torch {torch.__version__}, gymnasium {gym.__version__}")

# %% [markdown]
# ## The algorithm
#
# `distrl.es` holds it whole. A worker evaluates its pairs and answers with indices and
# returns; both episodes of a pair start from the environment seeded by the pair's index
# (common random numbers: $F^+ - F^-$ then measures $\varepsilon$, not two different
# starts). The flat driver gathers every answer and rebuilds the sum; the tree's root
# ranks the returns its sub-drivers send up and gathers one partial sum from each.

# %% code-fold=false
for function in (ESWorker.evaluate, ES.step, ESTree.step):
    print(inspect.getsource(function))

# %% [markdown]
# ## A check: three protocols, one update
#
# Seeds-and-returns, full vectors and the tree must compute the same $\theta$: the same
# workers draw the same indices and play the same episodes, so only who sums the
# $\varepsilon_i$ differs. Three iterations from the same start, then the largest
# difference in $\theta$, which would be float32 rounding at most (the vectors are summed
# in another order).

# %%
check = ESConfig(noise_size=1_000_000, seed=7)
thetas = {}
for name, make in {"seeds and returns": lambda: ES(check, 4), "full vectors": lambda: ES(check, 4, vectors=True),
                   "tree, 2 groups of 2": lambda: ESTree(check, 2, 2)}.items():
    es = make()
    for _ in range(3):
        es.step()
    thetas[name] = es.theta
    es.stop()
reference = thetas["seeds and returns"]
for name, theta in thetas.items():
    print(f"{name:<20} max |Δθ| against seeds and returns: {np.abs(theta - reference).max():.2e}")
    assert np.allclose(theta, reference, atol=1e-5), name
equivalence_err = max(float(np.abs(theta - reference).max()) for theta in thetas.values())

# %% [markdown]
# ## Communication: what a worker sends back
#
# For $D$ from $10^3$ to $10^7$ (CartPole's observation, one tanh layer of $h$ units and
# two outputs: $D = 7h + 2$), two workers of 8 pairs each answer once in each protocol.
# What crosses is measured as Ray serialises it: pickle protocol 5, whose out-of-band
# buffers carry each numpy array's bytes, plus the in-band framing. Episodes are cut at 20
# steps here (the bytes do not depend on it; the time at $D = 10^7$ does). The downstream
# side is the same in both protocols: $\theta$, $4D$ bytes, put once in the object store
# per iteration.

# %%
def serialised_bytes(answer) -> int:
    buffers = []
    framing = pickle.dumps(answer, protocol=5, buffer_callback=buffers.append)
    return len(framing) + sum(memoryview(b).nbytes for b in buffers)


comm = {}
for D in dims:
    hidden = (D - 2) // 7
    config = ESConfig(hidden=(hidden,), noise_size=7 * hidden + 2 + 1_000_000, max_episode_steps=20)
    es = ES(config, 2)
    ray.get([w.__ray_ready__.remote() for w in es.workers])
    theta = ray.put(es.theta)
    for vectors in (False, True):
        answers = ray.get([w.evaluate.remote(theta, config.pairs_per_worker, vectors) for w in es.workers])
        es.vectors, start = vectors, time.perf_counter()
        es.step()  # one iteration in this protocol, timed
        comm[D, vectors] = dict(bytes=sum(serialised_bytes(a) for a in answers), iteration_s=time.perf_counter() - start)
        del answers
    comm[D, "dim"] = es.policy.dim
    es.stop()
print(f"{'D':>11} {'seeds and returns (B)':>22} {'full vectors (B)':>17} {'ratio':>10} {'iteration: seeds / vectors (s)':>31}")
for D in dims:
    seeds_b, vectors_b = comm[D, False]["bytes"], comm[D, True]["bytes"]
    print(f"{comm[D, 'dim']:>11,} {seeds_b:>22,} {vectors_b:>17,} {vectors_b / seeds_b:>10,.0f} "
          f"{comm[D, False]['iteration_s']:>15.2f} / {comm[D, True]['iteration_s']:.2f}")

# %% fig-cap="Bytes the workers send back per iteration (2 workers × 8 pairs) against the number of parameters D: seeds and returns, full perturbation vectors, and, for scale, θ sent down once."
fig, ax = plt.subplots(figsize=(7, 4.5))
Ds = [comm[D, "dim"] for D in dims]
ax.loglog(Ds, [comm[D, False]["bytes"] for D in dims], "o-", label="seeds and returns (up)")
ax.loglog(Ds, [comm[D, True]["bytes"] for D in dims], "s-", label="full vectors (up)")
ax.loglog(Ds, [4 * d for d in Ds], ":", color="grey", label="θ, float32 (down, both)")
ax.set_xlabel("parameters D")
ax.set_ylabel("bytes per iteration")
ax.legend()
ax.grid(True, which="both", alpha=0.3)
plt.show()

# %%
largest = dims[-1]
seeds_bytes = [comm[D, False]["bytes"] for D in dims]
record(f"es_bytes_per_iter_ratio_1e{round(math.log10(largest))}",
       comm[largest, True]["bytes"] / comm[largest, False]["bytes"], "x",
       f"bytes sent back per iteration, full vectors / seeds and returns, D = {comm[largest, 'dim']:,}, "
       "2 workers × 8 pairs")
record("es_protocols_max_abs_diff", equivalence_err, "", "largest |Δθ| between the three protocols after 3 iterations")
record("es_seeds_bytes_max_over_min", max(seeds_bytes) / min(seeds_bytes), "x",
       f"seeds-and-returns bytes per iteration, largest / smallest over D = {dims[0]:,} to {largest:,}")
record("es_seeds_bytes_per_iter", statistics.median(seeds_bytes), "B",
       "seeds-and-returns bytes per iteration, 2 workers × 8 pairs")

# %% [markdown]
# ## Driver cost: flat against a tree
#
# The root's CPU time per iteration, as `time.process_time` counts it in the driver
# process (every thread of it, Ray's own included), for $N$ workers of 8 pairs and
# episodes cut at 10 steps, so that the workers return quickly and the driver's share is
# what is seen. Each worker asks the scheduler for 0.03 CPU, so that all of them and the
# sub-drivers are placed on two cores. The tree has $G$ groups of $N/G$ workers; every
# configuration runs in each round, the order rotating, each timed over the same number of
# iterations after two untimed ones. The wall time per iteration is reported beside it: on
# two cores the workers, sub-drivers and root share the same cores, so the tree's extra
# round and processes show there, and its saving at the root is what a cluster, whose
# workers have their own cores, would get.

# %%
driver_config = ESConfig(max_episode_steps=10, noise_size=1_000_000)
configurations = [(N, None) for N in workers] + [(N, G) for N in workers for G in (2, 4) if G < N and N % G == 0]
timings = {c: {"cpu": [], "wall": []} for c in configurations}


def timed_driver(N: int, G: int | None) -> None:
    cpus = 0.03
    es = ES(driver_config, N, num_cpus_per_worker=cpus) if G is None else ESTree(driver_config, G, N // G, num_cpus_per_worker=cpus)
    try:
        ray.get([a.__ray_ready__.remote() for a in es.workers + getattr(es, "groups", [])])
        es.step(), es.step()
        for _ in range(driver_iterations):
            cpu, wall = time.process_time(), time.perf_counter()
            es.step()
            timings[N, G]["cpu"].append(time.process_time() - cpu)
            timings[N, G]["wall"].append(time.perf_counter() - wall)
    finally:
        es.stop()


# Ray warns, whenever more worker processes start at once than there are cores, that they
# do: that is this measurement's set-up, so its warnings are kept out of the page.
with contextlib.redirect_stdout(io.StringIO()):
    for turn in range(driver_rounds):
        shift = turn % len(configurations)
        for N, G in configurations[shift:] + configurations[:shift]:
            timed_driver(N, G)


def driver_ms(N: int, G: int | None, key: str = "cpu") -> float:
    return 1e3 * statistics.median(timings[N, G][key])


# One cost per message: the messages the root handles per iteration are N (flat) or 2G (tree).
messages = np.array([N if G is None else 2 * G for N, G in configurations], float)
measured = np.array([driver_ms(N, G) for N, G in configurations])
c, c0 = np.polyfit(messages, measured, 1)
print(f"fit over all configurations: t ≈ {c0:.2f} ms + {c:.3f} ms × messages")
print(f"{'N':>3} {'driver':>10} {'messages':>8} {'CPU ms':>7} {'model':>6} {'wall ms':>8}")
for (N, G), m in zip(configurations, messages):
    print(f"{N:>3} {'flat' if G is None else f'tree G={G}':>10} {m:>8.0f} {driver_ms(N, G):>7.1f} {c0 + c * m:>6.1f} "
          f"{driver_ms(N, G, 'wall'):>8.1f}")
flat_line = np.polyfit(workers, [driver_ms(N, None) for N in workers], 1)
for G in (2, 4):
    points = [N for N in workers if (N, G) in timings]
    if len(points) >= 2:
        tree_line = np.polyfit(points, [driver_ms(N, G) for N in points], 1)
        crossing = (tree_line[1] - flat_line[1]) / (flat_line[0] - tree_line[0])
        print(f"tree G={G}: its line crosses the flat driver's at N = {crossing:.1f} "
              f"(the one-cost-per-message model: N = {2 * G})")

# %% fig-cap="The root's CPU time per iteration against the number of workers N (median of the timed iterations, bars from the fastest to the slowest): the flat driver, and trees of G groups; dashed: the one-cost-per-message model fitted to all points."
fig, ax = plt.subplots(figsize=(7, 4.5))
for G, marker in ((None, "o"), (2, "s"), (4, "^")):
    Ns = [N for N in workers if (N, G) in timings]
    if not Ns:
        continue
    mid = [driver_ms(N, G) for N in Ns]
    low = [m - 1e3 * min(timings[N, G]["cpu"]) for m, N in zip(mid, Ns)]
    high = [1e3 * max(timings[N, G]["cpu"]) - m for m, N in zip(mid, Ns)]
    line = ax.errorbar(Ns, mid, yerr=[low, high], marker=marker, capsize=3, label="flat" if G is None else f"tree, G = {G}")
    ax.plot(Ns, [c0 + c * (N if G is None else 2 * G) for N in Ns], "--", color=line[0].get_color(), alpha=0.6)
ax.set_xscale("log", base=2)
ax.set_xlabel("workers N")
ax.set_ylabel("root CPU per iteration (ms)")
ax.legend()
ax.grid(True, alpha=0.3)
plt.show()

# %% [markdown]
# The headline tree is $G = 4$ at the largest $N$: a sub-driver handles $N/G$ answers and
# the root $2G$, so $G = \sqrt{N/2}$ (4 at $N = 32$) is the tree in which neither is
# the bottleneck.

# %%
N_max = workers[-1]
G_head = 4 if (N_max, 4) in timings else 2
record(f"tree_vs_flat_driver_time_{N_max}", driver_ms(N_max, G_head) / driver_ms(N_max, None), "x",
       f"root CPU per iteration, tree of {G_head} groups / flat driver, {N_max} workers "
       f"(median of {len(timings[N_max, None]['cpu'])} iterations each)")
record(f"tree_vs_flat_wall_time_{N_max}", driver_ms(N_max, G_head, "wall") / driver_ms(N_max, None, "wall"), "x",
       f"wall time per iteration, tree of {G_head} groups / flat driver, {N_max} workers, all on two cores")
record("driver_ms_per_message", c, "ms", "the fitted cost per message the root handles (flat: N per iteration; tree: 2G)")
record(f"flat_driver_cpu_ms_{N_max}", driver_ms(N_max, None), "ms", f"the flat driver's CPU per iteration, {N_max} workers")

# %% [markdown]
# ## Learning CartPole: ES against PPO and EvoTorch
#
# Four contenders, 5 seeds each, in turns (the order rotating from seed to seed), each
# with 2 worker processes, timed from the moment its workers are up until its mean return
# reaches `target`:
#
# - `es`: `distrl.es` with its defaults (one tanh layer of 16, σ = 0.1, Adam at 0.05,
#   weight decay 0.005), 2 workers × 8 pairs: 32 episodes per iteration, whose mean is the
#   return checked.
# - `es_matched`: the same with no weight decay, which EvoTorch's PGPE does not have.
# - `evotorch`: EvoTorch 0.6.1's PGPE [@sehnke2010] set up as OpenAI-ES: population 32 in
#   symmetric pairs, σ = 0.1 fixed (no σ learning), Adam at 0.05 on the centre, centred
#   ranks, on its `GymNE` problem with the same network (`Linear(4, 16) >> Tanh() >>
#   Linear(16, 2)`, argmax action) started from the same $\theta_0$, and 2 Ray actors.
#   Its `mean_eval` (the population's mean return) is the return checked. Its actors are
#   started before the clock, by evaluating two throw-away solutions.
# - `ppo`: the policy-optimizers lab's `ppo` (SyncSamples, 2 evaluators × 2 envs × 128
#   steps, sampling ahead, CleanRL's settings), whose last 20 episodes are checked.
#
# `es_matched` against `evotorch` is one algorithm in two implementations: the episodes
# each needs say whether the algorithm matches; the time, what each episode costs.
# What differs besides the code: EvoTorch's network is a torch module called once per
# step, distrl's a numpy function; EvoTorch's pairs start from different environment
# seeds, distrl's from one.

# %%
def es_run(seed: int, weight_decay: float = ESConfig.weight_decay) -> dict:
    es = ES(ESConfig(seed=seed, weight_decay=weight_decay), 2)
    ray.get([w.__ray_ready__.remote() for w in es.workers])
    curve, episodes, steps, start = [], 0, 0, time.perf_counter()
    try:
        while True:
            s = es.step()
            episodes, steps, wall = episodes + s.episodes, steps + s.steps, time.perf_counter() - start
            curve.append((wall, episodes, s.mean_return))
            if s.mean_return >= target or wall > cap_s:
                return dict(time_s=wall, episodes=episodes, steps=steps, reached=s.mean_return >= target, curve=curve,
                            theta=es.theta.copy())
    finally:
        es.stop()


def evotorch_layout(theta: np.ndarray, policy: MLPPolicy) -> np.ndarray:
    """distrl's flat θ (each layer: weight (in, out), bias) in torch's order (weight (out, in), bias)."""
    return np.concatenate([part for weight, bias in policy.layers(theta) for part in (weight.T.ravel(), bias)])


def evotorch_run(seed: int) -> dict:
    torch.manual_seed(seed)
    space = gym.make("CartPole-v1")
    policy = MLPPolicy(space.observation_space, space.action_space, ESConfig.hidden)
    theta0 = evotorch_layout(policy.initial(np.random.default_rng(seed)), policy)
    problem = GymNE("CartPole-v1", "Linear(obs_length, 16) >> Tanh() >> Linear(16, act_length)", num_actors=2)
    searcher = PGPE(problem, popsize=32, center_learning_rate=0.05, stdev_learning_rate=0.0, stdev_init=0.1,
                    optimizer="adam", ranking_method="centered", symmetric=True, center_init=torch.from_numpy(theta0))
    problem.evaluate(problem.generate_batch(2))  # starts its actors, outside the clock
    curve, start = [], time.perf_counter()
    try:
        while True:
            searcher.step()
            wall, mean = time.perf_counter() - start, float(searcher.status["mean_eval"])
            curve.append((wall, 32 * len(curve) + 32, mean))
            if mean >= target or wall > cap_s:
                return dict(time_s=wall, episodes=curve[-1][1], steps=None, reached=mean >= target, curve=curve)
    finally:
        problem.kill_actors()


def ppo_run(seed: int) -> dict:
    config = WorkerConfig(num_envs=2, fragment_length=128, seed=seed, policy=PolicyConfig(lr=2.5e-4))
    opt = SyncSamples(WorkerSet(config, 2, ppo_loss(clip_value=0.2)), sample_ahead=True, seed=seed,
                      epochs=4, minibatch_size=128, anneal_steps=500_000)
    ray.get([w.__ray_ready__.remote() for w in opt.workers.remotes])
    curve, start = [], time.perf_counter()
    try:
        while True:
            opt.step()
            s, wall = opt.stats, time.perf_counter() - start
            solved = len(s.returns) >= 20 and s.mean_return() >= target
            curve.append((wall, len(s.returns), s.mean_return()))
            if solved or wall > cap_s:
                return dict(time_s=wall, episodes=len(s.returns), steps=s.env_steps, reached=solved, curve=curve)
    finally:
        opt.stop()


contenders = {"es": es_run, "es_matched": lambda seed: es_run(seed, weight_decay=0.0), "evotorch": evotorch_run,
              "ppo": ppo_run}
order, runs = list(contenders), {}
for turn, seed in enumerate(seeds):
    for name in order[turn % len(order):] + order[:turn % len(order)]:
        runs[name, seed] = r = contenders[name](seed)
        print(f"seed {seed} {name:<11} {'reached' if r['reached'] else 'did NOT reach'} {target} in {r['time_s']:6.1f} s, "
              f"{r['episodes']:>6,} episodes")

# %%
def values(name: str, key: str) -> list[float]:
    """Per seed; a seed that did not reach the target counts as infinitely slow."""
    return [runs[name, s][key] if runs[name, s]["reached"] else float("inf") for s in seeds]


print(f"median [min–max] over {len(seeds)} seeds, to a mean return of {target}")
print(f"{'contender':<11} {'reached':>7} {'time (s)':>22} {'episodes':>24}")
for name in contenders:
    t, e = values(name, "time_s"), values(name, "episodes")
    print(f"{name:<11} {sum(runs[name, s]['reached'] for s in seeds):>5}/{len(seeds)} {statistics.median(t):>7.1f} "
          f"[{min(t):>5.1f}–{max(t):>6.1f}] {statistics.median(e):>9,.0f} [{min(e):>6,.0f}–{max(e):>6,.0f}]")

# %% fig-cap="Mean return against wall time (left) and episodes (right): median across seeds, band from the lowest to the highest seed. ES and EvoTorch: the mean of an iteration's 32 perturbed episodes; PPO: its last 20 episodes."
fig, axes = plt.subplots(1, 2, figsize=(14, 4.5))
for name in contenders:
    for axis, column in ((axes[0], 0), (axes[1], 1)):
        grid = np.linspace(0, max(runs[name, s]["curve"][-1][column] for s in seeds), 200)
        lines = np.array([np.interp(grid, [p[column] for p in runs[name, s]["curve"]],
                                    [p[2] for p in runs[name, s]["curve"]]) for s in seeds])
        axis.plot(grid, np.median(lines, axis=0), label=name)
        axis.fill_between(grid, lines.min(axis=0), lines.max(axis=0), alpha=0.2)
for axis, label in zip(axes, ("wall time (s)", "episodes")):
    axis.axhline(target, color="grey", ls=":")
    axis.set_xlabel(label)
    axis.set_ylabel("mean return")
    axis.grid(True, alpha=0.3)
axes[0].legend()
plt.show()

# %%
def record_time(metric: str, name: str, key: str, unit: str, description: str) -> None:
    samples = values(name, key)
    if all(math.isfinite(v) for v in samples):
        record_median(metric, samples, unit, description)
    elif statistics.median(samples) < math.inf:
        record(metric, statistics.median(samples), unit, f"{description}; {sum(map(math.isinf, samples))} seed(s) did not reach it")


def ratio(metric: str, name: str, base: str, key: str, description: str) -> None:
    """A ratio of medians, recorded only where both medians reached the target."""
    a, b = statistics.median(values(name, key)), statistics.median(values(base, key))
    if math.isfinite(a) and math.isfinite(b):
        record(metric, a / b, "x", description)


for name, what in (("es", "distrl ES"), ("evotorch", "EvoTorch PGPE as OpenAI-ES"), ("ppo", "distrl PPO (SyncSamples)")):
    record_time(f"{name}_time_to_{target}_s", name, "time_s", "s", f"{what}, 2 worker processes, median over {len(seeds)} seeds")
    record_time(f"{name}_episodes_to_{target}", name, "episodes", "episodes", f"{what}, median over {len(seeds)} seeds")
ratio(f"es_vs_evotorch_time_to_{target}", "es_matched", "evotorch", "time_s",
      "distrl ES without weight decay / EvoTorch at the same settings, time to the target, ratio of medians")
ratio(f"es_vs_evotorch_episodes_to_{target}", "es_matched", "evotorch", "episodes",
      "the same, episodes to the target: the algorithm, not the implementation")
ratio(f"es_vs_ppo_time_to_{target}", "es", "ppo", "time_s", "distrl ES / distrl PPO, time to the target, ratio of medians")

# %% [markdown]
# ## ES with one worker and with two
#
# Salimans et al. report linear speed-up to 1,440 cores. Here: episodes per second with
# one worker and with two (8 pairs each, `scaling_iterations` iterations per round), the
# parameters held at $\theta$ from the end of seed 0's `es` run (a policy that balances, so
# episodes are long and the workers' share dominates).
#
# **The control: what two cores give at all.** The same `ESWorker.evaluate` calls, at the
# same $\theta$, in one and in two plain processes that share nothing and never wait (no
# Ray, no driver): their ratio is the most this machine gives two processes, whatever the
# system. The processes start, build their worker, and wait for a common signal, so their
# timed work overlaps. Every round runs all four, the order rotating.

# %%
PLAIN = """
import sys, time
import numpy as np
from distrl.es import ESConfig, ESWorker, make_noise
config = ESConfig(seed=int(sys.argv[1]))
worker = ESWorker(config, make_noise(config), int(sys.argv[2]))
theta = np.load(sys.argv[3])
print("ready", flush=True)
sys.stdin.readline()
start, episodes = time.perf_counter(), 0
for _ in range(int(sys.argv[4])):
    episodes += worker.evaluate(theta, config.pairs_per_worker).returns.size
print(episodes, time.perf_counter() - start, flush=True)
"""


def plain_rate(n: int, theta_file: str) -> float:
    """Episodes per second of n plain processes working at once."""
    procs = [subprocess.Popen([sys.executable, "-c", PLAIN, str(seeds[0]), str(i), theta_file, str(scaling_iterations)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for i in range(n)]
    for p in procs:
        assert p.stdout.readline().strip() == "ready", "a plain process failed to start"
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    answers = [p.stdout.readline().split() for p in procs]
    for p in procs:
        p.wait()
    return sum(int(episodes) for episodes, _ in answers) / max(float(seconds) for _, seconds in answers)


def es_rate(es: ES) -> float:
    episodes, start = 0, time.perf_counter()
    for _ in range(scaling_iterations):
        es.theta = scaling_theta
        episodes += es.step().episodes
    return episodes / (time.perf_counter() - start)


scaling_theta = runs["es", seeds[0]]["theta"]
pool = {n: ES(ESConfig(seed=seeds[0]), n) for n in (1, 2)}
for es in pool.values():
    ray.get([w.__ray_ready__.remote() for w in es.workers])
rates = {}
with tempfile.TemporaryDirectory() as folder:
    theta_file = f"{folder}/theta.npy"
    np.save(theta_file, scaling_theta)
    parts = [("es", 1), ("es", 2), ("plain", 1), ("plain", 2)]
    for turn in range(scaling_rounds):
        for kind, n in parts[turn % 4:] + parts[:turn % 4]:
            rates[kind, n, turn] = es_rate(pool[n]) if kind == "es" else plain_rate(n, theta_file)
for es in pool.values():
    es.stop()
scaling = {kind: [rates[kind, 2, t] / rates[kind, 1, t] for t in range(scaling_rounds)] for kind in ("es", "plain")}
for kind, label in (("es", "ES, Ray workers"), ("plain", "plain processes")):
    one, two = (statistics.median(rates[kind, n, t] for t in range(scaling_rounds)) for n in (1, 2))
    print(f"{label:<16} 1: {one:6.1f} episodes/s   2: {two:6.1f} episodes/s   2 / 1 per round: median "
          f"{statistics.median(scaling[kind]):.2f} [{min(scaling[kind]):.2f}–{max(scaling[kind]):.2f}]")
record_median("es_episodes_scaling_2", scaling["es"], "x",
              f"ES episodes per second, 2 workers / 1, θ held fixed, per round of {scaling_iterations} iterations")
record_median("plain_episodes_scaling_2", scaling["plain"], "x",
              "the same episodes in 2 plain processes / 1 (no Ray, no driver): what two cores give here")
record("es_scaling_vs_plain", statistics.median(scaling["es"]) / statistics.median(scaling["plain"]), "x",
       "ES's scaling from 1 to 2 workers / the plain processes' (1 = all the machine gives)")

# %% [markdown]
# ## Composition: population-based training around unchanged PPO
#
# `distrl.pbt.PBT` drives any policy optimizer through `step()`, `get_state()` and
# `set_state()`; what a hyperparameter means to the optimizer is one function the caller
# passes, `apply`. Here it is the whole of it, and its size:

# %% code-fold=false
print(inspect.getsource(PBT))
pbt_loc = analyze(Path(inspect.getfile(distrl.pbt)).read_text()).sloc
print(f"distrl/pbt.py: {pbt_loc} lines of code (radon's SLOC)")
record("pbt_loc", pbt_loc, "lines", "distrl/pbt.py, counted by radon (SLOC)")

# %% [markdown]
# **The measurement.** A population of 4 SyncSamples PPO members (the race's settings,
# with `pbt_workers` remote evaluators each: 2 in the full profile), whose learning rate and entropy coefficient are drawn
# log-uniformly per seed from $[10^{-4.5}, 10^{-2.5}]$ and $[10^{-4}, 10^{-1}]$: a random
# search. With PBT, every 4 steps the worst member takes the state and hyperparameters of
# the best, and multiplies each hyperparameter by 0.8 or 1.2. The control is the same
# loop, the same draws and seeds, with no exploit and no explore. On two cores the
# members take turns, one step each; the time is the population's, and it stops when a
# member's last 20 episodes, all since it last took a state, average `target`.

# %% code-fold=false
def apply(opt: SyncSamples, values: dict[str, float]) -> None:
    opt.lr = values["lr"]
    opt.policy.loss = ppo_loss(clip_value=0.2, ent_coef=values["ent_coef"])

# %%
def population_run(seed: int, exploit: bool) -> dict:
    draw = np.random.default_rng(seed)
    hyperparams = [{"lr": float(10 ** draw.uniform(-4.5, -2.5)), "ent_coef": float(10 ** draw.uniform(-4, -1))} for _ in range(4)]
    members = []
    for i in range(4):
        config = WorkerConfig(num_envs=2 if pbt_workers else 4, fragment_length=128, seed=100 * seed + i,
                              policy=PolicyConfig(lr=2.5e-4))
        members.append(SyncSamples(WorkerSet(config, pbt_workers, ppo_loss(clip_value=0.2)), sample_ahead=pbt_workers > 0,
                                   seed=100 * seed + i, epochs=4, minibatch_size=128, anneal_steps=500_000))
        ray.get([w.__ray_ready__.remote() for w in members[-1].workers.remotes])
    # The control never reaches its interval: the same loop without exploit and explore.
    pbt = PBT(members, hyperparams, apply, interval=4 if exploit else sys.maxsize, seed=seed)
    curve, start = [], time.perf_counter()
    try:
        while True:
            pbt.step()
            recent = [pbt.since_copy(i)[-20:] for i in range(4)]
            best = max((float(np.mean(r)) for r in recent if len(r) == 20), default=float("nan"))
            wall = time.perf_counter() - start
            curve.append((wall, best))
            if best >= target or wall > pbt_cap_s:
                return dict(time_s=wall, reached=best >= target, curve=curve, copies=len(pbt.copies),
                            start=hyperparams, end=pbt.hyperparams)
    finally:
        for m in members:
            m.stop()


population = {}
for turn, seed in enumerate(seeds):
    for exploit in ((True, False) if turn % 2 == 0 else (False, True)):
        population[seed, exploit] = r = population_run(seed, exploit)
        drawn = ", ".join(format(h["lr"], ".1e") for h in r["start"])
        print(f"seed {seed} {'PBT    ' if exploit else 'no PBT '} {'reached' if r['reached'] else 'did NOT reach'} {target} "
              f"in {r['time_s']:6.1f} s, {r['copies']} copies; learning rates drawn {drawn}")

# %% fig-cap="The best member's mean return over its last 20 episodes (since it last took a state) against the population's wall time, with and without PBT: median across seeds, band from the lowest to the highest seed."
fig, ax = plt.subplots(figsize=(7, 4.5))
for exploit, label in ((True, "PBT"), (False, "same draws, no PBT")):
    grid = np.linspace(0, max(population[s, exploit]["curve"][-1][0] for s in seeds), 200)
    lines = np.array([np.interp(grid, [p[0] for p in population[s, exploit]["curve"]],
                                np.nan_to_num([p[1] for p in population[s, exploit]["curve"]])) for s in seeds])
    ax.plot(grid, np.median(lines, axis=0), label=label)
    ax.fill_between(grid, lines.min(axis=0), lines.max(axis=0), alpha=0.2)
ax.axhline(target, color="grey", ls=":")
ax.set_xlabel("population wall time (s)")
ax.set_ylabel("best member's mean return")
ax.legend()
ax.grid(True, alpha=0.3)
plt.show()

# %%
def population_times(exploit: bool) -> list[float]:
    return [population[s, exploit]["time_s"] if population[s, exploit]["reached"] else float("inf") for s in seeds]


for exploit, name in ((True, "pbt"), (False, "no_pbt")):
    samples = population_times(exploit)
    print(f"{name:<7} best member at {target}: median {statistics.median(samples):.1f} s "
          f"[{min(samples):.1f}–{max(samples):.1f}], "
          f"{sum(map(math.isfinite, samples))}/{len(seeds)} populations reached it")
    if all(map(math.isfinite, samples)):
        record_median(f"{name}_best_time_to_{target}_s", samples, "s",
                      "the population's wall time until its best member reaches the target, "
                      f"{'with' if exploit else 'without'} PBT")
per_seed = [a / b for a, b in zip(population_times(True), population_times(False)) if math.isfinite(a) and math.isfinite(b)]
if per_seed:
    record_median(f"pbt_vs_no_pbt_time_to_{target}", per_seed, "x",
                  "per seed: the best member's time with PBT / without, the same draws; "
                  "median over the seeds where both reached it")

# %% [markdown]
# ## What the numbers mean
#
# **Seeds and returns.** The two workers' answers come to the same 1,172 bytes per
# iteration (586 each: 8 indices, 16 returns, 16 lengths and pickle's framing) at every
# $D$, where full vectors grow as $8 \cdot 4D$ bytes per worker; the ratio is set by $D$
# alone. What the protocol does not remove is the way down: $\theta$ is $4D$ bytes per
# iteration either way, put once in the object store and mapped by every worker of a
# node. At $D = 10^7$ an iteration took seconds in both protocols here, most of it the 32
# episodes of a network with 1.4 million hidden units; the 640 MB of vectors added the
# difference in the table's last column.
#
# **The tree.** The root's CPU time per iteration roughly follows one cost per message it
# handles (the fit's line above; the points scatter around it from run to run): the flat
# driver pays it $N$ times, the tree $2G$ times. The fitted lines cross above the model's
# $N = 2G$ (the printed crossings; how far above varies between runs): the model gives
# both drivers one fixed cost, and the tree's second round adds to the root's.
# Past the crossing the tree's root stays nearly flat while the flat driver's grows. On
# these two cores the tree does not reliably shorten an iteration's wall time: its
# sub-drivers run on the same cores as the workers, and it adds a round, so which of the
# two finishes first varies between runs (`tree_vs_flat_wall_time_32` was 1.13, 1.22 and
# 0.85 in the three full runs of 2026-12-05 before this page's). What it removes is the root's share, which on a
# cluster, where workers and sub-drivers have cores of their own, is the part that grows
# with $N$: at the fitted cost per message (a model, carried far past what was measured),
# a flat driver at 8,192 workers would spend seconds per iteration on answers alone.
#
# **Learning CartPole.** ES needed about as many episodes as PPO and far less time
# (the table above, and the ratios below): its policy is a numpy function of 114
# parameters acting deterministically, an iteration's update is one weighted sum, and
# nothing is back-propagated; each PPO iteration adds 16 minibatch updates of a torch
# network to its sampling. That is the two algorithms on this task, not a rule: ES's cost
# grows with the number of episodes a harder task needs, and its episodes carry no credit
# assignment within them. Against EvoTorch the algorithm is the same and the time is
# not: the two runs' episode counts overlap across the seeds (the table's ranges), with
# EvoTorch's median above distrl's (the episode ratio below), while the time differs
# several-fold. The lab does not separate the causes further than the differences listed
# with the contenders (the network's per-step call, the pairs' start states).
#
# **Scaling.** On this machine two processes do not do twice the work of one: the plain
# processes' ratio above is the ceiling, and ES's share of it is printed below, with
# whether the two ratios' ranges over the rounds overlap (on a shared machine, a share
# above 1 is noise). Whatever ES misses of it can only be what it adds to the plain
# processes: the driver's work and each iteration's wait for its slower worker.
#
# **Composition.** PBT is the class printed above: 36 lines of code that never look
# inside an optimizer, plus a three-line `apply` that does. Whether its population's best
# member reached the target sooner than the best of the same four draws without it is
# counted per seed below. It need not in every seed: exploiting every 4 steps copies
# whichever member's last 20 episodes look best, and a copy of a member that then learns
# slower can cost the population its lead. Five seeds of a four-member population measure
# PBT against a random search of the same draws on this task, not by how much it helps in
# general.

# %%
def ratio_of_medians(name: str, base: str, key: str) -> float:
    return statistics.median(values(name, key)) / statistics.median(values(base, key))


faster = sum(a < b for a, b in zip(population_times(True), population_times(False)))
overlap = min(scaling["es"]) <= max(scaling["plain"]) and min(scaling["plain"]) <= max(scaling["es"])
for line in (f"ES / PPO, time to {target}: {ratio_of_medians('es', 'ppo', 'time_s'):.2f}×; "
             f"episodes: {ratio_of_medians('es', 'ppo', 'episodes'):.2f}×",
             f"ES without weight decay / EvoTorch, time: {ratio_of_medians('es_matched', 'evotorch', 'time_s'):.2f}×; "
             f"episodes: {ratio_of_medians('es_matched', 'evotorch', 'episodes'):.2f}×",
             "ES's 1 → 2 worker scaling / the plain processes': "
             f"{statistics.median(scaling['es']) / statistics.median(scaling['plain']):.2f}; "
             f"their ranges over the rounds {'overlap' if overlap else 'do not overlap'}",
             f"PBT's best member reached {target} sooner than without PBT in {faster} of {len(seeds)} seeds"):
    print(line)
