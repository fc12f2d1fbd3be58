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
#       cluster:
#         broadcast_sizes:
#         - 10000
#         - 100000
#         - 1000000
#         - 10000000
#         fit_fragments:
#         - 10
#         - 30
#         - 100
#         - 300
#         - 1000
#         fragment: 500
#         group_size: 8
#         heavy_hidden: 512
#         slow_step_ms: 1.0
#         weight_sync_params: 10000000
#         num_groups: 4
#         repeats: 11
#         step_delay_ms: 2.0
#         straggler_counts:
#         - 2
#         - 4
#         - 16
#         straggler_factors:
#         - 1
#         - 2
#         - 4
#         straggler_fragment: 20
#         straggler_window: 4
#         whole_cpus: true
#         worker_counts:
#         - 1
#         - 2
#         - 4
#         - 8
#         - 16
#         - 32
#         - 64
#       full:
#         broadcast_sizes:
#         - 10000
#         - 100000
#         - 1000000
#         - 10000000
#         fit_fragments:
#         - 10
#         - 30
#         - 100
#         - 300
#         - 1000
#         fragment: 500
#         group_size: 2
#         heavy_hidden: 512
#         slow_step_ms: 1.0
#         weight_sync_params: 10000000
#         num_groups: 2
#         repeats: 11
#         step_delay_ms: 2.0
#         straggler_counts:
#         - 2
#         - 4
#         straggler_factors:
#         - 1
#         - 2
#         - 4
#         straggler_fragment: 20
#         straggler_window: 4
#         worker_counts:
#         - 1
#         - 2
#         - 4
#       quick:
#         broadcast_sizes:
#         - 10000
#         - 100000
#         fit_fragments:
#         - 10
#         - 30
#         fragment: 100
#         group_size: 2
#         heavy_hidden: 0
#         slow_step_ms: 0
#         weight_sync_params: 0
#         num_groups: 1
#         repeats: 1
#         step_delay_ms: 1.0
#         straggler_counts:
#         - 2
#         straggler_factors:
#         - 1
#         - 4
#         straggler_fragment: 10
#         straggler_window: 2
#         worker_counts:
#         - 1
#         - 2
#     summary: How sampling throughput grows with the number of policy evaluators, and
#       what each way of driving them costs.
#     title: Policy evaluators as Ray actors
# ---

# %% [markdown]
# # Policy evaluators as Ray actors
#
# **The question.** The RLlib paper's first abstraction [@liang2018] is the *policy evaluator*: an actor
# holding environments and a copy of the policy, returning a batch of experience when asked.
# One driver decides who samples and when (*logically centralized control*). How does
# sampling throughput grow with the number of evaluators, and what does each way of driving
# them cost: synchronously, asynchronously, or through sub-drivers?
#
# **The idea.** Let $n$ evaluators each return $B$ steps per call. Model the time of one
# synchronous call as
#
# $$
# T(n, B) = t_0 + B\, t_{\text{step}} + n\, t_c,
# \qquad
# X_{\text{sync}}(n, B) = \frac{n B}{T(n, B)},
# $$
#
# where $t_0$ is what every call costs whatever its size (the round trip through Ray, the
# batch's allocation, its advantages, its serialization), paid by all evaluators at once;
# $t_{\text{step}}$ is one environment step with its forward pass; and $t_c$ is the driver's
# work per result, paid one result after another, so it is the term that grows with $n$.
# Throughput is linear in $n$ while $n t_c \ll t_0 + B t_{\text{step}}$ and while each
# evaluator has a core of its own. The parallel efficiency $E(n) = X(n) / (n X(1))$ says how
# much of the ideal is kept. Below, the cost per call and per step are fitted to measured
# throughputs, and $t_c$ is estimated from them.
#
# When evaluators differ in speed, evaluator $i$ taking $T_i$ per call, a synchronous step
# waits for the slowest, while asynchronous sampling asks each evaluator again as soon as it
# answers:
#
# $$
# X_{\text{sync}} = \frac{n B}{\max_i T_i},
# \qquad
# X_{\text{async}} = \sum_i \frac{B}{T_i}.
# $$
#
# With one evaluator $k$ times slower than the others ($T_{\text{slow}} = kT$), the ratio is
# $X_{\text{async}} / X_{\text{sync}} = (k(n-1) + 1)/n$: 1 for identical evaluators, 2.5 for
# $n = 2$, $k = 4$. Delegation to sub-drivers, each collecting a group of $g$ evaluators,
# divides the driver's $n t_c$ by $g$, at the price of one more hop per step. These are
# models; the sections below measure each.

# %% tags=["parameters"]
repeats = 11  # timed rounds per comparison (median and IQR reported)
fragment = 500  # environment steps per evaluator per sample() call
worker_counts = [1, 2, 4]  # numbers of remote evaluators to measure
fit_fragments = [10, 30, 100, 300, 1000]  # steps per call swept to fit the throughput model (fragment is added)
straggler_counts = [2, 4]  # n: evaluators in the straggler experiment
straggler_factors = [1, 2, 4]  # k: the straggler's environment step is k times the others' (1: the control)
step_delay_ms = 2.0  # d: the added duration of every environment step in the straggler experiment
straggler_fragment = 20  # steps per evaluator per call in the straggler experiment
straggler_window = 4  # a timed turn lasts about this many of the straggler's calls
num_groups = 2  # sub-drivers in the hierarchical set
group_size = 2  # evaluators under each sub-driver
broadcast_sizes = [10_000, 100_000, 1_000_000, 10_000_000]  # model sizes (parameters) for the broadcast
whole_cpus = False  # refuse to run unless every evaluator of the largest set gets a CPU of its own (a cluster's sweep)
heavy_hidden = 512  # hidden width of the "heavy" policy, where inference dominates (0: skip it)
slow_step_ms = 1.0  # the time a slow environment adds to every step, for TorchRL against distrl (0: skip it)
weight_sync_params = 10_000_000  # parameters each framework moves per weight sync, in the table across frameworks (0: skip it)

# %%
import functools
import itertools
import os
import time
from dataclasses import dataclass, replace

import matplotlib.pyplot as plt
import numpy as np
import ray

from distrl import cluster
from distrl.hierarchical import HierarchicalWorkerSet
from distrl.policy import PolicyConfig
from distrl.rollout_worker import RolloutWorker, WorkerConfig
from distrl.slow_env import StepDelay, set_step_delay
from distrl.worker_set import WorkerSet
from studylog import record, record_environment, record_median

# The most evaluators the lab holds at once: its largest set (each smaller one is that
# set's first n), and never fewer than every lab's default, so on this machine the share is
# the one the other labs have.
cluster.init(actors=max(cluster.DEFAULT_ACTORS, max(worker_counts)))
record_environment("ray", cluster.describe())  # where the actors ran: this machine or a cluster
if whole_cpus and cluster.actor_cpus() < 1:
    raise RuntimeError(f"this profile measures evaluators on cores of their own, but this Ray has fewer CPUs than the "
                       f"{max(worker_counts)} evaluators it holds ({cluster.describe()['summary']}): run it against a "
                       f"cluster with RAY_ADDRESS set")
CORES = os.cpu_count()
LIGHT = WorkerConfig(num_envs=1, fragment_length=fragment, policy=PolicyConfig(hidden=(64, 64)))
HEAVY = replace(LIGHT, policy=PolicyConfig(hidden=(heavy_hidden, heavy_hidden) if heavy_hidden else ()))


@dataclass(frozen=True)
class Timed:
    """One contender's rounds: env steps/s, and the CPU seconds per call of the driver's own
    thread (submitting requests, deserializing results; Ray's background threads in the
    driver's process are left out)."""

    rate: np.ndarray  # (repeats,)
    driver_cpu: np.ndarray  # (repeats,)


def side_by_side(calls, settle=lambda: None):
    """Time each of `calls` ({key: (step, env steps per call)}) in turns: two warm-up calls
    each, then `repeats` rounds of one call each, the order rotating. The machine's speed
    drifts over seconds; in turns, every contender sees the same drift, so their ratios
    hold still. `settle()` runs, untimed, after every call: it leaves the evaluators idle."""
    for step, _ in calls.values():
        for _ in range(2):
            step()
            settle()
    keys = list(calls)
    wall, cpu = ({key: [] for key in keys} for _ in range(2))
    for r in range(repeats):
        for key in keys[r % len(keys):] + keys[:r % len(keys)]:
            start, start_cpu = time.perf_counter(), time.thread_time()
            calls[key][0]()
            wall[key].append(time.perf_counter() - start)
            cpu[key].append(time.thread_time() - start_cpu)
            settle()
    return {key: Timed(steps / np.array(wall[key]), np.array(cpu[key])) for key, (_, steps) in calls.items()}


def spread(values, scale=1.0, digits=0):
    """'median [first quartile–third quartile]' of `values` · scale."""
    q1, median, q3 = np.percentile(np.asarray(values) * scale, [25, 50, 75])
    return f"{median:.{digits}f} [{q1:.{digits}f}–{q3:.{digits}f}]"


def quartiles(values):
    """Median, and its distances to the quartiles (for error bars)."""
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return median, (median - q1, q3 - median)


# %% [markdown]
# ## A check first: every evaluator returns exactly what was asked
#
# Each evaluator returns `fragment` steps per call, and every finished episode is counted
# once: on CartPole an episode's return equals its length. The evaluators checked here are
# the ones measured next.

# %% code-fold=false
# One set of the largest size; "n evaluators" are its first n. SPREAD: on a cluster, the
# evaluators go to different nodes where they can (on one node it changes nothing).
light_set = WorkerSet(LIGHT, num_workers=max(worker_counts), num_cpus_per_worker=cluster.actor_cpus(),
                      actor_options={"scheduling_strategy": "SPREAD"})
for s in light_set.sync_sample():
    assert len(s.batch) == fragment, len(s.batch)
    assert s.episodes.returns == tuple(float(n) for n in s.episodes.lengths)
    assert int(s.batch["terminateds"].sum() + s.batch["truncateds"].sum()) == len(s.episodes.lengths)
print("exact batch sizes and consistent episode counts: ok")


def node_of(worker) -> str:
    return ray.get(worker.__ray_call__.remote(lambda _: ray.get_runtime_context().get_node_id()))


# Where the evaluators run: one node here; on a cluster, as many as the set spreads over.
evaluator_nodes = {node_of(w) for w in light_set.remotes}
print(f"the evaluators run on {len(evaluator_nodes)} node(s)")

# %% [markdown]
# ## Throughput: one process, then 1, 2, 4 evaluators, over batch sizes
#
# Each remote evaluator asks Ray for its share of a CPU (`cluster.actor_cpus()`): on a
# cluster with a CPU for each of the actors the lab holds at once, one whole CPU; here, with
# two cores for up to eight actors, a quarter, so the scheduler places all of them even when
# there are more evaluators than cores, and the operating system shares the cores between
# them (the banner's `ray` line says which default the run had). The lab holds one set of
# the largest size; "n evaluators" are its first n, asked together while the others idle.
# "One process, no Ray" is the same RolloutWorker called in the lab's own process (the
# set's local evaluator): the cost of sampling without any actor. All of them are timed in
# turns, one call each per round.
#
# The `cluster` profile sweeps 1 to 64 evaluators, and refuses to run unless each of the 64
# gets a CPU of its own: on fewer cores it would measure the cores being shared, which is
# what this machine's sweep past 2 evaluators shows already.
#
# To separate the per-call cost from the per-step cost, the light policy is measured at
# several batch sizes $B$: the same evaluators are told a new fragment length between
# sweeps (a RolloutWorker reads it from its config at every call).

# %%
def set_fragment(workers: WorkerSet, length: int) -> None:
    """From now on every evaluator of `workers`, local and remote, returns `length` steps per call."""
    def reconfigure(worker):  # runs in each evaluator's process
        worker.config = replace(worker.config, fragment_length=length)

    reconfigure(workers.local)
    ray.get([w.__ray_call__.remote(reconfigure) for w in workers.remotes])


fragments = sorted(set(fit_fragments) | {fragment})
sweep = {}  # (policy, B) -> {n: Timed}; n = 0 is the one process without Ray
configs = {"CartPole, 64x64 MLP": LIGHT} | ({f"CartPole, {heavy_hidden}x{heavy_hidden} MLP": HEAVY} if heavy_hidden else {})
for name, config in configs.items():
    workers = light_set if config is LIGHT else WorkerSet(config, num_workers=max(worker_counts),
                                                          num_cpus_per_worker=cluster.actor_cpus())
    for B in fragments if config is LIGHT else [fragment]:
        set_fragment(workers, B)
        sweep[name, B] = side_by_side({0: (workers.local.sample, B)} |
                                      {n: (functools.partial(workers.sync_sample, n), n * B) for n in worker_counts})
    workers.stop()

for name in configs:
    rates = sweep[name, fragment]
    print(f"{name}, B = {fragment}: env steps/s, median [IQR] over {repeats} rounds")
    for n, timed in rates.items():
        label = "one process, no Ray" if n == 0 else f"{n} evaluator(s), sync"
        efficiency = "" if n == 0 else f"  efficiency {spread(timed.rate / (n * rates[1].rate), digits=2)}"
        print(f"  {label:24s} {spread(timed.rate):>22s}{efficiency}")

# %% [markdown]
# ## The model's parameters, fitted
#
# Each measured point gives a call time $T = nB / X$. For each way of sampling (each $n$, and
# the one process without Ray) a straight line $T_n(B) = a_n + B\, b_n$ is fitted by least
# squares on the relative error over the batch sizes: $a_n$ is the cost per call, $b_n$ the
# cost per step. For $n \ge 1$ the model says $a_n = t_0 + n t_c$ and $b_n = t_{\text{step}}$
# while every evaluator has a core; so $a_1 - a_0$ is what a call through Ray adds, $a_2 - a_1$ estimates
# the driver's $t_c$, and $b_n / b_1$ shows the cores being shared. Fitting each round's
# times on their own gives each parameter a spread.

# %%
light = "CartPole, 64x64 MLP"
assert {1, 2} <= set(worker_counts), "t_c is estimated from 1 and 2 evaluators"
design = np.array([[1.0, B] for B in fragments])  # columns: a_n, b_n


def call_times(n, pick):
    """Seconds per call of n evaluators at each B, from each point's rates through `pick`."""
    return np.array([max(n, 1) * B / pick(sweep[light, B][n].rate) for B in fragments])


def fit(times):
    """(a, b) of T(B) = a + B b, minimising the squared relative error."""
    coef, *_ = np.linalg.lstsq(design / times[:, None], np.ones(len(times)), rcond=None)
    return coef


lines, per_round, residuals = {}, {}, {}
for n in [0, *worker_counts]:
    lines[n] = fit(call_times(n, np.median))
    per_round[n] = np.array([fit(call_times(n, lambda rate, r=r: rate[r])) for r in range(repeats)])  # (repeats, 2)
    residuals[n] = (lines[n][0] + lines[n][1] * np.array(fragments)) / call_times(n, np.median) - 1


def model_time(n, B):
    """The fitted call time of n evaluators (0: one process, no Ray) at B steps per call."""
    a, b = lines[n]
    return a + B * b


print(f"T_n(B) = a_n + B b_n, fitted over B in {fragments}; per-round fits: median [IQR]")
print(f"{'':31s} {'a_n, us per call':>26s} {'b_n, us per step':>22s} {'largest residual':>17s}")
for n in lines:
    label = "one process, no Ray" if n == 0 else f"{n} evaluator(s), sync" + (" (> cores)" if n > CORES else "")
    print(f"{label:31s} {spread(per_round[n][:, 0], 1e6, 1):>26s} {spread(per_round[n][:, 1], 1e6, 1):>22s} "
          f"{np.abs(residuals[n]).max():16.1%}")
ray_per_call = per_round[1][:, 0] - per_round[0][:, 0]
t_c_rounds = per_round[2][:, 0] - per_round[1][:, 0]
t_c = np.median(t_c_rounds)
print(f"a call through Ray adds (a_1 - a_0): {spread(ray_per_call, 1e6, 1)} us")
print(f"the driver's t_c, estimated as a_2 - a_1: {spread(t_c_rounds, 1e6, 1)} us per result")
for n in worker_counts[1:]:
    print(f"per-step cost with {n} evaluators / with 1 (b_{n} / b_1): {spread(per_round[n][:, 1] / per_round[1][:, 1], digits=2)}")
print(f"residuals, fitted / measured call time - 1, at B = {fragments}:")
for n, res in residuals.items():
    print(f"  n = {n}: " + ", ".join(f"{r:+.1%}" for r in res))

# %% [markdown]
# ## Asynchronous driving, where it cannot help: identical evaluators
#
# Two evaluators with the same policy and the same CartPole, driven both ways in turns:
# `sync_sample` twice (4 batches), and `async_sample` until 4 batches have arrived. An
# asynchronous turn keeps every evaluator busy until its last batch; the requests still
# running then are not counted (a sampler that runs on would use them), and are taken, unused,
# outside the clock, so each turn starts with idle evaluators.

# %% code-fold=false
def sync_steps(workers: WorkerSet, calls: int) -> None:
    for _ in range(calls):
        workers.sync_sample()


def async_turn(workers: WorkerSet, batches: int):
    """(step, settle) for side_by_side: `step` takes `batches` batches from async_sample,
    every evaluator kept busy until the last; `settle` takes the n - 1 requests still in
    flight, unused. (They are not cancelled: with this Ray, cancelling a request that had
    not yet reached its actor left the actor waiting for it, and its next call failed after
    30 s.)"""
    streams = []

    def step():
        streams.append(workers.async_sample(batches + len(workers.remotes) - 1))
        for _ in itertools.islice(streams[-1], batches):
            pass

    def settle():
        while streams:
            for _ in streams.pop():
                pass

    return step, settle


pair = WorkerSet(LIGHT, num_workers=2, num_cpus_per_worker=cluster.actor_cpus())  # also the reference below
async_step, settle = async_turn(pair, 4)
identical = side_by_side({"sync": (lambda: sync_steps(pair, 2), 4 * fragment), "async": (async_step, 4 * fragment)}, settle)
print(f"2 identical evaluators: sync {spread(identical['sync'].rate)}, async {spread(identical['async'].rate)} steps/s; "
      f"async / sync {spread(identical['async'].rate / identical['sync'].rate, digits=2)}")

# %% [markdown]
# ## Asynchronous driving with a straggler
#
# Now every evaluator's environment step takes $d$ longer (`StepDelay`, which waits rather
# than computes, so a slow evaluator leaves its core to the others), and one evaluator's
# takes $k d$: $k = 1$ is the control, identical evaluators. With $d$ much longer than the
# step's own work, that evaluator is nearly $k$ times slower; the model below uses the delay
# as added, not $k$. The same evaluators are driven both ways in turns: `straggler_window`
# synchronous steps, and as many asynchronous batches as arrive in about that time if the
# straggler were exactly $k$ times slower, $\text{window} \cdot (k(n-1)+1)$.
#
# The model's inputs: $T$, the control's synchronous call time (measured), and the
# straggler's call time $T + (k-1) d B$ (the delay added). It predicts
# $X_{\text{sync}} = nB / (T + (k-1) d B)$ and
# $X_{\text{async}} = B\,\big((n-1)/T + 1/(T + (k-1) d B)\big)$; it leaves out the
# driver's work between a result and the next request.

# %%
assert 1 in straggler_factors, "k = 1 is the control, and the model's T comes from it"
STRAGGLING = replace(LIGHT, fragment_length=straggler_fragment, env_kwargs={"wrappers": [StepDelay]})
d, steps_per_call = step_delay_ms / 1000, straggler_fragment
straggle = {}  # (n, k) -> {"sync": Timed, "async": Timed}
for n in straggler_counts:
    workers = WorkerSet(STRAGGLING, num_workers=n, num_cpus_per_worker=cluster.actor_cpus())
    for k in sorted(straggler_factors):
        set_step_delay(workers.remotes, [k * d] + [d] * (n - 1))  # evaluator 1 is the straggler
        batches = straggler_window * (k * (n - 1) + 1)
        async_step, settle = async_turn(workers, batches)
        straggle[n, k] = side_by_side({
            "sync": (lambda: sync_steps(workers, straggler_window), straggler_window * n * steps_per_call),
            "async": (async_step, batches * steps_per_call),
        }, settle)
    workers.stop()


def straggler_model(n, k):
    """(sync, async) env steps/s the model predicts for n evaluators, one k times slower."""
    T = n * steps_per_call / np.median(straggle[n, 1]["sync"].rate)
    slow = T + (k - 1) * d * steps_per_call
    return n * steps_per_call / slow, steps_per_call * ((n - 1) / T + 1 / slow)


print(f"env steps/s, median [IQR]; d = {step_delay_ms} ms per step, B = {steps_per_call}; model from the k = 1 control")
print(f"{'n':>2} {'k':>2} {'sync':>18} {'async':>18} {'async/sync':>18} {'model sync':>11} {'model async':>12} {'model ratio':>12}")
for (n, k), timed in straggle.items():
    model_sync, model_async = straggler_model(n, k)
    ratio = spread(timed["async"].rate / timed["sync"].rate, digits=2)
    print(f"{n:2d} {k:2d} {spread(timed['sync'].rate):>18} {spread(timed['async'].rate):>18} {ratio:>18} "
          f"{model_sync:11.0f} {model_async:12.0f} {model_async / model_sync:12.2f}")

# %% [markdown]
# ## Hierarchical delegation: groups of evaluators under sub-drivers
#
# The same number of evaluators, driven flat (the driver collects every result) and through
# `num_groups` sub-drivers of `group_size` evaluators each (the driver collects one
# aggregated batch per group), in turns. Besides the throughput, the CPU time of the
# driver's own thread per step is measured: it is the work delegation is meant to take off
# the driver. A sub-driver is one more process on the same cores, and every batch makes one
# more hop: serialized by its evaluator, deserialized and concatenated by the sub-driver,
# serialized again.

# %%
total = num_groups * group_size
# Half the usual CPU request per actor, for both: Ray places an actor only where its request
# fits, and the two sets' actors together would ask for more than the cluster's CPUs. The
# request is bookkeeping for the scheduler; the operating system shares the cores either way.
share = cluster.actor_cpus() / 2
flat = WorkerSet(LIGHT, num_workers=total, num_cpus_per_worker=share)
tree = HierarchicalWorkerSet(LIGHT, num_groups=num_groups, group_size=group_size, num_cpus_per_worker=share)
assert sum(len(s.batch) for s in tree.sync_sample()) == sum(len(s.batch) for s in flat.sync_sample()) == total * fragment
delegation = side_by_side({"flat": (flat.sync_sample, total * fragment), "hierarchical": (tree.sync_sample, total * fragment)})
flat.stop()
tree.stop()
results_per_step = {"flat": total, "hierarchical": num_groups}
print(f"{total} evaluators, B = {fragment}: median [IQR]")
for key, timed in delegation.items():
    print(f"  {key:12s} {spread(timed.rate):>22s} steps/s; the driver handles {results_per_step[key]} result(s) per step,"
          f" {spread(timed.driver_cpu, 1e3, 2)} ms of its thread's CPU per step")
print(f"  hierarchical / flat: {spread(delegation['hierarchical'].rate / delegation['flat'].rate, digits=2)}")
cpu_per_result = np.median(delegation["flat"].driver_cpu) / total
for source, per_result in (("t_c = a_2 - a_1", t_c), ("the driver thread's CPU time per result", cpu_per_result)):
    if per_result > 0:  # a t_c within the noise can come out negative: then the model sets no limit
        print(f"model: with {source} ({per_result * 1e6:.0f} us), the driver is busy for a whole call "
              f"(n t_c = T_1(B), B = {fragment}) at n = {model_time(1, fragment) / per_result:.0f} evaluators")

# %% [markdown]
# ## The reference: RLlib's own env runners, same settings
#
# RLlib's PPO builds an `EnvRunnerGroup`; we time only its runners' `sample()`: 2 runners,
# one CartPole each, the same 64x64 MLP, `fragment` steps per runner per call, in turns with
# distrl's 2 evaluators.

# %%
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

rllib_config = (
    PPOConfig()
    .environment("CartPole-v1")
    .env_runners(num_env_runners=2, num_envs_per_env_runner=1, rollout_fragment_length=fragment,
                 num_cpus_per_env_runner=cluster.actor_cpus())
    .learners(num_learners=0)
    .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=[64, 64]))
)
algo = rllib_config.build_algo()
runners = algo.env_runner_group


def rllib_sample():
    steps = runners.foreach_env_runner(lambda r: sum(len(e) for e in r.sample(num_timesteps=fragment)), local_env_runner=False)
    assert sum(steps) >= 2 * fragment, steps


# %% [markdown]
# ## The second reference: TorchRL's collectors, same settings
#
# TorchRL [@bou2024] is the other attempt to make RL in PyTorch modular. Its *collectors*
# take an environment constructor and a policy (a module reading and writing a TensorDict)
# and return batches of `frames_per_batch` steps. Four of them, each with one CartPole per
# worker, 2·`fragment` steps per call, and as its policy the actor half of distrl's network
# (the same 64x64 tanh MLP, initialised alike) sampling its action from a `Categorical`:
#
# - `Collector`: in the lab's own process, the counterpart of distrl's local evaluator;
# - `MultiSyncCollector` with 2 worker processes, each collecting half of every batch;
# - `MultiAsyncCollector` with 2 workers, a call taking the first two half-batches to arrive.
#   A worker starts its next batch as soon as its last is taken, so a turn ends with both
#   workers busy: as with distrl's asynchronous turns, that work is left to finish outside
#   the clock (the harness waits twice a half-batch's time) and those batches, ready when
#   the next turn starts, are taken and not counted;
# - `RayCollector` with 2 Ray actors each running a `Collector`, gathered synchronously.
#
# They are timed in turns with distrl's two evaluators (sync and async) and RLlib's two env
# runners. distrl's evaluator also computes V(s) at every step (the critic's head), which
# TorchRL's collectors leave to the loss: the network work per step favours TorchRL.

# %%
import gymnasium as gym
import torch
import torchrl
from tensordict.nn import TensorDictModule
from torch.distributions import Categorical
from torchrl.collectors import Collector, MultiAsyncCollector, MultiSyncCollector
from torchrl.collectors.distributed import RayCollector
from torchrl.envs import GymWrapper
from torchrl.modules import ProbabilisticActor

from distrl.policy import ActorCritic


def torchrl_env(delay_s=0.0):
    """CartPole-v1 for TorchRL, its actions as indices (as distrl's); delayed by StepDelay."""
    env = gym.make("CartPole-v1")
    return GymWrapper(StepDelay(env, delay_s) if delay_s else env, categorical_action_encoding=True)


# A multi-process collector sets this process's torch threads to the cores left beside its
# workers (here 1); `shutdown` gives the lab its setting back.
torch_threads = torch.get_num_threads()
torch.manual_seed(LIGHT.policy.seed)  # as distrl's Policy seeds its network
actor = ActorCritic(4, 2, LIGHT.policy.hidden).actor
torchrl_policy = ProbabilisticActor(TensorDictModule(actor, in_keys=["observation"], out_keys=["logits"]),
                                    in_keys=["logits"], distribution_class=Categorical, return_log_prob=True)
SINGLE, TWO = "TorchRL Collector", ("TorchRL MultiSync x2", "TorchRL MultiAsync x2", "TorchRL RayCollector x2")


class TorchRLContenders:
    """TorchRL's four collectors on `make_env`, each returning `steps` env steps per call,
    as side_by_side's calls; `settle` lets MultiAsync's workers finish what they started;
    `shutdown` stops them all and restores this process's torch threads."""

    def __init__(self, make_env, steps):
        self.collectors = {
            SINGLE: Collector(make_env, torchrl_policy, frames_per_batch=steps, total_frames=-1),
            TWO[0]: MultiSyncCollector([make_env] * 2, torchrl_policy, frames_per_batch=steps, total_frames=-1),
            TWO[1]: MultiAsyncCollector([make_env] * 2, torchrl_policy, frames_per_batch=steps // 2, total_frames=-1),
            # (total_frames=-1, "forever", makes this one yield nothing in 0.14.1)
            TWO[2]: RayCollector([make_env] * 2, torchrl_policy, frames_per_batch=steps, total_frames=10**15, sync=True,
                                 remote_configs={"num_cpus": cluster.actor_cpus(), "num_gpus": 0}),
        }
        self.batches = {name: iter(c) for name, c in self.collectors.items()}
        self.steps, self.in_flight, self.just_ran = steps, False, False
        call = {name: functools.partial(self.take, name, 1) for name in (SINGLE, TWO[0], TWO[2])}
        self.calls = {name: (fn, steps) for name, fn in call.items()} | {TWO[1]: (self.take_async, steps)}
        self.take(TWO[0], 3)
        start = time.perf_counter()
        self.take(TWO[0], 3)
        self.half_batch_s = (time.perf_counter() - start) / 3  # each worker's half, at once

    def take(self, name, count):
        for _ in range(count):
            batch = next(self.batches[name])
        assert batch.numel() == (self.steps // 2 if name == TWO[1] else self.steps), batch.numel()

    def take_async(self):
        if self.in_flight:
            self.take(TWO[1], 2)  # last turn's, finished outside the clock: not counted
        self.take(TWO[1], 2)
        self.in_flight = self.just_ran = True

    def settle(self):
        if self.just_ran:  # after MultiAsync's own turn; its workers are idle after the others'
            time.sleep(2 * self.half_batch_s)
            self.just_ran = False

    def shutdown(self):
        for collector in self.collectors.values():
            collector.shutdown()
        torch.set_num_threads(torch_threads)


def best_of_two(rates):
    """The TorchRL 2-worker collector with the highest median rate."""
    return max(TWO, key=lambda name: np.median(rates[name].rate))


torchrl_fast = TorchRLContenders(torchrl_env, 2 * fragment)
distrl_async, distrl_settle = async_turn(pair, 2)
versus = side_by_side({"distrl sync x2": (pair.sync_sample, 2 * fragment), "distrl async x2": (distrl_async, 2 * fragment),
                       "RLlib x2": (rllib_sample, 2 * fragment)} | torchrl_fast.calls,
                      lambda: (distrl_settle(), torchrl_fast.settle()))
torchrl_fast.shutdown()
algo.stop()
pair.stop()
best = best_of_two(versus)
print(f"CartPole-v1, 2·{fragment} steps per call; env steps/s, median [IQR] over {repeats} rounds "
      f"(RLlib {ray.__version__}, TorchRL {torchrl.__version__})")
for name, timed in versus.items():
    print(f"  {name:26s} {spread(timed.rate):>22s}   distrl sync x2 / this: "
          f"{spread(versus['distrl sync x2'].rate / timed.rate, digits=2)}")
print(f"TorchRL's fastest with 2 workers: {best}")

# %% [markdown]
# ### When the environment is slow
#
# distrl's evaluators and TorchRL's four collectors again, but every environment step now
# takes `slow_step_ms` longer (`StepDelay`, which sleeps): many times distrl's own work per
# step, and about twice TorchRL's (its profile below), the case multi-process collection
# is for. Each framework's 2-worker
# collection is set against its own one process (distrl's local evaluator, TorchRL's
# `Collector`), so the ratio is its speed-up on two workers, 2 at best. A worker takes
# `fragment` / 5 steps per call (100 ms of sleeping at 500). The quick profile leaves this
# section out.

# %%
slow = {}
if slow_step_ms:
    slow_s, slow_fragment = slow_step_ms / 1000, max(fragment // 5, 10)
    SLOW = replace(LIGHT, fragment_length=slow_fragment, env_kwargs={"wrappers": [StepDelay]})
    slow_pair = WorkerSet(SLOW, num_workers=2, num_cpus_per_worker=cluster.actor_cpus())
    set_step_delay(slow_pair.remotes, [slow_s, slow_s])
    slow_pair.local.env.set_attr("delay_s", slow_s)
    torchrl_slow = TorchRLContenders(functools.partial(torchrl_env, slow_s), 2 * slow_fragment)
    slow = side_by_side({"distrl, 1 process": (slow_pair.local.sample, slow_fragment),
                         "distrl sync x2": (slow_pair.sync_sample, 2 * slow_fragment)} | torchrl_slow.calls,
                        torchrl_slow.settle)
    torchrl_slow.shutdown()
    slow_pair.stop()
    slow_best = best_of_two(slow)
    print(f"CartPole-v1 + {slow_step_ms:g} ms per step, 2·{slow_fragment} steps per call (1 process: {slow_fragment}); "
          f"env steps/s, median [IQR]")
    for name, timed in slow.items():
        print(f"  {name:26s} {spread(timed.rate):>22s}")
    print(f"2 workers / 1 process: distrl {spread(slow['distrl sync x2'].rate / slow['distrl, 1 process'].rate, digits=2)}, "
          f"TorchRL ({slow_best}) {spread(slow[slow_best].rate / slow[SINGLE].rate, digits=2)}")

# %% [markdown]
# ## Where one step's time goes
#
# At these sizes the environment is cheap (a CartPole step is a few microseconds), so a
# sampler's speed is what it does around the environment. distrl's evaluator does, per step,
# one forward pass of both heads at batch size 1 (V(s') of one step is V(s) of the next, so it
# is not computed twice), a Gumbel-max draw of the action, and the vector env's step; we time
# those parts alone and call the rest bookkeeping. RLlib's env runner runs the same env and
# network through its connector pipelines, episode objects and metrics, and TorchRL's
# `Collector` writes every step into TensorDicts, through its policy's TensorDict modules
# and its environment's specs; a profile of one runner and of one collector in this
# process, with each builtin's time charged to the package that called it, shows where
# each one's time per step goes.

# %%
import cProfile
import pstats
from collections import Counter


def per_step_us(fn, calls=2000):
    fn()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e6


def package(path):
    """A profile entry's file as a package: rllib's, torchrl's and tensordict's two levels
    deep, others by top name."""
    if "site-packages/" not in path:
        return "python" if path.startswith(("/", "<")) else path
    parts = path.split("site-packages/")[1].split("/")
    if parts[:2] == ["ray", "rllib"]:
        return "/".join(parts[1:3])
    if parts[0] in ("torchrl", "tensordict"):
        return "/".join(parts[:2]).removesuffix(".py")
    return parts[0].removesuffix(".py")


def profile_by_package(fn, total_us):
    """`total_us` per step split over the packages `fn`'s profile spends its time in: the
    six largest, and the rest as "other"."""
    profiler = cProfile.Profile()
    profiler.runcall(fn)
    by_package = Counter()
    for (path, _, _), (_, _, own, _, callers) in pstats.Stats(profiler).stats.items():
        if path != "~":
            by_package[package(path)] += own
        else:  # a builtin (torch's C++ ops among them): charge each caller its share
            for (caller_path, _, _), (_, _, share, _) in callers.items():
                by_package[package(caller_path)] += share
    profiled = sum(by_package.values())
    parts = {name: total_us * t / profiled for name, t in by_package.most_common(6)}
    parts["other"] = total_us - sum(parts.values())
    return parts


probe = RolloutWorker(LIGHT)
local_algo = rllib_config.copy(copy_frozen=False).env_runners(num_env_runners=0).build_algo()
runner = local_algo.env_runner
local_collector = Collector(torchrl_env, torchrl_policy, frames_per_batch=fragment, total_frames=-1)
local_batches = iter(local_collector)
one_process = side_by_side({"distrl": (probe.sample, fragment), "rllib": (lambda: runner.sample(num_timesteps=fragment), fragment),
                            "torchrl": (lambda: next(local_batches), fragment)})
distrl_total, rllib_total, torchrl_total = (1e6 / np.median(one_process[key].rate) for key in ("distrl", "rllib", "torchrl"))

one_obs = probe.obs.copy()
probe_actions = probe.policy.compute_actions(one_obs)[0]
distrl_parts = {
    "policy forward + action": per_step_us(lambda: probe.policy.compute_actions(one_obs)),
    "env step": per_step_us(lambda: probe.env.step(probe_actions)),
}
distrl_parts["bookkeeping"] = max(distrl_total - sum(distrl_parts.values()), 0.0)

rllib_parts = profile_by_package(lambda: runner.sample(num_timesteps=4 * fragment), rllib_total)
torchrl_parts = profile_by_package(lambda: [next(local_batches) for _ in range(4)], torchrl_total)
local_algo.stop()
local_collector.shutdown()
print(f"us per step in one process, median [IQR]: distrl {spread(1e6 / one_process['distrl'].rate)}; "
      f"RLlib {ray.__version__} {spread(1e6 / one_process['rllib'].rate)}; "
      f"TorchRL {torchrl.__version__} {spread(1e6 / one_process['torchrl'].rate)}")
step_parts = {"distrl": distrl_parts, "RLlib": rllib_parts, "TorchRL": torchrl_parts}
for name, parts in step_parts.items():
    print(name, ", ".join(f"{k} {v:.0f} us" for k, v in parts.items()))

# %% [markdown]
# ## Broadcasting weights: one object-store entry, or a copy per worker
#
# `broadcast_weights()` puts the weights in the object store once and hands every worker the
# same reference. The alternative passes the array itself to each call, which serializes a
# copy per worker.

# %%
@ray.remote(num_cpus=cluster.actor_cpus())
class Receiver:
    def receive(self, weights):
        return weights.nbytes


receivers = [Receiver.remote() for _ in range(4)]
ray.get([r.receive.remote(np.zeros(1)) for r in receivers])
broadcast = {"shared ray.put": [], "copy per worker": []}  # per size: seconds per broadcast, one per round
for size in broadcast_sizes:
    weights = np.random.default_rng(0).standard_normal(size).astype(np.float32)

    def shared():
        ref = ray.put(weights)
        ray.get([r.receive.remote(ref) for r in receivers])

    def copies():
        ray.get([r.receive.remote(weights) for r in receivers])

    # The object store's timings come in bursts (allocation, freeing of earlier objects), so
    # the two ways alternate, round by round, 3·repeats rounds after one to warm up.
    times = {"shared ray.put": [], "copy per worker": []}
    for _ in range(3 * repeats + 1):
        for label, fn in (("shared ray.put", shared), ("copy per worker", copies)):
            start = time.perf_counter()
            fn()
            times[label].append(time.perf_counter() - start)
    for label in broadcast:
        broadcast[label].append(np.array(times[label][1:]))
for label, times in broadcast.items():
    print(f"{label:16s}", ", ".join(f"{spread(t, 1e3, 1)} ms" for t in times))
for receiver in receivers:  # their quarter CPUs go back to the scheduler for the next section's actors
    ray.kill(receiver)

# %% [markdown]
# ## How weights reach the workers, framework by framework
#
# Each framework's own call for moving a learner's new weights to 2 sampling workers, with
# a policy of about `weight_sync_params` parameters, timed in turns (the weights change
# before every call, so no framework can skip the work). The networks differ in shape, not
# in what moves: distrl's evaluator holds both heads (it computes $V(s)$ while sampling),
# TorchRL's collectors hold the policy module they were given (here the actor alone), and
# RLlib's env runners an inference-only copy of the module (the value head left out), so
# each gets the width at which what it moves is `weight_sync_params`.
#
# - distrl: `WorkerSet.broadcast_weights()` flattens the weights into one array, puts it in
#   Ray's object store once, and waits for every worker to copy it into its network.
# - TorchRL, `MultiSyncCollector.update_policy_weights_(policy)`: by default
#   (`SharedMemWeightSyncScheme`) the collector moves the policy's own parameters into
#   shared memory when it is built (`is_shared()` turns true on the learner's tensors), and
#   its workers read those same tensors: an optimizer step in the learner is already where
#   the workers look, and the call only tells them so.
# - TorchRL, `RayCollector.update_policy_weights_(policy)` (`RayWeightSyncScheme`): a Ray
#   call tells each collector actor to receive, the tensors go to it over a
#   `torch.distributed` (gloo) channel, and the call returns when every actor has applied them.
# - RLlib: `EnvRunnerGroup.sync_weights(from_worker_or_learner_group=learner_group,
#   inference_only=True)`, as its PPO calls it: the learner's inference-only state goes into
#   the object store once and every env runner is asked to load it. The call does not wait
#   for them (its default, fire-and-forget: a runner's next `sample()` queues behind the
#   load), so here it is followed by a no-op call to every runner, which returns once the
#   loads are done; distrl's `broadcast_weights(wait=False)` does the same as RLlib's default.
#
# Each time runs until every worker holds the new weights. After the first call of each,
# the check reads the weights back where the workers use them: distrl's and
# RLlib's from the worker processes, TorchRL's through a batch collected after the update,
# whose logged action probabilities must be the updated policy's.

# %%
weight_sync = {}
if weight_sync_params:
    both_heads, one_head = int(np.sqrt(weight_sync_params / 2)), int(np.sqrt(weight_sync_params))
    big_set = WorkerSet(replace(LIGHT, fragment_length=10, policy=PolicyConfig(hidden=(both_heads, both_heads))), 2,
                        num_cpus_per_worker=cluster.actor_cpus())
    big_actor = ActorCritic(4, 2, (one_head, one_head)).actor
    big_policy = ProbabilisticActor(TensorDictModule(big_actor, in_keys=["observation"], out_keys=["logits"]),
                                    in_keys=["logits"], distribution_class=Categorical, return_log_prob=True)
    big_collectors = {
        "MultiSync": MultiSyncCollector([torchrl_env] * 2, big_policy, frames_per_batch=20, total_frames=-1),
        "Ray": RayCollector([torchrl_env] * 2, big_policy, frames_per_batch=20, total_frames=10**15, sync=True,
                            remote_configs={"num_cpus": cluster.actor_cpus(), "num_gpus": 0}),
    }
    big_batches = {name: iter(c) for name, c in big_collectors.items()}
    for batches in big_batches.values():  # started, as a learner finds them between two batches
        next(batches)
    big_algo = (rllib_config.copy(copy_frozen=False).env_runners(rollout_fragment_length=10)
                .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=[one_head, one_head])).build_algo())

    def on_learner(fn):
        """`fn(learner)` run where RLlib's learner lives (here, this process)."""
        return next(iter(big_algo.learner_group.foreach_learner(fn))).get()

    def runner_state(runner) -> dict:
        return {k: v.cpu() for k, v in runner.module.state_dict().items()}

    def bump_distrl():
        big_set.local.set_weights(big_set.local.get_weights() + 1e-3)

    def bump_torch(module):
        with torch.no_grad():
            for p in module.parameters():
                p.add_(1e-3)

    def rllib_sync():
        runners = big_algo.env_runner_group
        runners.sync_weights(from_worker_or_learner_group=big_algo.learner_group, inference_only=True)
        runners.foreach_env_runner(lambda runner: None, local_env_runner=False)  # returns after the queued loads

    calls = {
        "distrl broadcast_weights": (bump_distrl, big_set.broadcast_weights),
        "TorchRL MultiSync": (lambda: bump_torch(big_actor), lambda: big_collectors["MultiSync"].update_policy_weights_(big_policy)),
        "TorchRL Ray": (lambda: bump_torch(big_actor), lambda: big_collectors["Ray"].update_policy_weights_(big_policy)),
        "RLlib sync_weights": (lambda: on_learner(lambda learner: bump_torch(learner.module["default_policy"])),
                               rllib_sync),
    }
    moved = {"distrl broadcast_weights": big_set.local.get_weights().size,
             "TorchRL MultiSync": sum(p.numel() for p in big_actor.parameters()),
             "RLlib sync_weights": sum(big_algo.env_runner_group.foreach_env_runner(
                 lambda r: sum(p.numel() for p in r.module.parameters()), local_env_runner=False)[:1])}
    moved["TorchRL Ray"] = moved["TorchRL MultiSync"]

    def check(name):
        """The workers use the weights the call sent."""
        if name.startswith("distrl"):
            for weights in ray.get([w.get_weights.remote() for w in big_set.remotes]):
                assert np.array_equal(weights, big_set.local.get_weights())
        elif name.startswith("TorchRL"):
            batch = next(big_batches[name.split()[1]])
            with torch.no_grad():
                fresh = big_policy.log_prob(batch.select("observation", "action"))
            assert torch.allclose(fresh, batch["action_log_prob"], atol=1e-5)
        else:
            source = on_learner(lambda learner: learner.module["default_policy"].state_dict())
            for copy in big_algo.env_runner_group.foreach_env_runner(runner_state, local_env_runner=False):
                assert all(torch.equal(v, source[k].cpu()) for k, v in copy.items()), name

    times = {name: [] for name in calls}
    for r in range(repeats + 1):  # the first round warms up and is checked
        for name in list(calls)[r % len(calls):] + list(calls)[:r % len(calls)]:
            bump, sync = calls[name]
            bump()
            start = time.perf_counter()
            sync()
            times[name].append(time.perf_counter() - start)
            if r == 0:
                check(name)
    weight_sync = {name: np.array(t[1:]) for name, t in times.items()}
    for collector in big_collectors.values():
        collector.shutdown()
    torch.set_num_threads(torch_threads)
    big_algo.stop()
    big_set.stop()
    print(f"{'call':<26} {'parameters moved':>17} {'ms per sync to 2 workers':>26}")
    for name, t in weight_sync.items():
        print(f"{name:<26} {moved[name]:>17,} {spread(t, 1e3, 1):>26}")

# %% [markdown]
# ## Plots
#
# Markers are medians over the rounds, bars the interquartile range; dashed lines are models.

# %% fig-cap="Top: synchronous sampling throughput against evaluators (RLlib's 2 runners dashed, TorchRL's fastest 2-worker collector dotted); throughput against the steps a call asks for, B, with the fitted lines; asynchronous and synchronous driving with one evaluator k times slower, measured and modelled. Bottom: parallel efficiency; broadcasting weights through one object-store entry or a copy per worker; where one env step's time goes in one process, distrl, RLlib and TorchRL."
fig, axes = plt.subplots(2, 3, figsize=(17, 8))
for name in configs:
    rates = sweep[name, fragment]
    ns = [n for n in rates if n > 0]
    for ax, values in ((axes[0, 0], [rates[n].rate for n in ns]),
                       (axes[1, 0], [rates[n].rate / (n * rates[1].rate) for n in ns])):
        medians, bars = zip(*map(quartiles, values))
        ax.errorbar(ns, medians, yerr=np.transpose(bars), marker="o", capsize=3, label=name)
axes[0, 0].axhline(np.median(versus["RLlib x2"].rate), color="grey", ls="--", label="RLlib, 2 runners (64x64)")
axes[0, 0].axhline(np.median(versus[best].rate), color="grey", ls=":", label=f"{best} (64x64)")
axes[0, 0].set(xlabel="evaluators", ylabel="env steps/s", title=f"Sync sampling throughput, B = {fragment}")
axes[1, 0].axvline(CORES, color="grey", ls=":", label=f"{CORES} cores")
axes[1, 0].set(xlabel="evaluators", ylabel="efficiency X(n)/(n X(1))", title="Parallel efficiency", ylim=(0, 1.2))

curve = np.geomspace(fragments[0], fragments[-1], 50)
for n in lines:
    medians, bars = zip(*(quartiles(sweep[light, B][n].rate) for B in fragments))
    line = axes[0, 1].errorbar(fragments, medians, yerr=np.transpose(bars), marker="o", ls="none", capsize=3,
                               label="one process, no Ray" if n == 0 else f"{n} evaluator(s), sync")
    axes[0, 1].plot(curve, max(n, 1) * curve / model_time(n, curve), color=line[0].get_color(), ls="--")
axes[0, 1].plot([], [], color="grey", ls="--", label="fitted line, each n")
axes[0, 1].set(xscale="log", xlabel="steps per call B", ylabel="env steps/s",
               title="Throughput against B, and the fitted B / (a_n + B b_n)")

for n in straggler_counts:
    ks = sorted(k for m, k in straggle if m == n)
    for key, marker in (("sync", "o"), ("async", "s")):
        medians, bars = zip(*(quartiles(straggle[n, k][key].rate) for k in ks))
        line = axes[0, 2].errorbar(ks, medians, yerr=np.transpose(bars), marker=marker, capsize=3, label=f"n={n} {key}")
        model = [straggler_model(n, k)[key == "async"] for k in ks]
        axes[0, 2].plot(ks, model, color=line[0].get_color(), ls="--")
axes[0, 2].plot([], [], color="grey", ls="--", label="model")
axes[0, 2].set(xlabel="straggler's slowdown k", ylabel="env steps/s", xticks=sorted(straggler_factors),
               title=f"One evaluator k× slower (d = {step_delay_ms} ms/step)")

for label, times in broadcast.items():
    medians, bars = zip(*(quartiles(t * 1000) for t in times))
    axes[1, 1].errorbar(broadcast_sizes, medians, yerr=np.transpose(bars), marker="o", capsize=3, label=label)
axes[1, 1].set(xscale="log", yscale="log", xlabel="parameters", ylabel="ms per broadcast to 4 workers", title="Weight broadcast")
# One bar per part, framework by framework (stacked, 18 parts would need a legend that
# covers them).
rows = [(framework, part, us) for framework, parts in step_parts.items() for part, us in parts.items()]
color = {"distrl": "C0", "TorchRL": "C1", "RLlib": "C2"}
axes[1, 2].barh(range(len(rows)), [us for *_, us in rows], color=[color[framework] for framework, *_ in rows])
axes[1, 2].set_yticks(range(len(rows)), [f"{framework}: {part}" for framework, part, _ in rows], fontsize=6)
axes[1, 2].invert_yaxis()
axes[1, 2].set(xlabel="µs per env step, one process (medians)", title="Where a step's time goes")
for ax in (axes[0, 0], axes[0, 1], axes[0, 2], axes[1, 0], axes[1, 1]):
    ax.legend(fontsize=7)
fig.tight_layout()
plt.show()

# %% fig-cap="TorchRL's collectors beside distrl's evaluators and RLlib's env runners, in turns: env steps/s on CartPole-v1 (left) and with every step 1 ms longer (right); bars are medians, whiskers the interquartile range."
settings = [("CartPole-v1", versus)] + ([(f"CartPole-v1 + {slow_step_ms:g} ms per step", slow)] if slow else [])
fig, axes = plt.subplots(1, len(settings), figsize=(7 * len(settings), 3.6), squeeze=False)
for ax, (title, timed) in zip(axes[0], settings):
    names = list(timed)
    medians, bars = zip(*(quartiles(timed[name].rate) for name in names))
    colors = ["C0" if name.startswith("distrl") else "C1" if name.startswith("TorchRL") else "C2" for name in names]
    ax.barh(range(len(names)), medians, xerr=np.transpose(bars), color=colors, capsize=3)
    ax.set(yticks=range(len(names)), yticklabels=names, xlabel="env steps/s", title=title)
    ax.invert_yaxis()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The numbers
#
# Ratios are medians of the per-round ratios (contenders timed in the same round); the page
# shows each median with the lowest and highest round.

# %%
light_rates = sweep[light, fragment]
record_median("sample_throughput_1", light_rates[1].rate, "steps/s", "env steps/s, one Ray worker, sync")
record_median("sample_scaling_2", light_rates[2].rate / light_rates[1].rate, "x", "sync throughput with 2 workers / with 1")
record_median("async_vs_sync_2", identical["async"].rate / identical["sync"].rate, "x",
       "async / sync throughput with 2 identical workers")
record("fit_per_call_us", lines[1][0] * 1e6, "us", "fitted a_1: cost of one sync call to one Ray worker, whatever its size")
record("fit_per_step_us", lines[1][1] * 1e6, "us", "fitted b_1: cost of one env step in one Ray worker")
record_median("fit_ray_per_call_us", ray_per_call * 1e6, "us", "a_1 - a_0: what a call through Ray adds to a local call")
record("fit_driver_per_result_us", t_c * 1e6, "us", "a_2 - a_1: the driver's cost per result, paid in series")
record("fit_max_residual", max(np.abs(r).max() for r in residuals.values()) * 100, "%",
       "largest relative error of a fitted call time, any n and B")
for n in straggler_counts if 4 in straggler_factors else []:
    suffix = "" if n == 2 else f"_n{n}"
    straggler = f"{n} workers, one whose env steps are delayed 4x as long as the others'"
    record_median(f"async_vs_sync_straggler_4x{suffix}", straggle[n, 4]["async"].rate / straggle[n, 4]["sync"].rate,
           "x", f"async / sync throughput, {straggler}")
    model_sync, model_async = straggler_model(n, 4)
    record(f"async_vs_sync_straggler_4x{suffix}_model", model_async / model_sync, "x", f"the model's async / sync, {straggler}")
record_median(f"hierarchical_vs_flat_{total}", delegation["hierarchical"].rate / delegation["flat"].rate, "x",
       f"{num_groups}x{group_size} sub-driver groups / flat, sync throughput, {total} workers")
for key in delegation:
    record_median(f"driver_cpu_{key}_{total}_ms", delegation[key].driver_cpu * 1e3, "ms",
           f"the driver thread's CPU time per sync step, {key}, {total} workers")
record_median("vs_rllib_sampling", versus["distrl sync x2"].rate / versus["RLlib x2"].rate, "x",
       "distrl / RLlib env steps/s, equal settings, 2 runners")
record_median("vs_torchrl_sampling", versus["distrl sync x2"].rate / versus[best].rate, "x",
              f"distrl sync / TorchRL's fastest 2-worker collector ({best}), env steps/s, equal settings")
if slow:
    record_median("vs_torchrl_sampling_slow_env", slow["distrl sync x2"].rate / slow[slow_best].rate, "x",
                  f"the same with {slow_step_ms:g} ms per env step (TorchRL's fastest there: {slow_best})")
    record_median("distrl_scaling_2_slow_env", slow["distrl sync x2"].rate / slow["distrl, 1 process"].rate, "x",
                  f"distrl, 2 evaluators / one process, {slow_step_ms:g} ms per env step")
    record_median("torchrl_scaling_2_slow_env", slow[slow_best].rate / slow[SINGLE].rate, "x",
                  f"TorchRL, its fastest 2-worker collector / its one-process Collector, {slow_step_ms:g} ms per env step")
biggest = broadcast_sizes[-1]
record_median(f"broadcast_speedup_{'10m' if biggest == 10_000_000 else biggest}",
              broadcast["copy per worker"][-1] / broadcast["shared ray.put"][-1], "x",
       f"copy-per-worker / shared ray.put time, {biggest} params, 4 workers")
sync_metric = {"distrl broadcast_weights": "distrl", "TorchRL MultiSync": "torchrl_multisync", "TorchRL Ray": "torchrl_ray",
               "RLlib sync_weights": "rllib"}
for name, t in weight_sync.items():
    record_median(f"weight_sync_{sync_metric[name]}_ms", t * 1e3, "ms",
                  f"{name}: one weight sync to 2 workers, {moved[name]:,} parameters")
record("evaluator_nodes", len(evaluator_nodes), "nodes", "Ray nodes the throughput sweep's evaluators ran on")
cluster.shutdown()

# %% [markdown]
# ## What it means
#
# On this machine the driver and every evaluator share two cores. Two evaluators can each
# have a core, so throughput nearly doubles; four must share them, and the fitted cost per
# step, $b_n$, grows with them: the cores, not the coordination, stop the scaling. An
# evaluator in a Ray actor is somewhat slower than the same loop in the lab's own process:
# the actor shares its core with Ray's own threads and processes.
#
# The fit separates what a call costs from what a step costs. Each way of sampling is a
# straight line in $B$, to within the residuals printed with the fit; the cost per call is
# the intercept $a_n$, and what Ray adds to a call is $a_1 - a_0$. At the lab's `fragment`
# steps per call, the cost per call is a small part of a call's time; what two evaluators
# lose against the ideal shows in $b_2 / b_1$ and $a_2 - a_1$, printed with the fit. The
# driver's cost per result, estimated two ways (as $a_2 - a_1$, and as its thread's CPU
# time), puts the point where the driver would be busy for a whole call at many more
# evaluators than this machine has cores: that point is the model's, not a measurement.
#
# Asynchronous sampling cannot help identical evaluators, and the first comparison shows
# little difference. With a straggler the two part, as the model says they should: a
# synchronous step waits for the slowest evaluator, so its throughput falls with the
# straggler's call time, while asynchronous sampling keeps taking the fast evaluators'
# batches. The table sets each measurement beside the model's figure. Two things the model
# leaves out move them apart, in opposite directions: a synchronous step waits for the
# slowest of $n$ calls whose times vary even among identical evaluators (the model's $T$,
# taken from the synchronous control, includes that wait, so it undercounts the fast
# evaluators' rate under asynchronous sampling), and each timed asynchronous turn ends with
# batches still running that it does not count, most of them the straggler's.
#
# Delegation to sub-drivers does what it promises to the driver: it handles one result per
# group instead of one per evaluator, and its thread's CPU time per step falls with the
# number of results (printed beside the throughput). On one node with two cores it cannot
# raise throughput: the driver was not the bottleneck, and the sub-drivers are more
# processes on the same cores, each batch crossing one more process boundary. It pays where
# the driver's work per step approaches a call's time, which the model above places far
# beyond this machine.
#
# Against RLlib the difference is the work around each step, not the parallelism: both run
# two evaluators on two cores, but an RLlib env runner spends most of a step in its
# framework (the module call through its distribution classes, connector pipelines, episode
# objects, metrics), where distrl's evaluator makes one forward pass and writes into
# preallocated columns. With a wider network (the 512x512 policy) inference dominates both,
# and the gap would narrow; with vectorized environments per evaluator, both amortize the
# per-step overhead over more rows.
#
# Against TorchRL the story is the same kind, and the profile shows its share: a
# `Collector` step passes through TensorDicts (the policy's modules read and write one, the
# environment's step fills another against its specs), and torch, torchrl's environment
# code and tensordict's bookkeeping split most of a step between them. Those layers buy what
# distrl's evaluator does not have: one collector for any environment library and device
# (environments and policy on a GPU among them), transforms composed onto the environment,
# trajectories split per episode, collectors that write straight into a replay buffer,
# several ways of syncing weights to the workers. distrl's evaluator knows one thing: a
# Gymnasium vector environment on the CPU and one actor-critic, written into numpy columns.
# On the fast environment, distrl's async driving and TorchRL's `MultiAsyncCollector` give
# about what their synchronous counterparts give with identical workers, as the model says.
# With a slow environment both frameworks get close to twice one process's rate from two
# workers, and their ratio (`vs_torchrl_sampling_slow_env`) falls, but not to 1: at a
# millisecond of sleep per step, TorchRL's own work per step is still about half as much
# again, and one process of each differs by that. The headline ratios take TorchRL's
# fastest 2-worker collector in each setting, whichever it is.
#
# Weights reach the workers in three ways. distrl and RLlib copy: the learner's weights go
# into Ray's object store once and each worker copies them into its own network, so a sync
# costs time that grows with the weights, from a few milliseconds at 10^4 parameters (the
# fixed cost of a call) to ten and more at 10^7 (the table above), and works the same
# across machines. TorchRL's multi-process collectors by
# default do not copy at all on one machine: the learner's parameters are moved into shared
# memory and the workers compute with them, so a sync costs only the message, whatever the
# size. The price is that nothing separates a worker's batch from the learner's next step:
# with `MultiAsyncCollector`, whose workers never wait, an optimizer step can land in the
# middle of a batch, which a copy-based sync rules out by construction. TorchRL's
# `RayCollector` copies, as distrl and RLlib do.
#
# On a cluster the limit moves to the network: every batch crosses it once, and every
# weight broadcast once per node when it is put in the object store once, which is what the
# shared `ray.put` buys over a copy per worker. On one machine both ways stay in shared
# memory, so the copy-per-worker cost is only the extra serializations into the store; at
# the table's smallest size a copy per worker can even be the faster of the two.
