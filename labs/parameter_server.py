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
#         gradients_per_step: 32
#         learn_steps: 65536
#         learn_workers: [1, 2, 4, 8]
#         model_sizes: [100000, 1000000, 10000000]
#         rounds: 7
#         seeds: 3
#         shard_counts: [1, 2, 4]
#         updates: 10
#         warmup: 10
#         worker_counts: [1, 2, 4]
#       quick:
#         gradients_per_step: 4
#         learn_steps: 1024
#         learn_workers: [1, 2]
#         model_sizes: [1000000]
#         rounds: 2
#         seeds: 1
#         shard_counts: [1, 2]
#         updates: 1
#         warmup: 1
#         worker_counts: [2]
#     summary: Synchronous, asynchronous and sharded parameter servers on Ray, over its
#       object store and over shared memory, checked against single-process training and
#       measured against Ray's documented example and the memory-traffic bound.
#     title: Parameter servers on Ray
# ---

# %% [markdown]
# # Parameter servers on Ray
#
# **The question.** A parameter server separates the workers that compute gradients from
# the servers that hold the parameters and apply updates [@li2014; the asynchronous-gradients
# optimizer of @liang2018]. What does each protocol cost per byte moved,
# what does sharding the server buy, and what does asynchrony do to the gradients and to
# learning?
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
# gradients point from where the parameters were. Every message carries $P$ parameters of
# 4 bytes. A synchronous update moves $2NP \cdot 4$ bytes ($N$ pushes and $N$ pulls), an
# asynchronous one $2P \cdot 4$ (one push, one pull), so the effective bandwidth is
# $2NP\cdot4\cdot(\text{updates/s})$ and $2P\cdot4\cdot(\text{updates/s})$. One server does
# all the arithmetic; $K$ *shards* split it $K$ ways.
#
# **Two transports.** The same server code runs over Ray's object store, where every push
# and pull is a fresh object and every update is tasks the driver submits
# (`distrl.parameter_server`), and over shared memory (`distrl.shm_server`), where θ and
# each worker's gradient live in buffers mapped once by all, the processes signal each
# other directly, and the driver only starts a round of updates. The difference between
# the two is what the object store and the scheduler cost per update.

# %% tags=["parameters"]
model_sizes = [100_000, 1_000_000, 10_000_000]  # parameters P
worker_counts = [1, 2, 4]  # workers N in the throughput runs
shard_counts = [1, 2, 4]  # server shards K
updates = 10  # updates per contender per round (times N for asynchronous ones)
rounds = 7  # timed rounds, the contenders taking turns
warmup = 10  # untimed updates per contender before the rounds (see the throughput section)
learn_workers = [1, 2, 4, 8]  # workers N in the learning runs
seeds = 3  # learning runs per contender and N
learn_steps = 65_536  # environment steps per learning run (a multiple of 256 · gradients_per_step)
gradients_per_step = 32  # gradients AsyncGradients applies per step() (G)

# %%
import os
import statistics
import time
from collections import defaultdict
from dataclasses import replace
from functools import partial

import matplotlib.pyplot as plt
import numpy as np
import ray
import torch

from distrl import cluster
from distrl.losses import a2c_loss
from distrl.optimizers import AsyncGradients
from distrl.optimizers.base import PolicyOptimizer
from distrl.parameter_server import Optimizer, ShardedServer, assemble
from distrl.shm_server import ServerClient, ShmServer
from distrl.policy import Policy, PolicyConfig
from distrl.rollout_worker import RolloutWorker, WorkerConfig
from distrl.worker_set import WorkerSet
from studylog import record, record_environment, record_median

CPUS = cluster.init()["CPU"]  # what Ray schedules actors on
record_environment("ray", cluster.describe())  # where the actors ran: this machine or a cluster


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


def iqr(values, digits=1):
    """'median [first quartile–third quartile]'."""
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return f"{median:.{digits}f} [{q1:.{digits}f}–{q3:.{digits}f}]"


def min_max(values, digits=1):
    """'median (min–max)'."""
    return f"{np.median(values):.{digits}f} ({np.min(values):.{digits}f}–{np.max(values):.{digits}f})"


def error_bars(series):
    """Medians and their distances to the quartiles, for matplotlib's yerr."""
    q1, median, q3 = np.percentile(np.asarray(series), [25, 50, 75], axis=1)
    return median, np.vstack([median - q1, q3 - median])

# %% [markdown]
# ## Correctness first: synchronous PS training is single-process training
#
# Two workers each take half of a fixed batch of CartPole experience, compute the A2C
# gradient of distrl's Policy on it, and push it; the server applies the mean: over the
# object store (two shards), and over shared memory (one server, two worker processes). The same Policy trained in one process on the whole batch must end with the same
# parameters, for SGD (the update written out) and Adam (torch.optim.Adam). Gradient
# clipping is off: clipping each half is not clipping the whole.

# %% code-fold=false
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
    equivalence[f"{kind}, object store"] = float(np.abs(assemble(ray.get(weights)) - reference.get_weights()).max())
    server.stop()


@ray.remote(num_cpus=cluster.actor_cpus())
class HalfBatchWorker(ServerClient):
    """A worker of the shared-memory server: the same Policy and half batch, in its own process."""

    def __init__(self, half, observation_space, action_space):  # the spaces: the driver's environment does not pickle
        self.policy, self.half = Policy(observation_space, action_space, a2c_loss(), config), half

    def gradient_at(self, params):
        self.policy.set_weights(params)
        return self.policy.compute_gradients(self.half)[0]


shm_workers = [HalfBatchWorker.remote(half, space.single_observation_space, space.single_action_space) for half in halves]
for kind in ("sgd", "adam"):
    reference = make_policy()
    for _ in range(5):
        if kind == "adam":
            reference.learn_on_batch(batch)
        else:
            grads, _ = reference.compute_gradients(batch)
            reference.set_weights(reference.get_weights() - config.lr * grads)
    server = ShmServer(make_policy().get_weights(), shm_workers, optimizer=Optimizer(kind, lr=config.lr, eps=1e-5))
    assert server.transport == "shm"
    server.sync(5)
    equivalence[f"{kind}, shm"] = float(np.abs(server.pull() - reference.get_weights()).max())
    server.stop()
for actor in shm_workers:
    ray.kill(actor)
print("max |θ_PS − θ_single| after 5 steps:", {k: f"{v:.1e}" for k, v in equivalence.items()})
assert max(equivalence.values()) <= 1e-5

# %% [markdown]
# ## Throughput: distrl's server against Ray's documented one
#
# The workers here do no learning: each holds a parameter vector and a fixed gradient,
# copies the parameters it is sent into its own and returns the gradient, so what is
# measured is the system.
#
# The reference is the *Parameter Server* example of Ray's documentation
# (<https://docs.ray.io/en/latest/ray-core/examples/plot_parameter_server.html>, Ray
# Core examples), run as written except for the model: its `ParameterServer` actor holds
# a model and a `torch.optim.SGD`; `apply_gradients(*gradients)` stacks and sums the
# workers' gradients per parameter tensor (`np.stack(...).sum(axis=0)`), zeroes the
# gradients, sets the sums as the model's gradients (`torch.from_numpy`), steps the
# optimizer and returns `get_weights()`, the model's state dict as CPU tensors; its
# `DataWorker.compute_gradients` loads the weights it is sent (`load_state_dict`) and
# returns its gradients as numpy arrays. Adapted here: the MNIST ConvNet is replaced by
# a module holding one flat parameter of $P$ floats with the same four helpers (get/set
# weights, get/set gradients), the worker returns a fixed gradient instead of running a
# batch through the model, every actor asks Ray for the same share of a CPU (a server of
# $K$ shards, for the same in all), and the driver waits for each synchronous update
# (the example waits every tenth, to evaluate), as distrl's `sync_step` does. The
# example steps on the sum of the gradients and distrl on their mean, the same work. The
# asynchronous loop is the example's: wait for any gradient, apply it, send that worker
# the new weights.
#
# The example's weights travel as torch tensors, which Ray 2.60 pickles (torch writes
# each tensor's storage into a byte string), so they are copied on the way into the
# store and copied again out of it on the way back; numpy arrays go into the store in
# one copy and are read in place (Ray's zero-copy path for tensors,
# `RAY_ENABLE_ZERO_COPY_TORCH_TENSORS`, is off by default). So one more contender,
# *docs, numpy weights*, differs from the example in that one thing: its model's
# `get_weights` returns the state dict as numpy arrays (and `set_weights` loads them as
# such). It separates what the serialization costs from what the server's own passes
# cost.
#
# distrl's server reads each gradient in place and updates in place: with SGD each gradient
# costs one fused pass, $\theta \leftarrow \theta - \frac{\alpha}{N} g_i$ (read $\theta$ and
# $g_i$, write $\theta$); with $K$ shards it does this in $K$ actors at once. The like-for-like
# comparison is $K = 1$ (one server process each); $K = 2, 4$ are a separate table.
#
# *distrl, shm* is the same server (one process, the same fused pass) and the same worker
# processes over shared memory: a worker copies θ from the server's buffer into its own
# parameters, as `compute` copies the pulled shards, and copies its gradient into its
# buffer, where the object-store path's return copies it into the store. So the two
# distrl rows do the same arithmetic and differ in the transport: fresh objects and tasks
# through the driver, or buffers mapped once and direct signals. One copy goes with the
# store: a synchronous update's new θ is copied into it once (the store owns its memory),
# where over shared memory the workers read the server's θ in place. Its
# asynchronous rounds give each worker an equal share of the pushes (the object-store
# loop lets whichever worker is back first push next; the workers are identical).
#
# All contenders of one $(P, N)$ take turns: each first makes `warmup` untimed updates, then
# in each of `rounds` rounds every contender makes `updates` updates (`updates`·$N$ for an
# asynchronous one), the order rotating from round to round, so a slow spell of the machine
# falls on all of them. Tables give the median and the interquartile range over rounds;
# ratios are taken round by round (both contenders of a ratio ran in the same round). The
# warm-up matters for a reason that has nothing to do with either server: a process maps the
# object store's shared memory page by page as it first writes there, and a put of $10^7$
# floats into a region it has not touched yet takes one page fault per 4 KiB page, about
# 9,800 (the all-reduce lab measures what a put costs with its faults and without). A server
# runs for thousands of updates, so the steady state is the figure that matters.

# %% timeout_s=1800
class FlatModel(torch.nn.Module):
    """The documentation example's model, reduced to one flat parameter of `size` floats,
    with the example's four helpers."""

    def __init__(self, size):
        super().__init__()
        self.theta = torch.nn.Parameter(torch.zeros(size))

    def get_weights(self):
        return {name: tensor.cpu() for name, tensor in self.state_dict().items()}

    def set_weights(self, weights):
        self.load_state_dict(weights)

    def get_gradients(self):
        return [None if p.grad is None else p.grad.data.cpu().numpy() for p in self.parameters()]

    def set_gradients(self, gradients):
        for g, p in zip(gradients, self.parameters()):
            if g is not None:
                p.grad = torch.from_numpy(g)


class NumpyWeights(FlatModel):
    """The control: the same model, its weights sent as numpy arrays instead of torch tensors."""

    def get_weights(self):
        return {name: tensor.numpy() for name, tensor in self.state_dict().items()}

    def set_weights(self, weights):
        self.load_state_dict({name: torch.from_numpy(w) for name, w in weights.items()})


@ray.remote(num_cpus=cluster.actor_cpus())
class DocsParameterServer:
    """Ray's documented ParameterServer, on the flat model (or the control's)."""

    def __init__(self, size, lr, model=FlatModel):
        self.model = model(size)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=lr)

    def apply_gradients(self, *gradients):
        summed = [np.stack(per_tensor).sum(axis=0) for per_tensor in zip(*gradients)]
        self.optimizer.zero_grad()
        self.model.set_gradients(summed)
        self.optimizer.step()
        return self.model.get_weights()

    def get_weights(self):
        return self.model.get_weights()


@ray.remote(num_cpus=cluster.actor_cpus())
class GradientWorker(ServerClient):
    """Every contender's worker, so that all servers are fed by the same processes."""

    def __init__(self, size):
        self.params = np.zeros(size, np.float32)
        self.grad = np.random.default_rng(0).standard_normal(size).astype(np.float32) * 1e-3
        self.model, self.numpy_model = FlatModel(size), NumpyWeights(size)
        for model in (self.model, self.numpy_model):
            model.set_gradients([self.grad])  # shares the array: no copy

    def compute(self, *shards):  # distrl: the pulled shards, copied into this worker's parameters
        assemble(shards, out=self.params)
        return self.grad

    def gradient_at(self, params):  # distrl over shared memory: the same copy; the gradient is then copied into the buffer
        np.copyto(self.params, params)
        return self.grad

    def compute_gradients(self, weights):  # the example's DataWorker: load the weights, return the gradients
        self.model.set_weights(weights)
        return self.model.get_gradients()

    def compute_gradients_numpy(self, weights):  # the same, for the control
        self.numpy_model.set_weights(weights)
        return self.numpy_model.get_gradients()


def distrl_sync(server, workers, count):
    weights = server.pull()
    for _ in range(count):
        weights, _ = server.sync_step([w.compute.remote(*weights) for w in workers])  # returns once applied


def distrl_async(server, workers, count):
    """`count` updates; each worker pulls, computes and pushes, again; the driver moves only references."""
    pushed, base = 0, server.versions()[0]  # a pull's version: base + the pushes sent before it
    pending = {w.compute.remote(*server.pull()): (w, base) for w in workers}
    while pending:
        (done,), _ = ray.wait(list(pending))
        worker, version = pending.pop(done)
        server.push(done, version, wait=False)
        pushed += 1
        if pushed + len(pending) < count:  # the server runs calls in order: this pull sees that push
            pending[worker.compute.remote(*server.pull())] = (worker, base + pushed)
    server.versions()  # every push applied


def docs_sync(server, workers, count, compute="compute_gradients"):
    weights = server.get_weights.remote()
    for _ in range(count):
        weights = server.apply_gradients.remote(*[getattr(w, compute).remote(weights) for w in workers])
        ray.wait([weights], fetch_local=False)  # applied


def docs_async(server, workers, count):
    weights = server.get_weights.remote()
    pending = {w.compute_gradients.remote(weights): w for w in workers}
    applied = 0
    while pending:
        (done,), _ = ray.wait(list(pending))
        worker = pending.pop(done)
        weights = server.apply_gradients.remote(done)
        applied += 1
        if applied + len(pending) < count:
            pending[worker.compute_gradients.remote(weights)] = worker
    ray.wait([weights], fetch_local=False)


def in_turns(contenders):
    """Updates/s of each contender ({key: (run(count), updates per round)}) in every round:
    `warmup` untimed updates first (times N for an asynchronous one), then `rounds` rounds,
    the order rotating."""
    for run, per_round in contenders.values():
        run(warmup * per_round // updates)
    keys = list(contenders)
    rates = {key: [] for key in keys}
    for r in range(rounds):
        for key in keys[r % len(keys):] + keys[:r % len(keys)]:
            run, per_round = contenders[key]
            start = time.perf_counter()
            run(per_round)
            rates[key].append(per_round / (time.perf_counter() - start))
    return rates


memcpy_quiet = memcpy_rate(max(model_sizes))  # before any worker or server exists
big = max(model_sizes)
throughput = {}  # (system, mode, P, N, K) -> updates/s in each round
# All the actors of one model size live at once (the contenders take turns), and Ray starts
# an actor only once its share of a CPU is free: the shares must add up to at most CPUS.
# Each server asks for one share, a server of K shards for a K-th of it per shard.
share = min(cluster.actor_cpus(), CPUS / (max(worker_counts) + 3 + len(shard_counts)))
for size in model_sizes:
    # The same workers and servers for every N: starting a process costs more than a round.
    pool = [GradientWorker.options(num_cpus=share).remote(size) for _ in range(max(worker_counts))]
    docs = DocsParameterServer.options(num_cpus=share).remote(size, 0.01)
    docs_numpy = DocsParameterServer.options(num_cpus=share).remote(size, 0.01, NumpyWeights)
    servers = {k: ShardedServer(np.zeros(size, np.float32), shards=k, optimizer=Optimizer("sgd", lr=0.01), num_cpus=share / k)
               for k in shard_counts}
    for n in worker_counts:
        workers = pool[:n]
        contenders = {("docs", "sync", 1): (partial(docs_sync, docs, workers), updates),
                      ("docs", "async", 1): (partial(docs_async, docs, workers), updates * n),
                      ("docs, numpy weights", "sync", 1): (partial(docs_sync, docs_numpy, workers, compute="compute_gradients_numpy"), updates)}
        for k, server in servers.items():
            contenders["distrl", "sync", k] = (partial(distrl_sync, server, workers), updates)
            contenders["distrl", "async", k] = (partial(distrl_async, server, workers), updates * n)
        shm = ShmServer(np.zeros(size, np.float32), workers, optimizer=Optimizer("sgd", lr=0.01), num_cpus=share)
        contenders["distrl, shm", "sync", 1] = (shm.sync, updates)
        contenders["distrl, shm", "async", 1] = (lambda count, shm=shm, n=n: shm.run_async(count // n), updates * n)
        for (system, mode, k), rates in in_turns(contenders).items():
            throughput[system, mode, size, n, k] = np.array(rates)
        shm.stop()
    if size == big:
        break  # the largest model's actors stay for the timeline below
    for actor in [docs, docs_numpy] + pool:
        ray.kill(actor)
    for server in servers.values():
        server.stop()


def bandwidth(size, n, mode, rate):
    """GB/s through the store: a synchronous update is N pushes and N pulls of P floats, an
    asynchronous one a push and a pull."""
    messages = 2 * n if mode == "sync" else 2
    return messages * size * 4 * rate / 1e9


def contenders_of(mode):
    """(label, system, K) of each contender in `mode`, in table order."""
    docs = [("docs", "docs", 1)] + ([("docs, numpy weights", "docs, numpy weights", 1)] if mode == "sync" else [])
    return docs + [(f"distrl, K = {k}", "distrl", k) for k in shard_counts] + [("distrl, shm", "distrl, shm", 1)]


print(f"updates/s and GB/s, median [IQR] over {rounds} rounds; ratios taken round by round")
for size in model_sizes:
    for n in worker_counts:
        print(f"P = {size:,d}, N = {n}")
        for mode in ("sync", "async"):
            references = [(label, throughput[system, mode, size, n, 1]) for label, system, _ in contenders_of(mode)[:-len(shard_counts) - 1]]
            for label, system, k in contenders_of(mode):
                rates = throughput[system, mode, size, n, k]
                ratios = "  ".join(f"/ {name}: {iqr(rates / ref, 2)}" for name, ref in references if name != label)
                print(f"  {mode:5s} {label:20s} {iqr(rates):>20s} {iqr(bandwidth(size, n, mode, rates), 2):>18s} GB/s  {ratios}")

# %% [markdown]
# ### Sharding: K server processes against one
#
# The same runs, distrl's synchronous server with $K$ shards relative to $K = 1$, round by
# round.

# %%
n2 = 2 if 2 in worker_counts else worker_counts[-1]  # the worker count the headline figures use
print(f"distrl sync, N = {n2}: updates/s and K / (K = 1), median [IQR] over {rounds} rounds")
for size in model_sizes:
    one = throughput["distrl", "sync", size, n2, 1]
    for k in shard_counts:
        rates = throughput["distrl", "sync", size, n2, k]
        print(f"  P = {size:>10,d}  K = {k}  {iqr(rates):>22s} updates/s  vs K = 1: {iqr(rates / one, 2)}")

# %% [markdown]
# ## Where an update's time goes, and the physical limit
#
# For the largest model, $N$ = 2 workers, synchronous, one server process each, Ray's task
# timeline splits each task into reading its arguments from the store (deserialize), running
# (the server's update, the worker's copy of the parameters) and writing its result into
# the store (serialize). On one node nothing crosses a wire: "transfer" is the store's
# shared memory, paid in those reads and writes. The limit is what one core copies per
# second, measured before the throughput runs and again here, keeping the faster: a copy
# measured while other processes compete for the memory bus understates the machine.

# %%
memcpy_after = memcpy_rate(big)
memcpy_gbs = max(memcpy_quiet, memcpy_after)
PHASES = {"task:deserialize_arguments": "read (deserialize)", "task:execute": "compute / apply (execute)",
          "task:store_outputs": "write (serialize)"}


def phase_times(run, tasks, probe_updates=5):
    """Seconds per update in each phase, for servers and workers (summed over actors).
    `tasks(updates)`: how many actor tasks `run(updates)` submits."""
    run(2)  # every task of it has ended when it returns, so its events start before `start`
    start = time.time()
    run(probe_updates)
    # Workers report task events to the timeline every second or so: wait until all are in.
    deadline = time.monotonic() + 30
    while True:
        events = [e for e in ray.timeline() if e.get("ts", 0) / 1e6 >= start]
        if sum(e.get("name") == "task:execute" for e in events) >= tasks(probe_updates):
            break
        assert time.monotonic() < deadline, "the probe's task events did not reach the timeline in 30 s"
        time.sleep(0.2)
    # The phases carry only the process (tid) they ran in; the task events name the actor class.
    role = {e["tid"]: "server" if "ParameterServer" in e["cat"] else "worker" for e in events if e.get("cat", "").startswith("task::")}
    spent = defaultdict(float)
    for event in events:
        if event.get("name") in PHASES and event["tid"] in role:
            spent[role[event["tid"]], PHASES[event["name"]]] += event["dur"] / 1e6 / probe_updates
    return spent


workers = pool[:n2]  # the largest model's, from the throughput runs


def one_server(updates):
    """The tasks a run on one server process submits: a pull first, then per update one
    gradient per worker and one apply."""
    return 1 + updates * (len(workers) + 1)


profiles = {"distrl, K = 1": phase_times(partial(distrl_sync, servers[1], workers), one_server),
            "docs": phase_times(partial(docs_sync, docs, workers), one_server),
            "docs, numpy weights": phase_times(partial(docs_sync, docs_numpy, workers, compute="compute_gradients_numpy"),
                                               one_server)}


def copy_traffic(actor, reps=10):
    """Bytes read plus written per second by one process copying P floats back and forth."""
    src = np.ones(big, np.float32)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    start = time.perf_counter()
    for _ in range(reps):
        np.copyto(dst, src)
    return 2 * big * 4 * reps / (time.perf_counter() - start)


# The traffic bound's rates (next section), from the worker processes themselves: one
# copying alone, and min(N, cores) copying at once; the median of five tries each.
traffic_gbs = {c: statistics.median(sum(ray.get([w.__ray_call__.remote(copy_traffic) for w in workers[:c]])) / 1e9
                                    for _ in range(5))
               for c in sorted({1, min(n2, os.cpu_count())})}
for actor in [docs, docs_numpy] + pool:
    ray.kill(actor)
for server in servers.values():
    server.stop()
print(f"P = {big:,d}, N = {n2}, sync: ms per update (summed over actors)")
for system, spent in profiles.items():
    for (role, phase), seconds in sorted(spent.items()):
        print(f"  {system:20s} {role:6s} {phase:28s} {seconds * 1e3:6.1f}")
print(f"memcpy, one core: {memcpy_quiet:.1f} GB/s before the throughput runs, {memcpy_after:.1f} GB/s after; the limit: {memcpy_gbs:.1f} GB/s")

# %% [markdown]
# ### The memory-traffic bound
#
# Whatever the transport, a synchronous update must move some bytes through memory. Each
# worker copies θ into its own parameters (reading $P$ floats and writing $P$) and its
# gradient into the place the server reads it from (as much again): $16P$ bytes. The server
# makes one fused pass per gradient, reading θ and $g_i$ and writing θ: $12P$ bytes each.
# The shared-memory protocol does exactly these and nothing else, in two phases one after
# the other: the workers' copies, on $\min(N, \text{cores})$ cores at once, then the
# server's passes, on one. With $R_c$ the bytes read plus written per second by $c$
# processes copying at once (measured just above, in the worker processes),
#
# $$T_\text{bound} = \frac{16NP}{R_{\min(N,\,\text{cores})}} + \frac{12NP}{R_1}.$$
#
# An object-store update does these copies too, and more (a put of every message, and the
# page faults of fresh objects), so the same bound holds for it. The ratio
# $T_\text{bound}/T$ below says how close each transport comes to it.

# %%
def sync_bound_s(size, n):
    """T_bound of one synchronous update of `size` floats from `n` workers."""
    return 16 * n * size / (traffic_gbs[min(n, os.cpu_count())] * 1e9) + 12 * n * size / (traffic_gbs[1] * 1e9)


print(", ".join(f"R_{c} = {rate:.1f} GB/s" for c, rate in traffic_gbs.items()) + " (read + written)")
print(f"P = {big:,d}, N = {n2}: T_bound = {sync_bound_s(big, n2) * 1e3:.1f} ms per synchronous update")
for label, system, k in contenders_of("sync"):
    rates = throughput[system, "sync", big, n2, k]
    print(f"  {label:20s} {iqr(1e3 / rates):>20s} ms per update   T_bound / T: {iqr(sync_bound_s(big, n2) * rates, 2)}")

# %% [markdown]
# ## Learning: asynchronous gradients against synchronous ones
#
# $N$ rollout workers (CartPole-v1, 8 environments × 32 steps, so 256 environment steps
# per gradient; A2C's loss; each gradient clipped to norm 0.5 by the worker that
# computes it), each asking Ray for its share of a CPU (`cluster.actor_cpus()`, or less
# where $N$ workers and the server would ask for more CPUs than there are), so that 8
# workers run on this machine's cores (the operating system shares the cores among them). The
# server, one shard, applies Adam ($\alpha = 10^{-3}$) in both contenders:
#
# - *async*: `distrl.optimizers.AsyncGradients` (A3C): each gradient is applied when it
#   arrives and that worker is sent the new weights at once; one `step()` applies
#   $G$ = `gradients_per_step` gradients.
# - *sync*: the same workers, loss, batch per gradient and server, but every update waits
#   for all $N$ gradients, computed on the same weights, and applies their mean
#   (`ShardedServer.sync_step`). It is written below in the shape of an optimizer.
#
# Both stop at the same number of environment steps, `learn_steps`. At equal steps the
# asynchronous one has applied $N$ times as many updates, each from one batch instead of a
# mean over $N$. Each $N$ runs with `seeds` seeds (the seed sets the initial weights and the
# environments); within a seed the two contenders take turns on the same worker processes,
# each reset to the same starting state (weights, environments, random streams). With one
# worker the two are one algorithm (every gradient is computed on the newest weights and
# applied alone, in the same order), so $N = 1$ is the control: both must end with the same
# $\theta$, bit for bit, and the code checks that they do.
#
# **Staleness, a model.** Every applied gradient's staleness is recorded by the server: its
# version when it applies the gradient minus the version the worker pulled. If all $N$
# workers are always busy, every update applied while a gradient is in flight was one of the
# $N-1$ others finishing, so in a steady state each gradient is $N-1$ versions old:
# $\tau \approx N - 1$. `AsyncGradients` is not always in a steady state: a step starts with
# all $N$ workers pulling the same version (so the first $N$ gradients applied have
# staleness $0, 1, \dots, N-1$ in the order they land, whatever that order) and lets the
# workers run dry at its end. Counting, for each gradient applied, the others still in
# flight, a step of $G \ge N$ gradients sums to $(G-N)(N-1) + N(N-1)/2$, a mean of
#
# $$\bar\tau = (N-1)\left(1 - \frac{N}{2G}\right).$$
#
# The count holds whatever the order in which workers finish; the order decides how the
# staleness spreads around its mean (a slow worker's gradient is staler than $N-1$, and
# those overtaking it fresher).

# %% timeout_s=1800
LEARN = WorkerConfig(num_envs=8, fragment_length=32, policy=PolicyConfig(hidden=(64, 64), max_grad_norm=0.5))
ADAM = Optimizer("adam", lr=1e-3)
# Ray starts an actor only once its share of a CPU is free: the server's and N workers' must fit.
worker_share = min(cluster.actor_cpus(), (CPUS - cluster.actor_cpus()) / max(learn_workers))
# Both contenders stop at learn_steps exactly, and both have a point every G gradients' steps.
assert learn_steps % (LEARN.num_envs * LEARN.fragment_length * gradients_per_step) == 0, "learn_steps: a multiple of 256·G"
assert all(gradients_per_step % n == 0 for n in learn_workers), "G: a multiple of every N"


class SyncGradients(PolicyOptimizer):
    """The synchronous contender: each worker computes g_i on the weights θ_t, and the server
    applies their mean, θ_{t+1} = Adam(θ_t, (1/N) Σ g_i)."""

    def __init__(self, workers: WorkerSet, optimizer: Optimizer):
        super().__init__()
        self.workers = workers
        self.server = ShardedServer(workers.local.get_weights(), shards=1, optimizer=optimizer)
        (self.weights,) = self.server.pull()

    def step(self) -> dict[str, float]:
        calls = []
        for worker in self.workers.remotes:
            worker.set_weights.remote(self.weights)
            calls.append(worker.sample_and_compute_gradients.remote())
        (self.weights,), _ = self.server.sync_step([gradient for gradient, _ in calls])
        for report in ray.get([report for _, report in calls]):
            self.stats.add_experience(report["steps"], report["episodes"])
        self.stats.updates += 1
        return report["stats"]


def learn(optimizer):
    """One run to learn_steps: its curve (env steps, seconds, mean return of the last 20
    episodes) after every step(), the staleness of every gradient it applied, and θ at the end."""
    optimizer.server.versions()  # the server is up before the clock starts
    curve, start = [], time.perf_counter()
    while optimizer.stats.env_steps < learn_steps:
        optimizer.step()
        curve.append((optimizer.stats.env_steps, time.perf_counter() - start, optimizer.stats.mean_return()))
    staleness = optimizer.server.stats()[0]["staleness"]
    theta = ray.get(optimizer.server.pull()[0])
    optimizer.server.stop()
    return np.array(curve), np.array(staleness), theta


modes = ["sync", "async"]
runs = {}  # (mode, N, seed) -> (curve, staleness, θ)
for seed in range(seeds):
    for i, n in enumerate(learn_workers):
        config = replace(LEARN, seed=seed, policy=replace(LEARN.policy, seed=seed))
        # One set of workers for both contenders, each starting from the same state: the same
        # initial weights, environments and random streams.
        workers = WorkerSet(config, n, a2c_loss(), num_cpus_per_worker=worker_share)
        initial = ray.get([w.get_state.remote() for w in workers.remotes])
        turn = (seed + i) % 2
        for mode in modes[turn:] + modes[:turn]:
            ray.get([w.set_state.remote(state) for w, state in zip(workers.remotes, initial)])
            if mode == "async":
                runs[mode, n, seed] = learn(AsyncGradients(workers, gradients_per_step=gradients_per_step, optimizer=ADAM))
            else:
                runs[mode, n, seed] = learn(SyncGradients(workers, ADAM))
        workers.stop()
if 1 in learn_workers:  # the control: one worker, one algorithm
    assert all(np.array_equal(runs["sync", 1, seed][2], runs["async", 1, seed][2]) for seed in range(seeds))
    print("N = 1: sync and async end with the same θ, bit for bit, in every seed")


def staleness_model(n, g=gradients_per_step):
    return (n - 1) * (1 - n / (2 * g))


def final(mode, n, column):
    """The last point of each seed's curve: column 1 seconds, column 2 mean return."""
    return np.array([runs[mode, n, seed][0][-1, column] for seed in range(seeds)])


print(f"{learn_steps:,d} env steps per run; median (min–max) over {seeds} seed(s)")
print(f"{'N':>2} {'mode':5s} {'updates':>8s} {'seconds':>20s} {'return, last 20 episodes':>26s}")
for n in learn_workers:
    for mode in modes:
        steps_per_update = LEARN.num_envs * LEARN.fragment_length * (n if mode == "sync" else 1)
        print(f"{n:>2} {mode:5s} {learn_steps // steps_per_update:>8d} {min_max(final(mode, n, 1)):>20s} {min_max(final(mode, n, 2), 0):>26s}")
print(f"\nstaleness of the applied gradients, async, G = {gradients_per_step}; per seed: mean, then median (min–max) over seeds")
print(f"{'N':>2} {'model N−1':>9s} {'model mean':>10s} {'measured mean':>22s} {'median':>8s} {'95th pct':>9s} {'max':>5s}")
for n in learn_workers:
    per_seed = [runs["async", n, seed][1] for seed in range(seeds)]
    print(f"{n:>2} {n - 1:>9d} {staleness_model(n):>10.3f} {min_max([s.mean() for s in per_seed], 3):>22s}"
          f" {np.median(np.concatenate(per_seed)):>8.0f} {np.percentile(np.concatenate(per_seed), 95):>9.0f}"
          f" {max(s.max() for s in per_seed):>5d}")

# %% [markdown]
# ## Plots
#
# Throughput: medians with interquartile bars over rounds. Learning: the median over seeds,
# with the band from the lowest to the highest seed.

# %% fig-cap=["Top: synchronous and asynchronous updates per second against workers, one panel per model size, distrl against Ray's documented example. Bottom: effective bandwidth against model size; sharding relative to one shard; where a synchronous update's time goes.", "Learning runs: mean return against environment steps for each worker count (median across seeds, band from min to max), the wall time of a run, and the asynchronous optimizer's staleness against its model."]
fig, axes = plt.subplots(2, 3, figsize=(15, 8))
for ax in axes[0, len(model_sizes[-3:]):]:
    ax.set_visible(False)
for col, size in enumerate(model_sizes[-3:]):
    ax = axes[0, col]
    for mode, marker in (("sync", "o"), ("async", "s")):
        for label, system, k in contenders_of(mode):
            median, bars = error_bars([throughput[system, mode, size, n, k] for n in worker_counts])
            ax.errorbar(worker_counts, median, yerr=bars, marker=marker, capsize=2, ls="-" if system.startswith("distrl") else "--",
                        label=f"{mode}, {label}")
    ax.set(title=f"P = {size:,d}", xlabel="workers N", ylabel="updates/s", yscale="log")
    ax.legend(fontsize=6)
sizes = np.array(model_sizes)
for label, system, k in contenders_of("sync"):
    median, bars = error_bars([bandwidth(s, n2, "sync", throughput[system, "sync", s, n2, k]) for s in sizes])
    axes[1, 0].errorbar(sizes, median, yerr=bars, marker="o", capsize=2, label=f"sync, N={n2}, {label}")
axes[1, 0].axhline(memcpy_gbs, color="black", ls=":", label=f"memcpy, one core ({memcpy_gbs:.1f} GB/s)")
axes[1, 0].plot(sizes, [bandwidth(s, n2, "sync", 1 / sync_bound_s(s, n2)) for s in sizes], "k--", lw=1,
                label="memory-traffic bound")
axes[1, 0].set(title="effective bandwidth (N pushes + N pulls per update)", xlabel="parameters P", ylabel="GB/s", xscale="log", yscale="log")
axes[1, 0].legend(fontsize=6)
for size in model_sizes:
    one = throughput["distrl", "sync", size, n2, 1]
    median, bars = error_bars([throughput["distrl", "sync", size, n2, k] / one for k in shard_counts])
    axes[1, 1].errorbar(shard_counts, median, yerr=bars, marker="o", capsize=2, label=f"P = {size:,d}")
axes[1, 1].axhline(1.0, color="black", lw=0.5)
axes[1, 1].set(title=f"sharding: distrl sync, N={n2}, K shards / K=1", xlabel="shards K", ylabel="updates/s relative to K=1", xticks=shard_counts)
axes[1, 1].legend(fontsize=7)
labels = sorted({phase for spent in profiles.values() for phase in spent})
height = 0.8 / len(profiles)
for j, (system, spent) in enumerate(profiles.items()):
    axes[1, 2].barh([y + height * j for y in range(len(labels))], [spent[label] * 1e3 for label in labels], height=height, label=system)
axes[1, 2].set_yticks([y + 0.4 - height / 2 for y in range(len(labels))], [f"{role}: {phase}" for role, phase in labels], fontsize=7)
axes[1, 2].set(title=f"where a sync update's time goes (P = {big:,d}, N = {n2})", xlabel="ms per update, summed over actors")
axes[1, 2].legend(fontsize=7)
fig.tight_layout()
plt.show()

panels = len(learn_workers) + 2  # a curve per N, then wall time and staleness
rows = -(-panels // 3)
fig, axes = plt.subplots(rows, 3, figsize=(13, 3.8 * rows), squeeze=False)
axes = axes.ravel()
for ax in axes[panels:]:
    ax.set_visible(False)
axes = axes[:panels]
grid = np.arange(1, learn_steps // (256 * gradients_per_step) + 1) * 256 * gradients_per_step  # every contender has a point here
for ax, n in zip(axes, learn_workers):
    for mode in modes:
        curves = [runs[mode, n, s][0] for s in range(seeds)]
        at_grid = np.array([[curve[curve[:, 0] == x, 2][0] for x in grid] for curve in curves])
        ax.plot(grid, np.median(at_grid, axis=0), label=mode)
        ax.fill_between(grid, at_grid.min(axis=0), at_grid.max(axis=0), alpha=0.25)
    ax.set(title=f"N = {n}", xlabel="env steps", ylabel="mean return, last 20 episodes")
    ax.legend(fontsize=7)
for mode, marker in (("sync", "o"), ("async", "s")):
    seconds = np.array([final(mode, n, 1) for n in learn_workers])
    axes[-2].errorbar(learn_workers, np.median(seconds, axis=1), marker=marker, capsize=2, label=mode,
                      yerr=[np.median(seconds, axis=1) - seconds.min(axis=1), seconds.max(axis=1) - np.median(seconds, axis=1)])
axes[-2].set(title=f"wall time for {learn_steps:,d} env steps", xlabel="workers N", ylabel="seconds", xticks=learn_workers)
axes[-2].legend(fontsize=7)
means = np.array([[runs["async", n, s][1].mean() for s in range(seeds)] for n in learn_workers])
axes[-1].errorbar(learn_workers, np.median(means, axis=1), marker="s", capsize=2, label="measured mean",
                  yerr=[np.median(means, axis=1) - means.min(axis=1), means.max(axis=1) - np.median(means, axis=1)])
axes[-1].plot(learn_workers, [n - 1 for n in learn_workers], "k:", marker="_", ms=12, label="model: N − 1")
axes[-1].plot(learn_workers, [staleness_model(n) for n in learn_workers], "k--", marker="x",
              label=f"model: (N−1)(1 − N/2G), G={gradients_per_step}")
axes[-1].set(title="async staleness", xlabel="workers N", ylabel="versions", xticks=learn_workers)
axes[-1].legend(fontsize=7)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The numbers

# %%
if big == 10_000_000 and 2 in worker_counts:
    shm_sync, store_sync = throughput["distrl, shm", "sync", big, 2, 1], throughput["distrl", "sync", big, 2, 1]
    record_median("ps_vs_textbook_10m_k1", shm_sync / throughput["docs", "sync", big, 2, 1], "x",
                  f"distrl over shared memory (one server) / Ray docs' parameter server, sync updates/s, 10^7 params, "
                  f"2 workers; median of {rounds} rounds in turns")
    record("ps_bandwidth_vs_memcpy_10m", bandwidth(big, 2, "sync", float(np.median(shm_sync))) / memcpy_gbs, "fraction",
           "effective bandwidth of distrl sync over shared memory (one server, 2 workers, 10^7 params) / one-core memcpy")
    record_median("ps_shm_vs_traffic_bound_10m", sync_bound_s(big, 2) * shm_sync, "fraction",
                  f"the memory-traffic bound of a sync update / its measured time, distrl over shared memory, 10^7 params, "
                  f"2 workers; median of {rounds} rounds")
    record_median("ps_shm_vs_object_store_10m_k1", shm_sync / store_sync, "x",
                  f"distrl sync updates/s over shared memory / over the object store (one server each), 10^7 params, "
                  f"2 workers; median of {rounds} rounds in turns")
    record_median("ps_shm_vs_object_store_async_10m_k1",
                  throughput["distrl, shm", "async", big, 2, 1] / throughput["distrl", "async", big, 2, 1], "x",
                  f"distrl async updates/s over shared memory / over the object store (one server each), 10^7 params, "
                  f"2 workers; median of {rounds} rounds in turns")
    record_median("ps_object_store_vs_textbook_10m_k1", store_sync / throughput["docs", "sync", big, 2, 1], "x",
                  f"distrl over the object store (K=1) / Ray docs' parameter server, sync updates/s, 10^7 params, "
                  f"2 workers; median of {rounds} rounds in turns")
    record_median("ps_object_store_vs_docs_numpy_weights_10m_k1",
                  store_sync / throughput["docs, numpy weights", "sync", big, 2, 1], "x",
                  f"distrl over the object store (K=1) / Ray docs' parameter server with numpy weights, sync updates/s, "
                  f"10^7 params, 2 workers; median of {rounds} rounds")
    for k in shard_counts[1:]:
        record_median(f"ps_sharding_k{k}_vs_k1_10m", throughput["distrl", "sync", big, 2, k] / throughput["distrl", "sync", big, 2, 1],
                      "x", f"distrl sync updates/s with {k} shards / 1 shard, 10^7 params, 2 workers; median of {rounds} rounds")
    record("ps_object_store_bandwidth_vs_memcpy_10m_k1", bandwidth(big, 2, "sync", float(np.median(store_sync))) / memcpy_gbs,
           "fraction", "effective bandwidth of distrl sync over the object store (K=1, 2 workers, 10^7 params) / one-core memcpy")
    record_median("ps_object_store_vs_traffic_bound_10m_k1", sync_bound_s(big, 2) * store_sync, "fraction",
                  f"the memory-traffic bound of a sync update / its measured time, distrl over the object store (K=1), "
                  f"10^7 params, 2 workers; median of {rounds} rounds")
record("ps_sync_equivalence_err", max(equivalence.values()), "abs",
       "max |θ_PS − θ_single| after 5 sync steps, SGD and Adam, both transports")
if 1_000_000 in model_sizes and 2 in worker_counts:
    record_median("ps_updates_per_s_1m_sync_2w_k1", throughput["distrl", "sync", 1_000_000, 2, 1], "1/s",
                  f"distrl sync updates/s, 10^6 params, 2 workers, 1 shard; median of {rounds} rounds")
for n in [n for n in learn_workers if n > 1]:  # with one worker it is 0 by construction
    record_median(f"ps_async_staleness_mean_n{n}", [runs["async", n, s][1].mean() for s in range(seeds)], "versions",
                  f"mean staleness of applied gradients, AsyncGradients with {n} workers, G={gradients_per_step}; median of {seeds} seed(s)")
    record(f"ps_async_staleness_model_n{n}", staleness_model(n), "versions",
           f"model: (N−1)(1 − N/2G), N={n}, G={gradients_per_step}")
n_learn = 4 if 4 in learn_workers else learn_workers[-1]
for mode in modes:
    record_median(f"ps_learn_return_{mode}_n{n_learn}", final(mode, n_learn, 2), "return",
                  f"{mode}, {n_learn} workers: mean return of the last 20 episodes at {learn_steps} env steps; median of {seeds} seed(s)")
    record_median(f"ps_learn_seconds_{mode}_n{n_learn}", final(mode, n_learn, 1), "s",
                  f"{mode}, {n_learn} workers: wall time for {learn_steps} env steps; median of {seeds} seed(s)")
cluster.shutdown()

# %% [markdown]
# ## What it means
#
# *Cost per byte.* On one machine a push or a pull is a write into or a read from the
# object store's shared memory, so an update costs a few passes over $P$ floats. distrl's
# worker writes its gradient once, the server reads it in place and subtracts it in one
# fused pass, without temporaries, and writes its new parameters once, as a numpy array
# that the worker reads in place. The documented example pays twice over. Its weights are
# torch tensors, which Ray pickles on the way into the store and copies out of it on the
# way back (the timeline's serialize and deserialize bars); and its server makes more
# passes: `np.stack` copies the $N$ gradients into a new array, `sum(axis=0)` reduces that
# into another, and the optimizer's step reads the sum and the parameters. The control
# with numpy weights removes the first cause and keeps the second, but it is still the
# documented server's own code, not distrl's with more passes: of distrl's ratio to the
# documented server at $10^7$ parameters over the same object store, one server each
# (`ps_object_store_vs_textbook_10m_k1`), the part its ratio to the control keeps
# (`ps_object_store_vs_docs_numpy_weights_10m_k1`) is the rest of the two servers'
# differences, of which the timeline puts the larger share in the server's execution (its
# passes); the part the control removes is serialisation. At $10^5$ every contender is far
# below the memcpy line: there an update costs a round of actor calls, not bytes.
#
# *The transport.* The two distrl rows make the same passes; what the shared-memory one
# drops is a fresh object per message (page faults as it is first written), the tasks the
# driver relays, and one copy: over the object store each update's new θ is copied into
# the store, where over shared memory the workers read it in place. Their ratio at $10^7$
# (`ps_shm_vs_object_store_10m_k1`) is what those three cost together; the asynchronous
# one (`_async_`) also differs in who pushes next (equal shares against first come), as
# said above. The traffic-bound ratios (`ps_shm_vs_traffic_bound_10m`,
# `ps_object_store_vs_traffic_bound_10m_k1`) say how much of each update's time is the
# memory traffic the update cannot avoid. Against the documented server
# (`ps_vs_textbook_10m_k1`) the shared-memory server adds up all of the above: fewer
# passes, no pickled torch tensors, and no store.
#
# *Sharding.* $K$ shards apply their slices in $K$ processes at once, on cores they share
# with the workers; the sharding table gives what that bought here, relative to one shard
# (`ps_sharding_k2_vs_k1_10m` and `ps_sharding_k4_vs_k1_10m` at $10^7$). With two cores
# and two workers, more shards than cores only add processes to share them.
#
# *Staleness.* The count above is exact for this optimizer, whatever the order in which
# workers finish, so the measured mean must equal it; a difference would mean the versions
# are counted wrong. What the count does not fix is the spread: with more workers than
# cores, workers finish out of turn, and the 95th percentile and the maximum show how stale
# the stalest gradients get. The learning table sets, for each $N$, the return at equal
# environment steps and the wall time of the two side by side, as medians with their
# min–max over the seeds: a difference smaller than that spread is not one this run can
# claim.
#
# *Failures.* Every shard checkpoints at the same versions; if one dies, all of them roll
# back to the newest version they all saved, so θ is never a mix of versions, and each call
# carries a number that a restored shard recognises, so a gradient is never applied twice
# (the test suite kills a shard, and makes one die between writing a checkpoint and
# answering). A worker that dies is left out of the synchronous mean; the step does not wait
# for it.
