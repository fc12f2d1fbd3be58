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
#     profiles:
#       full:
#         learn_seconds: 20
#         model_sizes: [100000, 1000000, 10000000]
#         shard_counts: [1, 2, 4]
#         updates: 20
#         warmup: 10
#         worker_counts: [1, 2, 4]
#       quick:
#         learn_seconds: 4
#         model_sizes: [100000, 1000000]
#         shard_counts: [1, 2]
#         updates: 3
#         warmup: 2
#         worker_counts: [2]
#     summary: Synchronous, asynchronous and sharded parameter servers on Ray, checked
#       against single-process training and measured against the textbook version.
#     title: Parameter servers on Ray
# ---

# %% [markdown]
# # Parameter servers on Ray
#
# **The question.** A parameter server separates the workers that compute gradients from
# the servers that hold the parameters and apply updates (Li et al., OSDI 2014; the RLlib
# paper's asynchronous-gradients optimizer). What does each protocol cost per byte moved,
# why shard the parameters, and what does asynchrony do to learning?
#
# **The idea.** With $N$ workers, each computing $g_i$ on its own data, the *synchronous*
# server waits for all $N$ and applies their mean,
#
# $$\theta_{t+1} = \theta_t - \alpha \cdot \frac{1}{N}\sum_{i=1}^{N} g_i(\theta_t),$$
#
# which is exactly one step of single-process training on the union of their batches (for
# a loss that is a mean). The *asynchronous* server applies each gradient when it arrives,
# $\theta_{t+1} = \theta_t - \alpha\, g_i(\theta_{t-\tau})$, where the *staleness* $\tau$
# counts the updates applied since worker $i$ pulled its parameters: no one waits, but
# gradients point from where the parameters were. Each update moves $P$ parameters of 4
# bytes twice per worker (push the gradient, pull the parameters), so the effective
# bandwidth is $2 N P \cdot 4 \cdot (\text{updates/s})$; one server does all the arithmetic,
# $K$ *shards* split it $K$ ways.

# %% tags=["parameters"]
model_sizes = [100_000, 1_000_000, 10_000_000]  # parameters P
worker_counts = [1, 2, 4]  # workers N
shard_counts = [1, 2, 4]  # server shards K
updates = 20  # timed updates per configuration
warmup = 10  # untimed updates before them (see the throughput section)
learn_seconds = 20  # wall-clock budget of each CartPole training run

# %%
import os
import statistics
import time
from collections import defaultdict

import matplotlib.pyplot as plt
import numpy as np
import ray
import torch

from distrl import cluster
from distrl.losses import a2c_loss
from distrl.parameter_server import Optimizer, ShardedServer, assemble
from distrl.policy import Policy, PolicyConfig
from distrl.rollout_worker import RolloutWorker, WorkerConfig
from studylog import record

cluster.init()
CORES = os.cpu_count()


def memcpy_rate(size, rounds=3, copies=30):
    """What one core copies per second (GB/s) between two arrays of `size` float32s: the
    best round's median copy. The best, because this is the machine's limit, and a round
    slowed by other work on the machine (actors exiting, another job) says nothing about it."""
    a, b = np.ones(size, np.float32), np.ones(size, np.float32)
    np.copyto(a, b)
    medians = []
    for _ in range(rounds):
        times = []
        for _ in range(copies):
            start = time.perf_counter()
            np.copyto(a, b)
            times.append(time.perf_counter() - start)
        medians.append(statistics.median(times))
    return size * 4 / min(medians) / 1e9

# %% [markdown]
# ## Correctness first: synchronous PS training is single-process training
#
# Two workers each take half of a fixed batch of CartPole experience, compute the A2C
# gradient of distrl's Policy on it, and push it; the server (two shards) applies the
# mean. The same Policy trained in one process on the whole batch must end with the same
# parameters, for SGD (the update written out) and Adam (torch.optim.Adam). Gradient
# clipping is off: clipping each half is not clipping the whole.

# %%
batch = RolloutWorker(WorkerConfig(num_envs=4, fragment_length=64, seed=3)).sample()
halves = [batch.slice(0, len(batch) // 2), batch.slice(len(batch) // 2, len(batch))]
space = RolloutWorker(WorkerConfig(num_envs=1, fragment_length=1)).env
config = PolicyConfig(hidden=(64, 64), lr=1e-3, max_grad_norm=float("inf"), seed=0)


def make_policy():
    return Policy(space.single_observation_space, space.single_action_space, a2c_loss(), config)


equivalence = {}
for kind in ("sgd", "adam"):
    reference = make_policy()
    for _ in range(5):
        if kind == "adam":
            reference.learn_on_batch(batch)  # torch.optim.Adam, eps 1e-5
        else:
            grads, _ = reference.compute_gradients(batch)
            reference.set_weights(reference.get_weights() - config.lr * grads)
    workers = [make_policy() for _ in halves]
    server = ShardedServer(workers[0].get_weights(), shards=2, optimizer=Optimizer(kind, lr=config.lr, eps=1e-5))
    weights = server.pull()
    for _ in range(5):
        pulled = assemble(ray.get(weights))
        grads = []
        for worker, half in zip(workers, halves):
            worker.set_weights(pulled)
            grads.append(ray.put(worker.compute_gradients(half)[0]))
        weights, lost = server.sync_step(grads)
    equivalence[kind] = float(np.abs(assemble(ray.get(weights)) - reference.get_weights()).max())
    server.stop()
print("max |θ_PS − θ_single| after 5 steps:", {k: f"{v:.1e}" for k, v in equivalence.items()})
assert max(equivalence.values()) <= 1e-5

# %% [markdown]
# ## Throughput: distrl's server against the textbook one
#
# The workers here do no learning: each holds a parameter vector and a fixed gradient,
# copies the pulled parameters into its vector and returns the gradient, so what is
# measured is the system. The *textbook* version follows the parameter-server example in
# Ray's documentation, written afresh: one server actor whose `apply_gradients(*gradients)`
# stacks and sums the gradients, steps a torch optimizer and returns the weights. distrl's
# server reads each gradient in place and updates in place: with SGD each gradient costs
# one fused pass, $\theta \leftarrow \theta - \frac{\alpha}{N} g_i$ (read $\theta$ and $g_i$, write
# $\theta$), where numpy would scale and subtract in two; with $K$ shards it does this in $K$
# actors at once.
#
# Each configuration is timed after `warmup` untimed updates. The first updates of a fresh
# actor are slow for a reason that has nothing to do with either server: a process maps
# the object store's shared memory page by page as it first writes there, and a put of
# $10^7$ floats into a region it has not touched yet takes about 9,800 page faults, 16 ms
# against 5 ms once mapped (measured with `getrusage` in an actor). A server runs for
# thousands of updates, so the steady state is the figure that matters.

# %%
@ray.remote(num_cpus=cluster.ACTOR_CPUS)
class GradientWorker:
    def __init__(self, size):
        self.params = np.zeros(size, np.float32)
        self.grad = np.random.default_rng(0).standard_normal(size).astype(np.float32) * 1e-3

    def compute(self, *shards):  # distrl: the pulled shards, copied into this worker's parameters
        assemble(shards, out=self.params)
        return self.grad

    def compute_gradients(self, weights):  # textbook: the pulled weights, copied likewise
        self.params[:] = weights
        return self.grad


@ray.remote(num_cpus=cluster.ACTOR_CPUS)
class TextbookServer:
    """The shape of Ray's documented parameter server, on one flat vector."""

    def __init__(self, size, lr):
        self.param = torch.nn.Parameter(torch.zeros(size))
        self.optimizer = torch.optim.SGD([self.param], lr=lr)

    def apply_gradients(self, *gradients):
        summed = np.stack(gradients).sum(axis=0)
        self.optimizer.zero_grad()
        self.param.grad = torch.from_numpy(summed)
        self.optimizer.step()
        return self.param.detach().numpy().copy()

    def get_weights(self):
        return self.param.detach().numpy().copy()


def timed(step, n=updates, warm=warmup):
    for _ in range(warm):
        step()
    start = time.perf_counter()
    for _ in range(n):
        step()
    return n / (time.perf_counter() - start)  # updates per second


def distrl_sync(workers, size, k):
    server = ShardedServer(np.zeros(size, np.float32), shards=k, optimizer=Optimizer("sgd", lr=0.01))
    state = {"weights": server.pull()}

    def step():
        grads = [w.compute.remote(*state["weights"]) for w in workers]
        state["weights"], lost = server.sync_step(grads)  # returns once every shard has applied
    rate = timed(step)
    server.stop()
    return rate


def distrl_async(workers, size, k):
    """Each worker: pull, compute, push, again; the driver only moves references."""
    server = ShardedServer(np.zeros(size, np.float32), shards=k, optimizer=Optimizer("sgd", lr=0.01))
    pending = {w.compute.remote(*server.pull()): w for w in workers}

    def step():  # one applied update
        (done,), _ = ray.wait(list(pending))
        worker = pending.pop(done)
        server.push(done, version=0, wait=False)
        pending[worker.compute.remote(*server.pull())] = worker
    rate = timed(step, updates * len(workers), warmup * len(workers))
    ray.get(list(pending))
    server.stop()
    return rate


def textbook_sync(workers, size):
    server = TextbookServer.remote(size, 0.01)
    state = {"weights": server.get_weights.remote()}

    def step():
        state["weights"] = server.apply_gradients.remote(*[w.compute_gradients.remote(state["weights"]) for w in workers])
        ray.wait([state["weights"]], fetch_local=False)
    rate = timed(step)
    ray.kill(server)
    return rate


def textbook_async(workers, size):
    server = TextbookServer.remote(size, 0.01)
    weights = server.get_weights.remote()
    pending = {w.compute_gradients.remote(weights): w for w in workers}

    def step():
        (done,), _ = ray.wait(list(pending))
        worker = pending.pop(done)
        pending[worker.compute_gradients.remote(server.apply_gradients.remote(done))] = worker
    rate = timed(step, updates * len(workers), warmup * len(workers))
    ray.get(list(pending))
    ray.kill(server)
    return rate


memcpy_quiet = memcpy_rate(max(model_sizes))  # before any worker or server exists
throughput = {}  # (system, mode, P, N, K) -> updates/s
for size in model_sizes:
    pool = [GradientWorker.remote(size) for _ in range(max(worker_counts))]  # the same workers for all
    for n in worker_counts:
        workers = pool[:n]
        throughput["textbook", "sync", size, n, 1] = textbook_sync(workers, size)
        throughput["textbook", "async", size, n, 1] = textbook_async(workers, size)
        for k in shard_counts:
            throughput["distrl", "sync", size, n, k] = distrl_sync(workers, size, k)
            throughput["distrl", "async", size, n, k] = distrl_async(workers, size, k)
    for actor in pool:
        ray.kill(actor)


def bandwidth(size, n, rate):
    return 2 * n * size * 4 * rate / 1e9  # GB/s pushed + pulled


for (system, mode, size, n, k), rate in throughput.items():
    print(f"{system:8s} {mode:5s} P={size:>9,d} N={n} K={k}: {rate:7.1f} updates/s  {bandwidth(size, n, rate):5.2f} GB/s")

# %% [markdown]
# ## Where an update's time goes, and the physical limit
#
# For the largest model, two workers, synchronous, Ray's task timeline splits each task
# into reading its arguments from the store (deserialize), running (the server's update,
# the worker's copy of the parameters) and writing its result into
# the store (serialize). On one node nothing crosses a wire: "transfer" is the store's
# shared memory, paid in those reads and writes. The limit is what one core copies per
# second, measured before the throughput runs and again here, keeping the faster: one run
# of this lab measured 7.4 GB/s here, against 14 GB/s on the same machine at rest, and the
# halved limit nearly doubled the bandwidth fraction.

# %%
big = max(model_sizes)
memcpy_after = memcpy_rate(big)
memcpy_gbs = max(memcpy_quiet, memcpy_after)

n2 = 2 if 2 in worker_counts else worker_counts[-1]  # the worker count the headline figures use
best_k = max(shard_counts, key=lambda k: throughput["distrl", "sync", big, n2, k])
workers = [GradientWorker.remote(big) for _ in range(n2)]
server = ShardedServer(np.zeros(big, np.float32), shards=best_k, optimizer=Optimizer("sgd", lr=0.01))
weights = server.pull()
for _ in range(2):
    weights, _ = server.sync_step([w.compute.remote(*weights) for w in workers])
time.sleep(1.0)
start = time.time()
probe_updates = 5
for _ in range(probe_updates):
    weights, _ = server.sync_step([w.compute.remote(*weights) for w in workers])
time.sleep(3.0)  # task events reach the timeline asynchronously
phases = {"task:deserialize_arguments": "read (deserialize)", "task:execute": "compute / apply (execute)",
          "task:store_outputs": "write (serialize)"}
events = [e for e in ray.timeline() if e.get("ts", 0) / 1e6 >= start]
# The phases carry only the process (tid) they ran in; the task events name the actor class.
role = {e["tid"]: "server" if "ParameterServer" in e["cat"] else "worker" for e in events if e.get("cat", "").startswith("task::")}
spent = defaultdict(float)
for event in events:
    if event.get("name") in phases and event["tid"] in role:
        spent[role[event["tid"]], phases[event["name"]]] += event["dur"] / 1e6 / probe_updates
server.stop()
for actor in workers:
    ray.kill(actor)
for (role, phase), seconds in sorted(spent.items()):
    print(f"{role:6s} {phase:28s} {seconds * 1e3:6.1f} ms per update (summed over actors)")
print(f"memcpy, one core: {memcpy_quiet:.1f} GB/s before the throughput runs, {memcpy_after:.1f} GB/s after; the limit: {memcpy_gbs:.1f} GB/s")

# %% [markdown]
# ## Learning: A3C through the server, against synchronous
#
# Two rollout workers (CartPole-v1, 8 environments, 32-step fragments) each pull the
# parameters, sample, compute the A2C gradient and hand it back; the server applies Adam.
# Synchronous: every update waits for both and applies their mean. Asynchronous (A3C): each
# gradient is pushed as it arrives, and that worker pulls again at once. Same budget of
# wall-clock time for both.

# %%
class A3CWorker(RolloutWorker):
    @ray.method(num_returns=2)
    def gradient(self, *shards):
        """Pull, sample, differentiate: the gradient, and (steps, finished episodes' returns)."""
        self.set_weights(assemble(shards))
        batch = self.sample()
        grads, _ = self.compute_gradients(batch)
        return grads, (len(batch), self.last_episodes.returns)


learn_config = WorkerConfig(num_envs=8, fragment_length=32, policy=PolicyConfig(hidden=(64, 64), max_grad_norm=0.5))
remote_worker = ray.remote(num_cpus=cluster.ACTOR_CPUS)(A3CWorker)


def train(mode, seed=0):
    cfg = WorkerConfig(**{**learn_config.__dict__, "seed": seed})
    workers = [remote_worker.remote(cfg, i + 1, a2c_loss()) for i in range(2)]
    init = RolloutWorker(cfg, 0, a2c_loss()).get_weights()
    server = ShardedServer(init, shards=1, optimizer=Optimizer("adam", lr=1e-3, eps=1e-5))
    ray.get([w.get_weights.remote() for w in workers])  # started, before the clock starts
    curve, returns, steps, start = [], [], 0, time.perf_counter()

    def account(info):
        nonlocal steps
        n, finished = info
        steps += n
        returns.extend(finished)
        if returns:
            curve.append((time.perf_counter() - start, steps, float(np.mean(returns[-20:]))))

    if mode == "sync":
        weights = server.pull()
        while time.perf_counter() - start < learn_seconds:
            calls = [w.gradient.remote(*weights) for w in workers]
            weights, _ = server.sync_step([g for g, _ in calls])
            for info in ray.get([i for _, i in calls]):
                account(info)
    else:
        applied = 0
        pending = {}
        for w in workers:
            grad, info = w.gradient.remote(*server.pull())
            pending[info] = (w, grad, applied)
        while time.perf_counter() - start < learn_seconds:
            (done,), _ = ray.wait(list(pending))
            w, grad, version = pending.pop(done)
            account(ray.get(done))
            server.push(grad, version)
            applied += 1  # the server runs our calls in order: this push, then the next pull
            grad, info = w.gradient.remote(*server.pull())
            pending[info] = (w, grad, applied)
        ray.get(list(pending))
    staleness = server.stats()[0]["staleness"]
    server.stop()
    for w in workers:
        ray.kill(w)
    return curve, staleness


learning = {mode: train(mode) for mode in ("sync", "async")}
for mode, (curve, staleness) in learning.items():
    t, s, r = curve[-1] if curve else (0, 0, float("nan"))
    print(f"{mode:5s}: {s:,d} env steps in {t:.0f} s, mean return of the last 20 episodes {r:.0f}"
          + (f"; staleness mean {np.mean(staleness):.2f}, max {max(staleness)}" if mode == "async" and staleness else ""))

# %% [markdown]
# ## Plots

# %%
fig, axes = plt.subplots(2, 3, figsize=(15, 8))
for col, size in enumerate(model_sizes[-3:]):
    ax = axes[0, col]
    for system, mode, marker in (("distrl", "sync", "o"), ("distrl", "async", "s"), ("textbook", "sync", "^"), ("textbook", "async", "v")):
        for k in (shard_counts if system == "distrl" else [1]):
            ys = [throughput[system, mode, size, n, k] for n in worker_counts]
            label = f"{system} {mode}" + (f", K={k}" if system == "distrl" else "")
            ax.plot(worker_counts, ys, marker=marker, ls="-" if system == "distrl" else "--", label=label)
    ax.set(title=f"P = {size:,d}", xlabel="workers N", ylabel="updates/s", yscale="log")
    ax.legend(fontsize=6)
sizes = np.array(model_sizes)
for system, k in (("distrl", best_k), ("textbook", 1)):
    axes[1, 0].loglog(sizes, [bandwidth(s, n2, throughput[system, "sync", s, n2, k]) for s in sizes], marker="o",
                      label=f"{system} sync, N={n2}" + (f", K={k}" if system == "distrl" else ""))
axes[1, 0].axhline(memcpy_gbs, color="black", ls=":", label=f"memcpy, one core ({memcpy_gbs:.1f} GB/s)")
axes[1, 0].set(title="effective bandwidth (push + pull)", xlabel="parameters P", ylabel="GB/s")
axes[1, 0].legend(fontsize=7)
for mode, (curve, _) in learning.items():
    if curve:
        t, s, r = zip(*curve)
        axes[1, 1].plot(t, r, label=mode)
        axes[1, 2].plot(s, r, label=mode)
axes[1, 1].set(title="CartPole, 2 workers: return vs wall time", xlabel="seconds", ylabel="mean return, last 20 episodes")
axes[1, 2].set(title="return vs env steps", xlabel="env steps", ylabel="mean return, last 20 episodes")
staleness = learning["async"][1]
if staleness:
    inset = axes[1, 2].inset_axes([0.62, 0.12, 0.35, 0.35])
    inset.hist(staleness, bins=range(max(staleness) + 2), color="tab:orange")
    inset.set_title("A3C staleness", fontsize=7)
    inset.tick_params(labelsize=6)
for ax in axes[1, 1:]:
    ax.legend(fontsize=7)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The numbers

# %%
record("ps_sync_equivalence_err", max(equivalence.values()), "abs", "max |θ_PS − θ_single| after 5 sync steps, SGD and Adam")
mid = 1_000_000
if mid in model_sizes:
    record("ps_updates_per_s_1m_sync_2w", max(throughput["distrl", "sync", mid, n2, k] for k in shard_counts), "1/s",
           f"updates/s, 10^6 params, {n2} workers, sync (best of K = {shard_counts})")
if big == 10_000_000:
    best = throughput["distrl", "sync", big, n2, best_k]
    record("ps_vs_textbook_10m", best / throughput["textbook", "sync", big, n2, 1], "x",
           f"distrl (K={best_k}) / textbook updates/s, 10^7 params, {n2} workers, sync")
    record("ps_bandwidth_vs_memcpy_10m", bandwidth(big, n2, best) / memcpy_gbs, "fraction",
           "effective bandwidth / one-core memcpy bandwidth, 10^7 params, sync")
record("ps_async_staleness_mean", float(np.mean(learning["async"][1])) if learning["async"][1] else 0.0, "versions",
       "mean staleness of applied gradients, A3C with 2 workers")
cluster.shutdown()

# %% [markdown]
# ## What it means
#
# *Cost per byte.* On one machine a push or a pull is a write into or a read from the
# object store's shared memory, so an update costs a few passes over $P$ floats: the
# worker writes its gradient once, each shard reads its slice in place and subtracts it in
# one fused pass, without temporaries, and writes its new shard once. The textbook server makes
# more passes (it stacks the gradients into a new array, sums into another, copies the
# weights out), and each new array of that size costs fresh pages; at $10^7$ parameters
# that is what separates the two. Sharding helps until there are more shards than cores:
# two shards update on two cores at once; four share them.
#
# *Staleness.* With two workers the A3C server applies each gradient about one update
# after the parameters it was computed on (the other worker's push lands in between), so
# the gradients are almost fresh and asynchrony costs little here, while no update waits
# for the slower worker. With many workers staleness grows with $N$ and the step size has
# to shrink with it, which is why synchronous data-parallel training won in practice once
# all-reduce made the synchronous step cheap.
#
# *Failures.* A server checkpoints every $k$ updates; if it dies, it is restarted from the
# last checkpoint and at most $k - 1$ updates to its shard are lost (the test suite kills a
# shard and checks). A worker that dies is left out of the synchronous mean; the step does
# not wait for it.
