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
#         repeats: 9
#         sizes_kb: [4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144]
#         world_sizes: [2, 4]
#       quick:
#         repeats: 1
#         sizes_kb: [4, 65536]
#         world_sizes: [2, 4]
#     summary: Naive, tree and ring all-reduce over Ray actors, against gloo, the α–β
#       cost model and this machine's memory bandwidth.
#     title: All-reduce over Ray actors
# ---

# %% [markdown]
# # All-reduce over Ray actors
#
# **The question.** Without a parameter server, workers that each computed a gradient must
# all end with the sum (or mean) of everyone's: an *all-reduce*. How should the data move so
# that the time stays flat as workers are added, and how close does an implementation on
# Ray's actors and object store come to a production collective library (gloo, through
# `torch.distributed`) and to what the hardware allows?
#
# **The idea.** Let $n$ participants each hold $N$ bytes. Model a message of $m$ bytes as
# costing $\alpha + m\beta$ (latency plus bytes over bandwidth) and reducing $m$ bytes as
# $m\gamma$. Three algorithms (Thakur, Rabenseifner and Gropp, 2005):
#
# - **naive**: everyone sends to rank 0, which reduces and sends the result back:
#   $T_{\text{naive}} = 2(n-1)(\alpha + N\beta) + (n-1)N\gamma$, all of it through one rank.
# - **tree**: pairwise reductions up a binary tree, the result back down:
#   $T_{\text{tree}} = 2\lceil\log_2 n\rceil(\alpha + N\beta) + \lceil\log_2 n\rceil N\gamma$.
# - **ring**: cut the buffer into $n$ chunks; in $n-1$ rounds each rank passes one chunk to
#   its neighbour, which adds its own (reduce-scatter); then $n-1$ rounds pass the reduced
#   chunks round (all-gather):
#   $T_{\text{ring}} = 2(n-1)\alpha + 2\frac{n-1}{n}N\beta + \frac{n-1}{n}N\gamma$.
#
# Only the ring's bandwidth term stays bounded as $n$ grows: each rank moves
# $2\frac{n-1}{n}N < 2N$ bytes. That is why the NCCL-tests convention reports *bus
# bandwidth*, $\text{busbw} = \frac{2(n-1)}{n}N / T$: for the ring it is the bandwidth each
# link achieves, comparable across $n$ and against the hardware's limit.

# %% tags=["parameters"]
repeats = 9  # timed repetitions per point (median reported)
sizes_kb = [4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144]  # message sizes N, in KiB
world_sizes = [2, 4]  # numbers of participants n

# %%
import math
import os
import statistics
import time
from collections import defaultdict

import matplotlib.pyplot as plt
import numpy as np
import ray
import torch

from distrl import cluster
from distrl.collective import CollectiveGroup
from studylog import record

cluster.init()
CORES = os.cpu_count()
ALGORITHMS = ["naive", "tree", "ring", "gloo"]


def median_time(fn, reps=repeats):
    """Seconds per call: one warm-up call, then the median of `reps` calls."""
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def side_by_side(calls, reps=repeats):
    """Seconds per call of each of `calls` (a dict of functions), taking turns: a slow
    spell of the machine or of the object store (its timings come in phases) then falls on
    all of them alike. Median of `reps` rounds after one warm-up round."""
    times = defaultdict(list)
    for _ in range(reps + 1):
        for name, fn in calls.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t[1:]) for name, t in times.items()}


def busbw(nbytes, n, seconds):
    return nbytes * 2 * (n - 1) / n / seconds / 1e9  # GB/s


# %% [markdown]
# ## A check first: every algorithm gives numpy's answer
#
# Lengths that $n$ does not divide, lengths shorter than $n$, integers and floats; every rank
# must end with the same result. (The test suite checks the same property on random cases
# with hypothesis, for $n$ from 1 to 5.)

# %%
rng = np.random.default_rng(0)
for n in (2, 3, 4):
    group = CollectiveGroup(n)
    for length in (1, 7, 1001):
        ints = [rng.integers(-1000, 1000, length) for _ in range(n)]
        floats = [rng.standard_normal(length).astype(np.float32) for _ in range(n)]
        for algorithm in ALGORITHMS:
            for op, reduce in (("sum", np.add), ("max", np.maximum), ("min", np.minimum)):
                group.set_buffers(ints)
                group.allreduce(op, algorithm)
                assert all(np.array_equal(b, reduce.reduce(np.stack(ints))) for b in group.buffers())
            group.set_buffers(floats)
            group.allreduce("mean", algorithm)
            assert all(np.allclose(b, np.mean(floats, axis=0), atol=1e-6) for b in group.buffers())
    group.stop()
print("naive, tree, ring and gloo agree with numpy: ok")

# %% [markdown]
# ## This machine's α, β, γ and memory bandwidth
#
# α: half the time to pass one tiny message from one participant to another (two actor
# tasks). β: the extra time per byte when the message is large (into the object store,
# out of it). γ: the time per byte of `np.add` on two large arrays. And the physical limit
# on one machine: copying memory with one core (`np.copyto`, destination already touched).

# %%
pair = CollectiveGroup(2)
big = 64 * 2**20


def message(nbytes):
    pair.set_buffers([np.zeros(nbytes // 4, np.float32)] * 2)

    def once():
        sent = pair.ranks[0].send.remote(0, nbytes // 4)
        ray.get(pair.ranks[1].receive.remote([(0, nbytes // 4)], sent))
    return median_time(once, max(repeats, 5))


alpha = message(4) / 2
beta = max(message(big) - 2 * alpha, 0.0) / big
a, b = np.ones(big // 4, np.float32), np.ones(big // 4, np.float32)
# A core's memory bandwidth ramps up over tens of calls here (clock boost), so these two
# take the median of many.
gamma = median_time(lambda: np.add(a, b, out=a), 30) / big
dst = np.empty_like(a)
memcpy_gbs = big / median_time(lambda: np.copyto(dst, b), 30) / 1e9
pair.stop()
print(f"α = {alpha * 1e6:.0f} µs   β = {beta * 1e9:.3f} ns/B ({1 / beta / 1e9:.2f} GB/s)   "
      f"γ = {gamma * 1e9:.3f} ns/B ({1 / gamma / 1e9:.2f} GB/s)   memcpy {memcpy_gbs:.2f} GB/s")


def model(algorithm, n, nbytes):
    """Predicted seconds for one all-reduce, from the formulas above."""
    if algorithm == "naive":
        return 2 * (n - 1) * (alpha + nbytes * beta) + (n - 1) * nbytes * gamma
    if algorithm == "tree":
        depth = math.ceil(math.log2(n))
        return 2 * depth * (alpha + nbytes * beta) + depth * nbytes * gamma
    return 2 * (n - 1) * alpha + 2 * (n - 1) / n * nbytes * beta + (n - 1) / n * nbytes * gamma


# %% [markdown]
# ## The measurement
#
# Each point: float32 buffers of the given size on every rank, the median of `repeats`
# all-reduces (sum), the algorithms taking turns. gloo runs inside the same actors on the same buffers
# (`torch.distributed`, initialised once per group), so the comparison is like for like.

# %%
measured = defaultdict(dict)  # (algorithm, n) -> {bytes: seconds}
for n in world_sizes:
    group = CollectiveGroup(n)
    for kb in sizes_kb:
        nbytes = kb * 1024
        group.set_buffers([np.ones(nbytes // 4, np.float32)] * n)
        calls = {a: (lambda a=a: group.allreduce("sum", a)) for a in ALGORITHMS}
        for algorithm, seconds in side_by_side(calls).items():
            measured[algorithm, n][nbytes] = seconds
    group.stop()

for (algorithm, n), points in measured.items():
    line = "  ".join(f"{nb // 1024:>7d}K {t * 1e3:8.2f} ms" for nb, t in points.items())
    print(f"{algorithm:5s} n={n}: {line}")

# %% [markdown]
# ## Pipelining the ring
#
# With `segments = k` each chunk is cut into $k$ pieces that go round the ring one after
# another, so a rank can reduce piece $j$ while its neighbour is already sending piece
# $j+1$: the textbook remedy when a rank would otherwise sit idle while its chunk is on the
# wire. Each piece is one more actor task per round.

# %%
pipelined = {}
for n in world_sizes:
    group = CollectiveGroup(n)
    group.set_buffers([np.ones(big // 4, np.float32)] * n)
    calls = {k: (lambda k=k: group.allreduce("sum", "ring", k)) for k in (1, 2, 4)}
    for segments, seconds in side_by_side(calls).items():
        pipelined[n, segments] = seconds
    group.stop()
for (n, segments), seconds in pipelined.items():
    print(f"ring, 64 MiB, n={n}, {segments} segment(s): {seconds * 1e3:6.1f} ms  busbw {busbw(big, n, seconds):.2f} GB/s")

# %% [markdown]
# ## Where the time goes: ring, 64 MiB, the largest n
#
# Ray records when each task runs and, within it, how long it spent deserializing its
# arguments (reading chunks out of the store), executing (the reduction, or the copy into
# the buffer) and storing its outputs (serializing the chunk it sends into the store). Per
# rank, what is left of the wall-clock time is waiting: for a neighbour's chunk, or for a core.

# %%
n = max(world_sizes)
group = CollectiveGroup(n)
group.set_buffers([np.ones(big // 4, np.float32)] * n)
group.allreduce("sum", "ring")
time.sleep(1.0)  # let earlier task events reach the timeline first
start = time.time()
group.allreduce("sum", "ring")
wall = time.time() - start
time.sleep(3.0)  # task events reach the timeline asynchronously
phases = {"task:deserialize_arguments": "read chunks (deserialize)", "task:execute": "reduce / copy (execute)",
          "task:store_outputs": "send chunks (serialize)"}
per_rank = defaultdict(lambda: defaultdict(float))
for event in ray.timeline():
    if event.get("name") in phases and event["ts"] / 1e6 >= start:
        per_rank[event["tid"]][phases[event["name"]]] += event["dur"] / 1e6
group.stop()
breakdown = {}
for i, (_, parts) in enumerate(sorted(per_rank.items())):
    parts["task overhead and waiting"] = max(wall - sum(parts.values()), 0.0)
    breakdown[f"rank {i}"] = dict(parts)
for rank, parts in breakdown.items():
    print(rank, ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in parts.items()))
print(f"wall {wall * 1e3:.1f} ms; {n} ranks share {CORES} cores")

# %% [markdown]
# Sending dominates. What does one send cost? A participant puts a 16 MiB chunk (64 MiB / 4)
# into the store: we time it, count the minor page faults it takes (`getrusage`), and time a
# plain copy of the same bytes into memory the process has already touched.

# %%
@ray.remote(num_cpus=cluster.ACTOR_CPUS)
def put_cost(nbytes, reps):
    import resource

    chunk = np.ones(nbytes // 4, np.float32)
    target = np.empty_like(chunk)
    times, faults = [], []
    for _ in range(reps):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        start = time.perf_counter()
        ref = ray.put(chunk)
        times.append(time.perf_counter() - start)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
        del ref
    copy = median_time(lambda: np.copyto(target, chunk), reps)
    return statistics.median(times), statistics.median(faults), copy


put_s, put_faults, copy_s = ray.get(put_cost.remote(big // 4, max(repeats, 5) * 3))
per_fault = (put_s - copy_s) / put_faults
print(f"ray.put of 16 MiB in an actor: {put_s * 1e3:.1f} ms ({big / 4 / put_s / 1e9:.2f} GB/s), "
      f"{put_faults:.0f} minor page faults; the same bytes copied: {copy_s * 1e3:.1f} ms "
      f"-> about {per_fault * 1e6:.2f} µs per fault, {1 - copy_s / put_s:.0%} of the put")

# %% [markdown]
# ## NCCL, when there are GPUs
#
# On GPUs the same question is answered by NCCL, whose ring runs over NVLink or PCIe. With
# at least two GPUs visible, the lab measures NCCL's all-reduce through `torch.distributed`
# in Ray actors, one GPU each; otherwise it says so and goes on.

# %%
gpus = torch.cuda.device_count()
nccl = {}
if gpus >= 2:
    @ray.remote(num_gpus=1)
    class NcclRank:
        def init(self, address, port, rank, size):
            import torch.distributed as dist
            dist.init_process_group("nccl", init_method=f"tcp://{address}:{port}", rank=rank, world_size=size)

        def time_allreduce(self, nbytes, reps):
            import torch.distributed as dist
            x = torch.ones(nbytes // 4, device="cuda")
            dist.all_reduce(x)
            torch.cuda.synchronize()
            times = []
            for _ in range(reps):
                start = time.perf_counter()
                dist.all_reduce(x)
                torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
            return statistics.median(times)

    ranks = [NcclRank.remote() for _ in range(2)]
    import socket
    with socket.socket() as s:
        s.bind(("", 0))
        port = s.getsockname()[1]
    ray.get([r.init.remote(ray.util.get_node_ip_address(), port, i, 2) for i, r in enumerate(ranks)])
    for kb in sizes_kb:
        nccl[kb * 1024] = max(ray.get([r.time_allreduce.remote(kb * 1024, repeats) for r in ranks]))
    print("NCCL, 2 GPUs:", "  ".join(f"{nb // 1024}K {busbw(nb, 2, t):.1f} GB/s" for nb, t in nccl.items()))
else:
    print(f"{gpus} GPU(s) visible: the NCCL measurement needs two, skipped")

# %% [markdown]
# ## Plots

# %%
colors = dict(zip(ALGORITHMS, ["tab:red", "tab:orange", "tab:blue", "tab:gray"]))
fig, axes = plt.subplots(2, len(world_sizes) + 1, figsize=(5 * (len(world_sizes) + 1), 7.5))
for col, n in enumerate(world_sizes):
    for algorithm in ALGORITHMS:
        sizes = np.array(sorted(measured[algorithm, n]))
        times = np.array([measured[algorithm, n][s] for s in sizes])
        axes[0, col].loglog(sizes, times * 1e3, marker="o", color=colors[algorithm], label=algorithm)
        if algorithm != "gloo":
            axes[0, col].loglog(sizes, [model(algorithm, n, s) * 1e3 for s in sizes], ls="--",
                                color=colors[algorithm], alpha=0.6, label=f"{algorithm}, α–β model")
        axes[1, col].semilogx(sizes, [busbw(s, n, t) for s, t in zip(sizes, times)], marker="o",
                              color=colors[algorithm], label=algorithm)
    if nccl and n == 2:
        axes[1, col].semilogx(list(nccl), [busbw(s, 2, t) for s, t in nccl.items()], marker="s", color="tab:green", label="NCCL (GPU)")
    axes[1, col].axhline(memcpy_gbs, color="black", ls=":", label=f"memcpy, one core ({memcpy_gbs:.1f} GB/s)")
    axes[0, col].set(title=f"all-reduce time, n = {n}", xlabel="bytes per rank", ylabel="ms")
    axes[1, col].set(title=f"bus bandwidth, n = {n}", xlabel="bytes per rank", ylabel="busbw (GB/s)")
    axes[0, col].legend(fontsize=6)
    axes[1, col].legend(fontsize=6)
ranks_shown = list(breakdown)
left = np.zeros(len(ranks_shown))
for part in ["read chunks (deserialize)", "reduce / copy (execute)", "send chunks (serialize)", "task overhead and waiting"]:
    values = np.array([breakdown[r].get(part, 0.0) * 1e3 for r in ranks_shown])
    axes[0, -1].barh(ranks_shown, values, left=left, label=part)
    left += values
axes[0, -1].set(title=f"ring, 64 MiB, n = {n}: where the time goes", xlabel="ms")
axes[0, -1].legend(fontsize=6)
ns = np.arange(2, 17)
for algorithm in ("naive", "tree", "ring"):
    axes[1, -1].plot(ns, [model(algorithm, k, big) * 1e3 for k in ns], color=colors[algorithm], label=algorithm)
axes[1, -1].set(title="the model at 64 MiB, as n grows (a core each)", xlabel="participants n", ylabel="predicted ms")
axes[1, -1].legend(fontsize=6)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The numbers

# %%
size64 = 65536 * 1024
small = 4 * 1024
n_big = max(world_sizes)
ring64 = busbw(size64, n_big, measured["ring", n_big][size64])
record(f"ring_busbw_64mb_n{n_big}", ring64, "GB/s", f"ring busbw, 64 MiB, n={n_big}")
for n in world_sizes:
    record(f"ring_vs_gloo_64mb_n{n}", measured["gloo", n][size64] / measured["ring", n][size64], "x",
           f"ring / gloo busbw, 64 MiB, n={n}")
record(f"ring_vs_memcpy_64mb_n{n_big}", ring64 / memcpy_gbs, "fraction", "ring busbw / one-core memcpy bandwidth")
best = min(("naive", "tree", "ring"), key=lambda a: measured[a, n_big][small])
record(f"small_latency_4kb_n{n_big}_us", measured[best, n_big][small] * 1e6, "µs",
       f"best of naive/tree/ring at 4 KiB, n={n_big} ({best})")
record("gloo_latency_4kb_n4_us" if n_big == 4 else f"gloo_latency_4kb_n{n_big}_us", measured["gloo", n_big][small] * 1e6, "µs",
       f"gloo at 4 KiB, n={n_big}")
cluster.shutdown()

# %% [markdown]
# ## What it means
#
# *Large messages.* The ring beats naive and tree once messages are large because no rank
# does more than $2\frac{n-1}{n}N$ of moving and $\frac{n-1}{n}N$ of adding, and it beats gloo
# at $n = 2$ and $n = 4$: gloo runs a ring too for large buffers, but over loopback TCP, a
# copy into the kernel and a copy out per hop, where the object store costs one copy in and
# a read in place.
#
# It stays far below the one-core memcpy line, and the two measurements above say why.
# First, every chunk a rank sends is a new object, and the store maps fresh pages for every
# new object: a 16 MiB put takes one minor page fault per 4 KiB page, about 4,100 of them,
# which costs several times the copy itself (this machine's shared memory has no huge pages).
# A rank sends $N$ bytes in all (its first chunk, then each partial sum), so sending runs at
# the put's rate, a fraction of memcpy's. Second, with $n = 4$ four ranks share two cores,
# so each rank's work also waits for a core, and the bus bandwidth, which counts one rank's
# bytes, halves again. Reaching 0.3 of memcpy would need a transport without a fresh
# mapping per message (buffers shared once and written in place, as NCCL does between GPUs
# of one node), or a core per rank.
#
# Pipelining does not pay here: no rank waits on a wire (a chunk is in shared memory the
# moment it is put), both cores are already busy, and every extra piece costs a task. It
# pays where a transfer takes real time, as between machines.
#
# *Small messages.* At 4 KiB the α term is all there is: a Ray actor task costs about a
# millisecond on this loaded two-core machine, and the ring needs $2(n-1)$ rounds of them,
# where naive and tree need two or three. Latency-bound collectives (small gradients, many
# steps) favour the fewest rounds; bandwidth-bound ones (large models) favour the ring.
#
# *On a cluster* β becomes the network's (about 1.2 GB/s for 10 Gb Ethernet, 12–50 GB/s for
# InfiniBand), and with a core per rank the ring's $2\frac{n-1}{n}$ bytes per rank is what
# keeps the time flat as $n$ grows (the last panel). On GPUs NCCL runs the same ring over
# NVLink at hundreds of GB/s, and the host is no longer in the data path.
