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
#         compile_sizes: [256, 4096]
#         compile_update: true
#         contenders: [anakin, anakin_r2, sebulba, sebulba_sync, syncsamples, jax, jax_shipped]
#         repeats: 5
#         seeds: [0, 1, 2, 3, 4]
#         sizes: [1, 16, 256, 4096, 16384, 65536]
#         target: 450
#       quick:
#         cap_s: 30
#         compile_sizes: []
#         compile_update: false
#         contenders: [anakin, sebulba, sebulba_sync, syncsamples, jax]
#         repeats: 2
#         seeds: [0]
#         sizes: [1, 256]
#         target: 100
#     summary: Podracer's Anakin and Sebulba built on distrl, raced against gymnasium's vector
#       environments, distrl's SyncSamples and the paper's own stack (JAX, gymnax) on two CPU
#       cores, and Anakin's acting and training timed on an H200.
#     title: 'Podracer: Anakin and Sebulba'
# ---

# %% [markdown]
# # Podracer: Anakin and Sebulba
#
# **The question.** Podracer [@hessel2021] organises reinforcement learning around where
# the work runs. *Anakin* puts the environment, the acting and the learning in one compiled
# program on the accelerator, so nothing crosses between host and device; *Sebulba* keeps
# the environments on the host and splits the cores into actors and learners that never
# wait for each other. The paper reports Anakin at about 5 million steps per second on the
# free 8-core TPU of Colab. What does each shape remove, measured on two CPU cores, where
# there is no host–device boundary to remove, and what does Anakin's program do on a GPU?
#
# **The idea.** Anakin, with $N$ environments per replica and $T$ steps per update:
#
# $$
# \underbrace{a_t \sim \pi_\theta(\cdot \mid s_t),\quad s_{t+1} = f(s_t, a_t)}_{\text{one batched call each, for all } N \text{ environments}}
# \;\; (t = 0..T-1), \qquad
# \theta \leftarrow \theta - \alpha\, \mathrm{Adam}\Big(\mathrm{clip}\Big(\tfrac{1}{R} \textstyle\sum_{r=1}^{R} g_r\Big)\Big),
# $$
#
# where $f$ is the environment written in tensors (`distrl.envs.cartpole`) and $g_r$ the PPO
# gradient of replica $r$ on its share of a minibatch, averaged by an all-reduce (the
# paper's `pmean`). One step of $N$ environments costs a fixed overhead $a$ (Python and
# one dispatch per tensor operation) plus a per-environment cost $b$, so
#
# $$\text{steps/s}(N) = \frac{N}{a + bN} \;\longrightarrow\; \frac{1}{b} \quad (N \gg a/b):$$
#
# throughput grows with $N$ until the per-element work dominates, at $N \approx a/b$; past
# that, only a faster device raises it. Sebulba overlaps an actor's sampling time $t_a$
# with the learner's time $t_\ell$: synchronously an iteration takes $t_a + t_\ell$,
# overlapped $\max(t_a, t_\ell)$, so its speed-up is at most
# $(t_a + t_\ell)/\max(t_a, t_\ell) \le 2$, reached when the two are equal. The price is
# policy lag: a batch is learned on by parameters some versions newer than those that
# sampled it, which PPO's ratio $\pi_\theta / \pi_{\theta_\text{old}}$ accounts for.
#
# **The measurements.** Throughput against gymnasium's vector environments with the same
# network, timed in turns; a race to a mean return of 450 on CartPole-v1 (the
# policy-optimizers lab's rule) over 5 seeds against distrl's SyncSamples and a
# PureJaxRL-style PPO [@lu2022] in JAX [@bradbury2018] on gymnax's CartPole [@lange2022];
# Sebulba against itself made synchronous.

# %% tags=["parameters"]
sizes = [1, 16, 256, 4096, 16384, 65536]  # N, environments stepped together, for the throughput curves
compile_sizes = [256, 4096]  # N at which Anakin's acting program is also timed compiled (8 steps per call)
compile_update = True  # also compile a PPO minibatch update and time it
repeats = 5  # timed turns of every throughput contender at every N
seeds = [0, 1, 2, 3, 4]  # one race run of every contender per seed
target = 450  # mean return of the last `window` episodes that counts as solved
window = 20
cap_s = 120  # a race run that has not solved after this many seconds stops
contenders = ["anakin", "anakin_r2", "sebulba", "sebulba_sync", "syncsamples", "jax", "jax_shipped"]

# %%
import os
import tempfile

# torch.compile keeps what it compiled on disk; an empty cache makes every compile time
# printed here a cold one, as JAX's are (its cache lives in the process).
os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="podracer-inductor-")
# One core for each throughput contender. XLA sizes its CPU thread pool from the process's
# CPU affinity when its backend starts (gymnax's import starts it); XLA_FLAGS' thread
# options did not limit it (in a check outside this lab on its AMD host, a jitted unroll
# at N = 65,536 kept 1.9 cores busy with them and without them). So the driver holds
# one core through the imports, JAX's pool is born with one thread on that core, and then
# the driver, and the Ray processes it starts, get every core back.
all_cores = os.sched_getaffinity(0)
os.sched_setaffinity(0, {min(all_cores)})

import inspect
import json
from importlib.metadata import version
import statistics
import time
import warnings
from pathlib import Path

import flax
import flax.linen as fnn
import gymnasium as gym
import gymnax
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
import ray
import torch
from matplotlib.ticker import FuncFormatter
from torch.profiler import ProfilerActivity, profile

from distrl import cluster, tensor_rollout
from distrl.anakin_learner import AnakinConfig, AnakinLearner
from distrl.envs import cartpole
from distrl.losses import ppo_loss
from distrl.optimizers import SyncSamples
from distrl.optimizers.anakin import Anakin
from distrl.optimizers.sebulba import Sebulba
from distrl.policy import PolicyConfig
from distrl.rollout_worker import WorkerConfig
from distrl.tensor_rollout import TensorRollout, act, acting_tanh, linear_layers, mlp
from distrl.worker_set import WorkerSet
from studylog import record, record_environment, record_median

jax_platform = jax.devices()[0].platform
os.sched_setaffinity(0, all_cores)
with warnings.catch_warnings():
    # JAX warns at every fork; Ray's fork is followed at once by an exec of its daemons.
    warnings.filterwarnings("ignore", "os.fork", RuntimeWarning)
    cluster.init()
record_environment("ray", cluster.describe())  # where the actors ran: this machine or a cluster
torch.set_num_threads(1)  # the driver's torch: one core, as every in-process contender gets
print(f"torch {torch.__version__}, jax {jax.__version__} ({jax_platform}), flax {flax.__version__}, "
      f"optax {optax.__version__}, gymnax {version('gymnax')}, "
      f"gymnasium {gym.__version__}, ray {ray.__version__}")

# %% [markdown]
# ## Anakin in code
#
# The acting program is `TensorRollout.run`: one Python iteration per time step, each one
# call of the actor and one of the environment for all $N$ environments. `Anakin`'s learner
# then evaluates the critic on all $T \cdot N$ rows at once, computes GAE over the
# $[T, N]$ block and runs PPO's epochs; with $R > 1$ each minibatch's gradient goes through
# gloo's all-reduce before it is clipped and applied.

# %% code-fold=false
print(inspect.getsource(TensorRollout.run))
print(inspect.getsource(AnakinLearner.learn))

# %% [markdown]
# ## Checks
#
# - The tensor CartPole against gymnasium's CartPole-v1: every step of a 500-step episode
#   taken in float64 from gymnasium's own state, and the termination and truncation flags.
#   The test suite checks more (free-running trajectories, resets, float32).
# - Compiled against eager: 8 steps of the compiled acting program, from the same states and
#   random numbers, choose the same actions and reach the same states.

# %% code-fold=false
env = gym.make("CartPole-v1")
env.reset(seed=0)
states, gaps, flags_equal, t = [np.array(env.unwrapped.state)], [], True, 0
while True:
    action = int(states[-1][2] + 0.5 * states[-1][3] + 0.01 * states[-1][1] > 0)  # keeps the pole up
    _, _, terminated, truncated, _ = env.step(action)
    ours = cartpole.step(torch.tensor(states[-1][None]), torch.tensor([t]), torch.tensor([action]),
                         torch.zeros(1, 4, dtype=torch.float64))
    states.append(np.array(env.unwrapped.state))
    gaps.append(float(np.abs(ours.final_obs[0].numpy() - states[-1]).max()))
    flags_equal &= (bool(ours.terminated[0]), bool(ours.truncated[0])) == (terminated, truncated)
    t += 1
    if terminated or truncated:
        break
print(f"{t} steps, ended by {'truncation' if truncated else 'termination'}; largest gap {max(gaps):.1e}; "
      f"flags equal: {flags_equal}")
assert max(gaps) < 1e-12 and flags_equal

if compile_sizes:
    actor = linear_layers(AnakinLearner(AnakinConfig(num_envs=1)).policy.model.actor)
    # N = 64, a size not timed below, so its compiled kernels are not reused there.
    eager, compiled = (TensorRollout(actor, 64, seed=0, compile=c) for c in (False, True))
    eager_columns, compiled_columns = eager.run(8)[0], compiled.run(8)[0]
    compile_gap = float((compiled.state - eager.state).abs().max())
    same_actions = torch.equal(compiled_columns["actions"], eager_columns["actions"])
    print(f"compiled vs eager, 8 steps of N = 64: same actions {same_actions}, largest state gap {compile_gap:.1e}")
    assert same_actions and compile_gap < 1e-5

# %% [markdown]
# ## Throughput
#
# Environment steps per second with the policy in the loop, for each $N$. Every contender
# runs the same network (4–64–64–2 with tanh, the actor of distrl's `ActorCritic`) and
# samples its actions from it:
#
# | contender | environments | policy | loop |
# |---|---|---|---|
# | `anakin` | `distrl.envs.cartpole`, torch tensors | torch, `act` | `TensorRollout.run` (keeps the $[T, N]$ columns its learner needs) |
# | `anakin_compiled` | the same, 8 steps of actor and environment compiled into one call | torch | the same |
# | `gym_sync` | gymnasium `SyncVectorEnv`: $N$ CartPole objects, stepped one by one | torch, `act` | Python, per step |
# | `gym_async` | gymnasium `AsyncVectorEnv`: one process per environment ($N \le 16$) | torch, `act` | Python, per step |
# | `gym_vector` | gymnasium's own numpy-vectorised CartPole (its `vector_entry_point`) | torch, `act` | Python, per step |
# | `jax` | gymnax CartPole, `vmap` | flax, the same shapes | `lax.scan` over $T$ steps, jitted |
#
# Each contender gets one core (torch one thread, XLA one thread). Compilation is done
# before timing (its time is reported apart), and at each $N$ the contenders are timed one
# after another, `repeats` times, so that the machine's drift falls on all alike. Each
# figure is the median of the repeats, with the range.

# %%
def unroll_for(n: int) -> int:
    """Steps per timed run: about 65k environment steps, at least 8 and at most 512 steps."""
    return int(min(512, max(8, 65536 // n)))


def timed_ms(fn, repeats: int = 20) -> float:
    """Median ms of fn() over `repeats` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def torch_actor() -> list:
    policy = AnakinLearner(AnakinConfig(num_envs=1)).policy
    return linear_layers(policy.model.actor)


def anakin_timer(n: int, compile: bool = False):
    torch._dynamo.reset()  # so the first call compiles for this N, whatever was compiled before
    rollout = TensorRollout(torch_actor(), n, seed=0, compile=compile)
    steps = unroll_for(n)
    start = time.perf_counter()
    rollout.run(steps)  # warm-up; compiled: the compilation
    first = time.perf_counter() - start

    def timed() -> float:
        start = time.perf_counter()
        rollout.run(steps)
        return n * steps / (time.perf_counter() - start)
    return timed, first


def gymnasium_timer(n: int, mode: str):
    # Spawned, not forked: a fork copies none of JAX's threads but whatever locks they hold.
    options = {"vector_kwargs": {"context": "spawn"}} if mode == "async" else {}
    envs = gym.make_vec("CartPole-v1", num_envs=n, vectorization_mode=mode, **options)
    actor, generator = torch_actor(), torch.Generator().manual_seed(0)
    state = {"obs": envs.reset(seed=0)[0]}
    steps = unroll_for(n) if mode != "sync" else max(8, unroll_for(n) // 8)  # SyncVectorEnv is slow at large N

    @torch.inference_mode()
    def run(k: int) -> None:
        for _ in range(k):
            gumbel = torch.empty(n, 2).exponential_(generator=generator).log_().neg_()
            action, _ = act(actor, torch.from_numpy(state["obs"]), gumbel)
            state["obs"] = envs.step(action.numpy())[0]
    run(4)

    def timed() -> float:
        start = time.perf_counter()
        run(steps)
        return n * steps / (time.perf_counter() - start)
    return timed, envs


class MLP(fnn.Module):
    """distrl's MLP in flax: tanh hidden layers, orthogonal initialisation (√2, last `scale`)."""
    widths: tuple[int, ...]
    scale: float

    @fnn.compact
    def __call__(self, x):
        for i, width in enumerate(self.widths):
            last = i == len(self.widths) - 1
            x = fnn.Dense(width, kernel_init=fnn.initializers.orthogonal(self.scale if last else np.sqrt(2)),
                          bias_init=fnn.initializers.zeros)(x)
            x = x if last else jnp.tanh(x)
        return x


def jax_timer(n: int):
    env, env_params = gymnax.make("CartPole-v1")
    actor = MLP((64, 64, 2), 0.01)
    key = jax.random.PRNGKey(0)
    params = actor.init(key, jnp.zeros(4))
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, n), env_params)
    steps = unroll_for(n)

    @jax.jit
    def unroll(params, state, obs, key):
        def step(carry, _):
            state, obs, key = carry
            key, k_act, k_env = jax.random.split(key, 3)
            action = jax.random.categorical(k_act, actor.apply(params, obs))
            obs, state, reward, _, _, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(k_env, n), state, action, env_params)
            return (state, obs, key), reward
        (state, obs, key), rewards = jax.lax.scan(step, (state, obs, key), None, steps)
        return state, obs, key, rewards

    carry = [state, obs, key]
    start = time.perf_counter()
    jax.block_until_ready(unroll(params, *carry))
    first = time.perf_counter() - start

    def timed() -> float:
        start = time.perf_counter()
        out = jax.block_until_ready(unroll(params, *carry))
        carry[:] = out[:3]
        return n * steps / (time.perf_counter() - start)
    return timed, first


throughput: dict[tuple[str, int], list[float]] = {}
first_call_s: dict[tuple[str, int], float] = {}
cores_busy: dict[str, list[float]] = {}  # the driver's CPU time over wall time, per timed call
for n in sizes:
    timers, closers = {}, []
    timers["anakin"], first_call_s["anakin", n] = anakin_timer(n)
    if n in compile_sizes:
        timers["anakin_compiled"], first_call_s["anakin_compiled", n] = anakin_timer(n, compile=True)
    for mode, name in (("sync", "gym_sync"), ("async", "gym_async"), ("vector_entry_point", "gym_vector")):
        if mode == "sync" and n > 4096 or mode == "async" and n > 16:
            continue  # SyncVectorEnv past 4096 takes minutes; AsyncVectorEnv is a process per environment
        timers[name], envs = gymnasium_timer(n, mode)
        closers.append(envs)
    timers["jax"], first_call_s["jax", n] = jax_timer(n)
    names = list(timers)
    for turn in range(repeats):
        for name in names[turn % len(names):] + names[:turn % len(names)]:
            cpu, wall = time.process_time(), time.perf_counter()
            throughput.setdefault((name, n), []).append(timers[name]())
            cores_busy.setdefault(name, []).append((time.process_time() - cpu) / (time.perf_counter() - wall))
    for envs in closers:
        envs.close()
    print(f"N = {n:>6}: " + "  ".join(f"{name} {statistics.median(throughput[name, n]):>11,.0f}" for name in names))

# %%
contender_names = ["anakin", "anakin_compiled", "gym_sync", "gym_async", "gym_vector", "jax"]
print(f"{'steps/s, median [range]':<24}" + "".join(f"{f'N = {n}':>30}" for n in sizes))
for name in contender_names:
    cells = []
    for n in sizes:
        values = throughput.get((name, n))
        cells.append(f"{statistics.median(values):>12,.0f} [{min(values):,.0f}–{max(values):,.0f}]" if values else "—")
    print(f"{name:<24}" + "".join(f"{c:>30}" for c in cells))
for (name, n), seconds in first_call_s.items():
    if name != "anakin":
        print(f"{name} at N = {n}: first call (compilation included) {seconds:.2f} s")
# The one-core rule, checked: the driver's CPU time over wall time while each contender ran
# (gym_async's work is in its subprocesses, which this does not see).
print("cores busy in the driver, max over N and turns: "
      + ", ".join(f"{name} {max(cores_busy[name]):.2f}" for name in contender_names if name in cores_busy))
assert all(max(cores_busy[name]) < 1.3 for name in cores_busy), "an in-process contender used more than one core"


def fit(name: str) -> tuple[float, float]:
    """Least-squares a, b in seconds per step = a + b·N over the sizes measured."""
    ns = [n for n in sizes if (name, n) in throughput]
    per_step = [n / statistics.median(throughput[name, n]) for n in ns]
    b, a = np.polyfit(ns, per_step, 1, w=1 / np.array(per_step))  # relative error, so small N counts
    return a, b


fits = {name: fit(name) for name in ("anakin", "gym_vector", "jax")}
for name, (a, b) in fits.items():
    print(f"{name:<11} per-step overhead a = {a * 1e6:6.1f} µs, per-environment cost b = {b * 1e9:6.1f} ns, "
          f"saturation N ≈ a/b = {a / b:,.0f}, ceiling 1/b = {1 / b:,.0f} steps/s")

# %% [markdown]
# **Where a large batch's time goes.** The per-environment cost $b$ is the kernels' work.
# One eager acting call at the largest $N$ the compiled program is timed at, profiled by
# torch's profiler, gives each operation's share of the time. The actor's hidden layers are
# tanh, and `TensorRollout`'s actor computes a large batch's tanh on the CPU as
# $2\sigma(2x) - 1$ (`acting_tanh`: on the host where it was written, `torch.tanh` ran a
# generic kernel of MKL's vector math library, which picks its kernel by processor). The
# control is the same program with `torch.tanh` at every size (its switch,
# `TANH_BY_SIGMOID_FROM`, set above any batch), profiled too and timed in turns with it.

# %%
n_profiled = max(compile_sizes) if compile_sizes else max(sizes)
default_switch = tensor_rollout.TANH_BY_SIGMOID_FROM


def eager_acting(n: int, switch: float):
    """A timer of the eager acting program at N = n with the tanh switch at `switch`, and its profile."""
    tensor_rollout.TANH_BY_SIGMOID_FROM = switch
    rollout, steps = TensorRollout(torch_actor(), n, seed=0), unroll_for(n)
    rollout.run(steps)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        rollout.run(steps)
    events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in events)

    def timed() -> float:
        tensor_rollout.TANH_BY_SIGMOID_FROM = switch
        start = time.perf_counter()
        rollout.run(steps)
        return n * steps / (time.perf_counter() - start)
    return timed, [(e.key, e.self_cpu_time_total / total) for e in events[:5]]


tanh_variants = {"torch.tanh": float("inf"), "acting_tanh": default_switch}
tanh_steps: dict[str, list[float]] = {}
try:
    timers = {}
    for label, switch in tanh_variants.items():
        timers[label], shares = eager_acting(n_profiled, switch)
        print(f"N = {n_profiled:,}, eager, tanh by {label}: " + ", ".join(f"{k} {v:.0%}" for k, v in shares))
    for turn in range(repeats):
        for label in list(timers)[turn % 2:] + list(timers)[:turn % 2]:
            tanh_steps.setdefault(label, []).append(timers[label]())
finally:
    tensor_rollout.TANH_BY_SIGMOID_FROM = default_switch
hidden = torch.randn(n_profiled, 64)
tanh_us = {label: timed_ms(lambda fn=fn: fn(hidden), 200) * 1e3 for label, fn in (("torch.tanh", torch.tanh),
                                                                                   ("acting_tanh", acting_tanh))}
tanh_gap = float((acting_tanh(hidden) - torch.tanh(hidden)).abs().max())
print(f"one [{n_profiled:,}, 64] hidden layer: torch.tanh {tanh_us['torch.tanh']:.0f} µs, "
      f"acting_tanh {tanh_us['acting_tanh']:.0f} µs, largest difference {tanh_gap:.1e}")
print("eager acting steps/s, median of turns: "
      + ", ".join(f"tanh by {label} {statistics.median(v):,.0f}" for label, v in tanh_steps.items()))
assert tanh_gap < 2.5e-7

# %% [markdown]
# The shape of the paper's Figure 4a: throughput against the number of environments
# stepped together, log–log, with the fit $N/(a + bN)$ drawn through Anakin's,
# gymnasium-vector's and JAX's points.

# %% fig-cap="Environment steps per second (policy included) against N, on one core: median of the repeats, bars from the slowest to the fastest; dotted, the fit N/(a + bN)."
fig, axis = plt.subplots(figsize=(9, 5.5))
for k, name in enumerate(contender_names):
    ns = [n for n in sizes if (name, n) in throughput]
    if not ns:
        continue
    med = [statistics.median(throughput[name, n]) for n in ns]
    low = [med[i] - min(throughput[name, n]) for i, n in enumerate(ns)]
    high = [max(throughput[name, n]) - med[i] for i, n in enumerate(ns)]
    axis.errorbar(ns, med, yerr=[low, high], marker="o", color=f"C{k}", label=name, capsize=3)
    if name in fits:
        a, b = fits[name]
        grid = np.geomspace(min(sizes), max(sizes), 100)
        axis.plot(grid, grid / (a + b * grid), ":", color=f"C{k}", lw=1)
axis.set(xscale="log", yscale="log", xlabel="N, environments stepped together", ylabel="env steps per second")
axis.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:,.0f}"))
axis.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## On a GPU
#
# The same programs on CUDA, at batch sizes a CPU cannot reach: the acting program,
# `TensorRollout`, and the whole of Anakin's training, `AnakinLearner` with everything on
# the device (acting, the critic's pass, GAE, and PPO's 4 epochs of 4 minibatches on the
# $T \cdot N$ rows, $T = 32$). When this lab runs where torch sees a CUDA device, it
# measures there; on this machine it shows the figures `bench/anakin_gpu.py` measured on an
# H200 (the script is this cell's measurement, run with torch, numpy and gymnasium, without
# Ray; its JSON is committed beside it). Training throughput is env steps per second of
# whole rounds, acting and learning, split into the two below.
#
# The first call of that lease measured a learner that drew each epoch's minibatch
# permutation with numpy on the host and copied it to the device, as the CPU learner did.
# Its rows are kept as a control: the same program with one piece left on the host.

# %%
gpu_file = Path("bench/results/anakin_gpu_h200.json")
if torch.cuda.is_available():
    import subprocess
    import sys
    gpu = json.loads(subprocess.run([sys.executable, "bench/anakin_gpu.py"], check=True, capture_output=True, text=True,
                                    env={**os.environ, "PYTHONPATH": "src"}).stdout)
    print("measured here, on", gpu["device"])
else:
    gpu = json.loads(gpu_file.read_text())
    print(f"no CUDA device here: figures measured on {gpu['device']} (torch {gpu['torch']}) on {gpu['measured']}")


def by_size(rows: list[dict]) -> dict[int, dict[bool, dict]]:
    table: dict[int, dict[bool, dict]] = {}
    for row in rows:
        table.setdefault(row["num_envs"], {})[row["compiled"]] = row
    return table


def steps(row: dict | None) -> float:
    return row["median_steps_per_s"] if row else float("nan")


print(f"\nacting only, {gpu['unroll']} steps per timed call of TensorRollout.run")
print(f"{'N':>10} {'eager steps/s':>16} {'compiled steps/s':>17}")
for n, row in by_size(gpu["rows"]).items():
    print(f"{n:>10,} {steps(row.get(False)):>16,.0f} {steps(row.get(True)):>17,.0f}")
host = by_size(gpu.get("host_shuffle_training", {}).get("rows", []))
print(f"\ntraining, T = {gpu['training_unroll']}, 4 epochs x 4 minibatches: steps/s with eager and with compiled acting, "
      "ms per round (eager), and the host-shuffle control")
print(f"{'N':>10} {'steps/s':>14} {'compiled':>14} {'acting ms':>10} {'learning ms':>12} "
      f"{'host-shuffle steps/s':>21} {'learning ms':>12}")
for n, row in by_size(gpu["training"]).items():
    control = host.get(n, {}).get(False)
    print(f"{n:>10,} {steps(row[False]):>14,.0f} {steps(row.get(True)):>14,.0f} {row[False]['median_acting_s'] * 1e3:>10.1f} "
          f"{row[False]['median_learning_s'] * 1e3:>12.1f} {steps(control):>21,.0f} "
          f"{control['median_learning_s'] * 1e3 if control else float('nan'):>12.1f}")
gpu_best_row = max(gpu["rows"], key=lambda row: row["median_steps_per_s"])
gpu_train_row = max(gpu["training"], key=lambda row: row["median_steps_per_s"])
learned = gpu["learning"]
print(f"\nlearning check, N = {learned['num_envs']:,}, constant step size: "
      f"{'reached' if learned['reached'] else 'did not reach'} a last-20 mean of 450 after {learned['rounds']} rounds, "
      f"{learned['env_steps']:,} env steps, {learned['seconds']:.1f} s")
assert learned["reached"]

# %% [markdown]
# ## The race
#
# Every PPO contender runs one shared setting, so the times differ by the system alone:
# 32 environments × 32 steps per iteration (1,024 rows), 4 epochs of 4 minibatches of 256,
# Adam 2.5·10⁻⁴ annealed linearly over 1M steps (ε 10⁻⁵), clip 0.2, clipped value loss,
# entropy 0.01, gradient norm 0.5, GAE(0.99, 0.95), bootstrapping from $V$ where the time
# limit truncates. The stopping rule is checked after every iteration.
#
# | contender | shape | processes |
# |---|---|---|
# | `anakin` | one program: tensor CartPole, acting and learning in the driver | 1 |
# | `anakin_r2` | two replicas of 16 environments, gradients averaged by gloo | 2 |
# | `sebulba` | an actor process with 32 gymnasium environments, the learner in the driver, a queue of one | 2 |
# | `sebulba_sync` | the same, the actor waiting for each new version (no overlap) | 2 |
# | `syncsamples` | distrl SyncSamples, 2 workers × 16 environments, sampling ahead | 3 |
# | `jax` | PureJaxRL-style PPO, one jitted iteration (gymnax CartPole, `vmap`, `lax.scan`) | 1 |
# | `jax_shipped` | the same code at PureJaxRL's CartPole setting: 4 environments × 128 steps, annealed over 500k | 1 |
#
# The annealing runs over 1M steps, not CleanRL's and PureJaxRL's 500k: at 1,024 rows per
# iteration a run needs a few hundred thousand steps (the race table), and a first full
# run annealed over 500k left one Sebulba seed and one synchronous one below 450 when the
# step size reached zero.
# Torch's learners use one thread and JAX one core (see the imports); the clock starts
# when every actor is up. The JAX runs'
# clocks include building the program and compiling it (the first iteration); torch's
# contenders run eagerly and compile nothing.

# %%
SHARED = dict(lr=2.5e-4, anneal_steps=1_000_000, epochs=4, minibatch=256, envs=32, steps=32)


def solved(returns: list[float]) -> bool:
    return len(returns) >= window and float(np.mean(returns[-window:])) >= target


def make_torch(kind: str, seed: int):
    policy = PolicyConfig(lr=SHARED["lr"])
    ppo = dict(epochs=SHARED["epochs"], anneal_steps=SHARED["anneal_steps"])
    if kind in ("anakin", "anakin_r2"):
        replicas = 2 if kind == "anakin_r2" else 1
        config = AnakinConfig(num_envs=SHARED["envs"] // replicas, unroll=SHARED["steps"], minibatches=4, seed=seed,
                              policy=policy, **ppo)
        return Anakin(config, replicas=replicas)
    loss = ppo_loss(clip_value=0.2)
    if kind in ("sebulba", "sebulba_sync"):
        workers = WorkerConfig(num_envs=SHARED["envs"], fragment_length=SHARED["steps"], seed=seed, policy=policy)
        return Sebulba(workers, 1, loss, minibatch_size=SHARED["minibatch"], synchronous=kind == "sebulba_sync",
                       seed=seed, num_cpus_per_worker=1, **ppo)
    if kind == "syncsamples":
        workers = WorkerConfig(num_envs=SHARED["envs"] // 2, fragment_length=SHARED["steps"], seed=seed, policy=policy)
        return SyncSamples(WorkerSet(workers, 2, loss), minibatch_size=SHARED["minibatch"], sample_ahead=True,
                           seed=seed, **ppo)
    raise ValueError(kind)


def ready(opt) -> None:
    """Wait until every process the optimizer uses is up (and, for replicas, gloo is joined)."""
    if isinstance(opt, Anakin):
        opt.replica_weights()
    else:
        ray.get([w.__ray_ready__.remote() for w in opt.workers.remotes])


def run_torch(kind: str, seed: int) -> dict:
    opt = make_torch(kind, seed)
    ready(opt)
    curve, start = [], time.perf_counter()
    try:
        while True:
            opt.step()
            wall, s = time.perf_counter() - start, opt.stats
            curve.append((wall, s.env_steps, s.mean_return(window)))
            if solved(s.returns) or wall > cap_s:
                break
        extra = {}
        if kind == "anakin_r2":
            first, second = opt.replica_weights()
            extra["identical"] = bool(np.array_equal(first, second))
        if isinstance(opt, Sebulba):
            extra["lags"] = list(opt.lags)
    finally:
        opt.stop()
    return dict(time_s=wall, steps=s.env_steps, reached=solved(s.returns), curve=curve, updates=s.updates,
                parts={"waiting for samples": s.sample_s, "learning": s.learn_s, "moving weights": s.sync_s}, **extra)

# %% [markdown]
# **The JAX reference**, written afresh in the style of PureJaxRL's single-file PPO: the
# environments are `vmap`ped gymnax CartPoles, an iteration (the $T$-step rollout under
# `lax.scan`, GAE as a reverse `scan`, the epochs and minibatches as nested `scan`s) is one
# jitted function, Adam comes from optax with the gradient clipped to norm 0.5. PureJaxRL
# jits the whole training loop; here the driver calls one jitted iteration at a time, so
# the stopping rule can be checked between iterations like every other contender's (one
# call per iteration costs microseconds). One adaptation, as for CleanRL in the
# policy-optimizers lab: a truncated step bootstraps from the value of its final
# observation, so every contender estimates the same advantages.

# %%
def make_jax_ppo(num_envs: int, num_steps: int, epochs=4, minibatches=4, lr=2.5e-4, total_steps=500_000, gamma=0.99,
                 lam=0.95, clip=0.2, ent_coef=0.01, vf_coef=0.5, max_grad_norm=0.5):
    env, env_params = gymnax.make("CartPole-v1")
    actor, critic = MLP((64, 64, 2), 0.01), MLP((64, 64, 1), 1.0)
    rows, iterations = num_envs * num_steps, total_steps // (num_envs * num_steps)

    def schedule(count):  # linear annealing over the iterations
        return lr * (1.0 - (count // (epochs * minibatches)) / iterations)

    tx = optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.adam(schedule, eps=1e-5))

    def init(seed: int):
        key, k_actor, k_critic, k_env = jax.random.split(jax.random.PRNGKey(seed), 4)
        params = {"actor": actor.init(k_actor, jnp.zeros(4)), "critic": critic.init(k_critic, jnp.zeros(4))}
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_env, num_envs), env_params)
        return params, tx.init(params), state, obs, jnp.zeros(num_envs), key

    def forward(params, obs):
        return actor.apply(params["actor"], obs), critic.apply(params["critic"], obs).squeeze(-1)

    def loss_fn(params, mb):
        logits, values = forward(params, mb["obs"])
        logp_all = jax.nn.log_softmax(logits)
        logp = jnp.take_along_axis(logp_all, mb["actions"][:, None], -1).squeeze(-1)
        entropy = -(jnp.exp(logp_all) * logp_all).sum(-1).mean()
        adv = (mb["advantages"] - mb["advantages"].mean()) / (mb["advantages"].std() + 1e-8)
        ratio = jnp.exp(logp - mb["logp"])
        surrogate = jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - clip, 1 + clip) * adv).mean()
        clipped = mb["values"] + jnp.clip(values - mb["values"], -clip, clip)
        value_loss = 0.5 * jnp.maximum((values - mb["targets"]) ** 2, (clipped - mb["targets"]) ** 2).mean()
        return -surrogate + vf_coef * value_loss - ent_coef * entropy

    def env_step(carry, _):
        params, opt_state, state, obs, running, key = carry
        key, k_act, k_env = jax.random.split(key, 3)
        logits, value = forward(params, obs)
        action = jax.random.categorical(k_act, logits)
        logp = jnp.take_along_axis(jax.nn.log_softmax(logits), action[:, None], -1).squeeze(-1)
        next_obs, state, reward, terminated, truncated, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(k_env, num_envs), state, action, env_params)
        done = terminated | truncated
        episode_return = running + reward
        step = dict(obs=obs, actions=action, logp=logp, values=value, rewards=reward, terminated=terminated,
                    done=done, final_obs=info["final_observation"], episode_return=episode_return)
        return (params, opt_state, state, next_obs, jnp.where(done, 0.0, episode_return), key), step

    @jax.jit
    def iteration(carry):
        carry, traj = jax.lax.scan(env_step, carry, None, num_steps)
        params, opt_state, state, obs, running, key = carry
        next_values = forward(params, traj["final_obs"])[1]

        def gae_step(following, t):
            delta = t["rewards"] + gamma * (1.0 - t["terminated"]) * t["next_values"] - t["values"]
            advantage = delta + gamma * lam * (1.0 - t["done"]) * following
            return advantage, advantage

        _, advantages = jax.lax.scan(gae_step, jnp.zeros(num_envs), {**traj, "next_values": next_values}, reverse=True)
        data = dict(obs=traj["obs"], actions=traj["actions"], logp=traj["logp"], values=traj["values"],
                    advantages=advantages, targets=advantages + traj["values"])
        data = jax.tree.map(lambda x: x.reshape((rows,) + x.shape[2:]), data)

        def epoch(carry, _):
            params, opt_state, key = carry
            key, k_perm = jax.random.split(key)
            order = jax.random.permutation(k_perm, rows)
            shuffled = jax.tree.map(lambda x: x[order].reshape((minibatches, -1) + x.shape[1:]), data)

            def minibatch(carry, mb):
                params, opt_state = carry
                updates, opt_state = tx.update(jax.grad(loss_fn)(params, mb), opt_state, params)
                return (optax.apply_updates(params, updates), opt_state), None

            (params, opt_state), _ = jax.lax.scan(minibatch, (params, opt_state), shuffled)
            return (params, opt_state, key), None

        (params, opt_state, key), _ = jax.lax.scan(epoch, (params, opt_state, key), None, epochs)
        return (params, opt_state, state, obs, running, key), traj["episode_return"], traj["done"]

    return init, iteration


def run_jax(seed: int, num_envs: int, num_steps: int, anneal_steps: int) -> dict:
    start = time.perf_counter()
    init, iteration = make_jax_ppo(num_envs, num_steps, total_steps=anneal_steps)
    carry = init(seed)
    returns, steps, curve, compile_s = [], 0, [], None
    while True:
        carry, episode_returns, done = iteration(carry)
        returns.extend(np.asarray(episode_returns)[np.asarray(done)].tolist())  # waits for the iteration
        compile_s = compile_s if compile_s is not None else time.perf_counter() - start
        steps += num_envs * num_steps
        wall = time.perf_counter() - start
        curve.append((wall, steps, float(np.mean(returns[-window:])) if returns else float("nan")))
        if solved(returns) or wall > cap_s:
            break
    return dict(time_s=wall, steps=steps, reached=solved(returns), curve=curve, parts={}, first_iteration_s=compile_s,
                iterations=len(curve))

# %% [markdown]
# Seeds run in turn; within a seed every contender runs once, the order rotating from seed
# to seed.

# %% code-fold=false timeout_s=5400
runners = {kind: (lambda seed, kind=kind: run_torch(kind, seed))
           for kind in ("anakin", "anakin_r2", "sebulba", "sebulba_sync", "syncsamples")}
runners |= {"jax": lambda seed: run_jax(seed, SHARED["envs"], SHARED["steps"], SHARED["anneal_steps"]),
            "jax_shipped": lambda seed: run_jax(seed, 4, 128, 500_000)}
order = [name for name in contenders if name in runners]
runs = {}
for turn, seed in enumerate(seeds):
    for name in order[turn % len(order):] + order[:turn % len(order)]:
        runs[name, seed] = r = runners[name](seed)
        print(f"seed {seed} {name:<13} {'solved' if r['reached'] else 'NOT solved'} in {r['time_s']:6.1f} s, "
              f"{r['steps']:>7,} env steps")

# %%
def values_of(name: str, key: str) -> list[float]:
    """One value per seed; a seed that did not solve counts as infinitely slow."""
    return [runs[name, s][key] if runs[name, s]["reached"] else float("inf") for s in seeds]


def median(name: str, key: str) -> float:
    return statistics.median(values_of(name, key))


def rate(name: str) -> float:
    """Median env steps per second of wall time over the seeds (every run, solved or not)."""
    return statistics.median(runs[name, s]["steps"] / runs[name, s]["time_s"] for s in seeds)


print(f"median [min–max] over {len(seeds)} seeds")
print(f"{'contender':<13} {'solved':>6} {'time (s)':>22} {'env steps':>26} {'steps/s':>9}")
for name in order:
    t, n = values_of(name, "time_s"), values_of(name, "steps")
    solved_count = sum(runs[name, s]["reached"] for s in seeds)
    print(f"{name:<13} {solved_count:>4}/{len(seeds)} {statistics.median(t):>7.1f} [{min(t):>5.1f}–{max(t):>5.1f}] "
          f"{statistics.median(n):>9,.0f} [{min(n):>7,.0f}–{max(n):>7,.0f}] {rate(name):>9,.0f}")
for name in ("jax", "jax_shipped"):
    if any(k[0] == name for k in runs):
        first = [runs[name, s]["first_iteration_s"] for s in seeds]
        rest = [(runs[name, s]["time_s"] - runs[name, s]["first_iteration_s"]) / max(1, runs[name, s]["iterations"] - 1)
                for s in seeds]
        print(f"{name}: first iteration (build and compile) {statistics.median(first):.2f} s "
              f"[{min(first):.2f}–{max(first):.2f}], then {statistics.median(rest) * 1e3:.1f} ms per iteration")
for name in ("anakin", "anakin_r2", "syncsamples", "sebulba"):
    if any(k[0] == name for k in runs):
        per = [runs[name, s]["time_s"] / (runs[name, s]["updates"] / 16) for s in seeds]
        print(f"{name}: {statistics.median(per) * 1e3:.1f} ms per iteration (16 updates)")

# %% [markdown]
# ## Where an iteration's time goes
#
# The same iteration of `anakin` (32 × 32 rows, 16 updates) split into its acting half
# (`sample`: the rollout, the critic pass, GAE) and its learning half; and, inside each
# replica of `anakin_r2`, one minibatch update split into the gradient on its 128-row share,
# the gloo all-reduce of the 9k-number gradient, and clipping and applying the mean.
# Medians of 20 repetitions.

# %%
learner = AnakinLearner(AnakinConfig(num_envs=SHARED["envs"], unroll=SHARED["steps"], minibatches=4))
batch, _ = learner.sample()
acting_ms, learning_ms = timed_ms(learner.sample), timed_ms(lambda: learner.learn(batch), 5)
print(f"anakin, one iteration: acting {acting_ms:.1f} ms, learning {learning_ms:.1f} ms "
      f"({learning_ms / 16:.2f} ms per minibatch update)")

# %% [markdown]
# **What compiling the update would buy.** JAX compiles the 16 updates into its one program;
# torch can compile an update too, once it is a pure function of the parameters. Below,
# distrl's PPO minibatch update written that way: `ppo_loss`'s objective on the actor and
# critic layers (`mlp`), its gradient by `torch.func.grad`, the global-norm clip, and Adam
# as torch applies it. It is checked first: its objective equals distrl's loss on the same
# minibatch, and one update from the same state gives the parameters `Policy.learn_on_batch`
# gives. Then `torch.compile` turns it into one program, from an empty cache, and the
# compiled update is timed against the eager one above.

# %%
def ppo_objective(params: list, mb: dict, clip=0.2, vf_coef=0.5, ent_coef=0.01) -> torch.Tensor:
    """distrl's ppo_loss(clip_value=0.2), as a function of the 12 tensors (actor's layers, then the critic's)."""
    layers = list(zip(params[0::2], params[1::2]))
    logp_all = torch.log_softmax(mlp(layers[:3], mb["obs"]), -1)
    values = mlp(layers[3:], mb["obs"]).squeeze(-1)
    logp = logp_all.gather(-1, mb["actions"].unsqueeze(-1)).squeeze(-1)
    entropy = -(logp_all.exp() * logp_all).sum(-1).mean()
    adv = (mb["advantages"] - mb["advantages"].mean()) / (mb["advantages"].std() + 1e-8)
    ratio = (logp - mb["logp"]).exp()
    surrogate = torch.min(ratio * adv, ratio.clamp(1 - clip, 1 + clip) * adv).mean()
    clipped = mb["values"] + (values - mb["values"]).clamp(-clip, clip)
    value_loss = 0.5 * torch.max((values - mb["value_targets"]) ** 2, (clipped - mb["value_targets"]) ** 2).mean()
    return -surrogate + vf_coef * value_loss - ent_coef * entropy


def ppo_update(params: list, moments: list, step: torch.Tensor, mb: dict, lr: float, max_norm=0.5, b1=0.9, b2=0.999,
               eps=1e-5) -> tuple[list, list, torch.Tensor]:
    """One minibatch update: g = ∇L, g ← g·min(1, c/‖g‖), then Adam (torch's bias-corrected form)."""
    grads = torch.func.grad(ppo_objective)(params, mb)
    scale = torch.clamp(max_norm / (torch.sqrt(sum((g * g).sum() for g in grads)) + 1e-6), max=1.0)
    step = step + 1
    new_params, new_moments = [], []
    for p, g, (m, v) in zip(params, grads, moments):
        m, v = b1 * m + (1 - b1) * g * scale, b2 * v + (1 - b2) * (g * scale) ** 2
        new_params.append(p - lr * (m / (1 - b1 ** step)) / ((v / (1 - b2 ** step)).sqrt() + eps))
        new_moments.append((m, v))
    return new_params, new_moments, step


fresh = AnakinLearner(AnakinConfig(num_envs=SHARED["envs"], unroll=SHARED["steps"], minibatches=4))
minibatch = next(iter(fresh.sample()[0].minibatches(SHARED["minibatch"], np.random.default_rng(0))))
mb = {k: torch.as_tensor(minibatch[k]) for k in ("obs", "actions", "logp", "values", "advantages", "value_targets")}
model = fresh.policy.model
params = [t.detach().clone() for layer in (*linear_layers(model.actor), *linear_layers(model.critic)) for t in layer]
moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]
lr = fresh.policy.config.lr
with torch.no_grad():
    loss_gap = abs(float(ppo_objective(params, mb)) - float(fresh.policy.loss(fresh.policy, minibatch)[0]))
fresh.policy.learn_on_batch(minibatch)
after = [t.detach() for layer in (*linear_layers(model.actor), *linear_layers(model.critic)) for t in layer]
update_gap = max(float((a - b).abs().max()) for a, b in zip(ppo_update(params, moments, torch.zeros(()), mb, lr)[0], after))
print(f"functional PPO update against distrl's: objective gap {loss_gap:.1e}, parameter gap after one update {update_gap:.1e}")
assert loss_gap < 1e-5 and update_gap < 1e-6

def cpp_compiler_s() -> float:
    """Seconds the C++ compiler has run for torch.compile in this process, summed over the
    threads that compile kernels side by side (torch's own compile metrics)."""
    names, seconds = torch._dynamo.utils.compile_times(repr="csv", aggregate=True)
    return float(dict(zip(names, seconds)).get("compile_file", 0.0))


def compiled_kernels() -> int:
    return len(list(Path(os.environ["TORCHINDUCTOR_CACHE_DIR"]).rglob("*.so")))


if compile_update:
    compiled_update = torch.compile(ppo_update, dynamic=False)
    kernels_before, cpp_before, start = compiled_kernels(), cpp_compiler_s(), time.perf_counter()
    compiled_update(params, moments, torch.zeros(()), mb, lr)
    update_compile_s = time.perf_counter() - start
    update_kernels, update_cpp_s = compiled_kernels() - kernels_before, cpp_compiler_s() - cpp_before
    assert update_kernels > 0 and update_cpp_s > 0, "no C++ compilation seen in this process"
    compiled_update_ms = timed_ms(lambda: compiled_update(params, moments, torch.zeros(()), mb, lr), 200)
    eager_update_ms = timed_ms(lambda: fresh.policy.learn_on_batch(minibatch), 200)  # the same minibatch, eagerly
    pays_after = update_compile_s / (learning_ms - 16 * compiled_update_ms) * 1e3  # iterations of the race's learn()
    race_iterations = statistics.median(runs["anakin", s]["steps"] / 1024 for s in seeds)
    print(f"compiled update: {compiled_update_ms:.2f} ms (eager Policy update on the same minibatch {eager_update_ms:.2f} ms), "
          f"first call {update_compile_s:.1f} s; the compilation pays for itself after {pays_after:,.0f} iterations; "
          f"anakin's race runs took {race_iterations:,.0f} (median)")
    print(f"the first call built {update_kernels} C++ kernels: {update_cpp_s:.1f} s of C++ compilation, summed over "
          f"the threads that compile side by side, in its {update_compile_s:.1f} s")


def minibatch_parts(replica) -> dict[str, float]:
    """Inside a replica: one minibatch update's three parts, in ms."""
    batch, _ = replica.sample()
    share = batch.take(np.arange(len(batch) // 4))
    grads, _ = replica.policy.compute_unclipped_gradients(share)
    return {"gradient": timed_ms(lambda: replica.policy.compute_unclipped_gradients(share)),
            "all-reduce": timed_ms(lambda: replica.allreduce(grads.clone())),
            "clip and apply": timed_ms(lambda: replica.policy.apply_gradients(replica.policy.clip_gradients(grads)))}


if "anakin_r2" in order:
    pair = Anakin(AnakinConfig(num_envs=SHARED["envs"] // 2, unroll=SHARED["steps"], minibatches=4), replicas=2)
    try:
        for rank, parts in enumerate(ray.get([r.__ray_call__.remote(minibatch_parts) for r in pair.learners])):
            print(f"anakin_r2, replica {rank}, one minibatch update: " + ", ".join(f"{k} {v:.2f} ms" for k, v in parts.items()))
    finally:
        pair.stop()

# %% [markdown]
# ## Learning curves

# %% fig-cap="Mean return of the last 20 episodes against wall time (left) and environment steps (right): median across seeds, band from the slowest to the fastest seed."
fig, (by_time, by_steps) = plt.subplots(1, 2, figsize=(14, 4.8))
for k, name in enumerate(order):
    for axis, column in ((by_time, 0), (by_steps, 1)):
        end = max(runs[name, s]["curve"][-1][column] for s in seeds)
        grid = np.linspace(0, end, 200)
        curves = np.array([np.interp(grid, [c[column] for c in runs[name, s]["curve"]],
                                     np.nan_to_num([c[2] for c in runs[name, s]["curve"]])) for s in seeds])
        axis.plot(grid, np.median(curves, 0), color=f"C{k}", label=name)
        axis.fill_between(grid, curves.min(0), curves.max(0), color=f"C{k}", alpha=0.12)
for axis, label in ((by_time, "wall time (s)"), (by_steps, "env steps")):
    axis.axhline(target, color="grey", ls=":", lw=1)
    axis.set(xlabel=label, ylabel=f"mean return, last {window} episodes")
by_steps.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1000:.0f}k"))
by_time.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Sebulba: overlap and lag
#
# `sebulba` and `sebulba_sync` differ in one thing: whether the actor samples the next batch
# while the learner learns on this one. Their throughput ratio is what overlapping buys;
# the synchronous run's two phases are the $t_a$ (the learner waiting for a batch) and
# $t_\ell$ (learning) of the model above. The lag is counted by the learner for every batch:
# its own version minus the version that sampled it.

# %% fig-cap="Sebulba's policy lag: how many parameter versions behind the learner each batch was, all seeds together; synchronous, every batch is 0."
if {"sebulba", "sebulba_sync"} <= set(order):
    throughput_ratio = rate("sebulba") / rate("sebulba_sync")
    per_iteration = {part: statistics.median(runs["sebulba_sync", s]["parts"][part] / (runs["sebulba_sync", s]["updates"] / 16)
                                             for s in seeds) for part in ("waiting for samples", "learning")}
    t_a, t_l = per_iteration["waiting for samples"], per_iteration["learning"]
    lags = np.concatenate([runs["sebulba", s]["lags"] for s in seeds])
    print(f"sebulba / sebulba_sync, env steps per second: {throughput_ratio:.2f} "
          f"(model bound (t_a + t_l) / max = {(t_a + t_l) / max(t_a, t_l):.2f})")
    print(f"synchronous: actor t_a = {t_a * 1e3:.0f} ms, learner t_l = {t_l * 1e3:.0f} ms per iteration")
    print(f"lag: mean {lags.mean():.2f}, " + ", ".join(f"{k}: {c}" for k, c in enumerate(np.bincount(lags)) if c))
    fig, axis = plt.subplots(figsize=(6, 3.2))
    counts = np.bincount(lags)
    axis.bar(range(len(counts)), counts, color="C2")
    axis.set(xlabel="lag (versions)", ylabel="batches", xticks=range(len(counts)))
    fig.tight_layout()
    plt.show()

# %%
n_mid = 256 if 256 in sizes else sizes[-1]
best = "anakin_compiled" if ("anakin_compiled", n_mid) in throughput else "anakin"  # the quick profile compiles nothing
how = "compiled, 8 steps per call" if best == "anakin_compiled" else "eager"
record_median(f"anakin_steps_per_s_n{n_mid}", throughput[best, n_mid], "steps/s",
              f"Anakin's acting program (TensorRollout, {how}), N = {n_mid}, one core, policy included")
record(f"anakin_vs_gymnasium_steps_n{n_mid}",
       statistics.median(throughput[best, n_mid]) / statistics.median(throughput["gym_sync", n_mid]), "x",
       f"Anakin ({how}) / gymnasium SyncVectorEnv, same network, N = {n_mid}, median of {repeats} turns (higher is better)")
vector_ratio = {name: statistics.median(throughput[name, n_mid]) / statistics.median(throughput["gym_vector", n_mid])
                for name in {best, "anakin"}}
record(f"anakin_vs_gymnasium_vector_n{n_mid}", vector_ratio[best], "x",
       f"Anakin ({how}) / gymnasium's numpy-vectorised CartPole, same network, N = {n_mid} (higher is better)")
if best != "anakin":
    record(f"anakin_eager_vs_gymnasium_vector_n{n_mid}", vector_ratio["anakin"], "x",
           f"Anakin (eager) / gymnasium's numpy-vectorised CartPole, same network, N = {n_mid} (higher is better)")
for n in sorted({4096, max(sizes)} & set(sizes)):
    program = "anakin_compiled" if ("anakin_compiled", n) in throughput else "anakin"
    label = "compiled, 8 steps per call" if program == "anakin_compiled" else "eager"
    record(f"anakin_vs_jax_steps_n{n}", statistics.median(throughput[program, n]) / statistics.median(throughput["jax", n]),
           "x", f"Anakin (torch, {label}) / JAX with gymnax and lax.scan, N = {n}, one core each (higher is better)")
    if program != "anakin":
        record(f"anakin_eager_vs_jax_steps_n{n}",
               statistics.median(throughput["anakin", n]) / statistics.median(throughput["jax", n]), "x",
               f"Anakin (torch, eager) / JAX with gymnax and lax.scan, N = {n}, one core each (higher is better)")
record(f"acting_tanh_speedup_n{n_profiled}",
       statistics.median(tanh_steps["acting_tanh"]) / statistics.median(tanh_steps["torch.tanh"]), "x",
       f"eager acting steps/s at N = {n_profiled}, tanh as 2σ(2x) − 1 / as torch.tanh (higher is better)")
if compile_update:
    record("compiled_update_speedup", eager_update_ms / compiled_update_ms, "x",
           "eager Policy PPO minibatch update / the same update compiled, one 256-row minibatch (higher is better)")
    record("compiled_update_compile_s", update_compile_s, "s", "first call of the compiled PPO update, empty cache")
    record("compiled_update_cpp_s", update_cpp_s, "s",
           f"C++ compilation in that first call, {update_kernels} kernels, summed over the threads compiling them")
record("anakin_gpu_steps_per_s", gpu_best_row["median_steps_per_s"], "steps/s",
       f"acting only: TensorRollout on {gpu['device']}, N = {gpu_best_row['num_envs']:,}, "
       f"{'compiled' if gpu_best_row['compiled'] else 'eager'}, measured {gpu['measured']}")
record("anakin_gpu_training_steps_per_s", gpu_train_row["median_steps_per_s"], "steps/s",
       f"whole Anakin PPO rounds (acting, GAE, 4x4 minibatch updates) on {gpu['device']}, "
       f"N = {gpu_train_row['num_envs']:,}, T = {gpu['training_unroll']}, measured {gpu['measured']}",
       spread=(min(gpu_train_row["steps_per_s"]), max(gpu_train_row["steps_per_s"])))
if host:
    largest = max(host)
    record("anakin_gpu_device_vs_host_shuffle", steps(by_size(gpu["training"])[largest][False]) / steps(host[largest][False]),
           "x", f"Anakin training on {gpu['device']}, N = {largest:,}, eager: minibatch permutation drawn on the device "
           "/ drawn by numpy on the host (higher is better)")
record_median(f"anakin_ppo_time_to_{target}_s", values_of("anakin", "time_s"), "s",
              f"Anakin PPO, one process, median over {len(seeds)} seeds")
record(f"anakin_vs_syncsamples_time_to_{target}", median("anakin", "time_s") / median("syncsamples", "time_s"), "x",
       "Anakin PPO / distrl SyncSamples PPO (2 workers, sampling ahead), same settings, median time (lower is better)")
if "anakin_r2" in order:
    record(f"anakin_r2_vs_r1_time_to_{target}", median("anakin_r2", "time_s") / median("anakin", "time_s"), "x",
           "Anakin with 2 gloo replicas / 1 replica, same global batch, median time (lower is better)")
    record("anakin_replicas_identical", float(all(runs["anakin_r2", s]["identical"] for s in seeds)), "",
           "1 if the two replicas' parameters were bit-identical at the end of every race run")
if "jax" in order:
    record(f"anakin_vs_jax_time_to_{target}", median("anakin", "time_s") / median("jax", "time_s"), "x",
           "Anakin PPO (torch, eager) / PureJaxRL-style JAX PPO, same settings, compilation included (lower is better)")
if {"sebulba", "sebulba_sync"} <= set(order):
    record("sebulba_vs_sync_throughput", throughput_ratio, "x",
           "Sebulba / the same run synchronously, median env steps per second over the race runs (higher is better)")
    record("sebulba_policy_lag_mean", float(lags.mean()), "versions", "mean lag of the batches Sebulba's learner used")

# %% [markdown]
# ## What the numbers mean
#
# **On a CPU there is no boundary for Anakin to remove, only overhead.** Run eagerly,
# Anakin's acting program passes gymnasium's `SyncVectorEnv` several times over at 256
# environments and by more beyond: `SyncVectorEnv` steps $N$ Python objects one after
# another, so it stops growing at a few hundred environments, while a tensor step costs
# the same handful of calls for any $N$. Eager, it runs close to gymnasium's own
# numpy-vectorised CartPole (the recorded eager ratio at 256, and the table from 4,096 up):
# both run the same torch actor, and the fit puts their
# per-step overheads $a$ and per-environment costs $b$ close together, torch's eager
# dispatch of some forty operations per step on one side, gymnasium's numpy calls on the
# other. Compiling eight steps of actor and environment into one call (`anakin_compiled`)
# pays that overhead once per eight steps, and at 256 environments it passes gymnasium's
# vector CartPole (the recorded ratios, compiled and eager). At 4,096 what compiling buys
# depends on the processor (the record names it; the table gives this run's figures). Its
# first call, the compilation, is in the first-call times above.
#
# **JAX removes the per-step overhead.** With `lax.scan` the whole $T$-step loop is one
# XLA program, so the fit's $a$ for JAX is an order of magnitude below torch's and JAX
# reaches its per-environment rate at a far smaller $N$ ($a/b$, from the fits). The gap
# is widest at small $N$, where the overhead is nearly all of a step. From a few hundred
# environments on, eager torch runs at a fraction of JAX's speed that no larger $N$ closes
# (the ratios recorded below), since JAX's per-environment cost $b$ is lower too (the fits
# above).
#
# **With `torch.tanh`, half of a large eager step was one kernel.** The profiles above say
# where a large batch's time goes: the actor's matrix products and, in the control, its
# tanh. On the AMD EPYC host where this was found, `torch.tanh` was about half of an eager
# step at 4,096 environments (the control's profile above), because MKL, which computes
# it, ran its generic kernel on that processor (a `perf` profile named it, outside this
# lab; see the log entry). Written as $2\sigma(2x) - 1$, with the $\sigma$ that ATen
# vectorises itself, the same hidden layer costs a fraction of that (timed above, and
# within $2 \cdot 10^{-7}$ of `torch.tanh`), and the acting program takes more steps per
# second (`acting_tanh_speedup_n4096`, recorded below). Below a few thousand elements the
# identity's four calls cost more than the one they replace (measured outside this lab),
# so small batches, the race's among them, keep `torch.tanh`. Compiled, eight steps'
# pointwise work is fused as well, and that program is the one recorded against JAX at
# 4,096 (the eager ratio beside it).
#
# **On an H200 the acting program runs at about a billion steps per second, and the whole
# of Anakin's training at tens of millions.** The acting table is acting only; the training
# table is the paper's kind of figure (its 5 million steps per second is full Anakin
# training on an 8-core TPU), here on one GPU, with the same `AnakinLearner` the race runs
# on the CPU. Training passes 5 million steps per second from 65,536 environments up, and
# keeps growing to the largest size measured. Learning is most of every round at every
# size, so compiling the acting program changes training throughput little.
#
# **Anakin's premise, measured.** The control rows left one piece on the host, drawing the
# minibatch permutation with numpy and copying it over. At a million environments that
# piece made learning about eight times slower (6.4 s against 0.8 s per round) and cut
# training throughput by about seven (`anakin_gpu_device_vs_host_shuffle`). The paper's
# premise, in one line of code: one piece of the loop left on the host set the pace of
# the whole program on the device.
#
# **More steps per second is not faster learning.** The learning check (one run, not a
# race) trained 4,096 environments to a last-20 mean of 450 on the GPU. It needed about
# two hundred rounds, fewer than the CPU race's Anakin needed iterations, but each of a
# round's 16 minibatch updates took about 6 ms at 32,768 rows, against roughly 1.5 to 2 ms
# for a CPU update on 256 rows (the split above). Sixteen times the rows cost little more
# on the GPU, about 7 ms at 524,288 (the learning column divided by 16). So the run took
# several times as long in wall-clock time as the CPU race's Anakin, while taking about a
# hundred times as many environment steps: at this network's size, a GPU update's fixed
# cost, not the steps per second, set the time to learn.
#
# **The race is decided by learning, not acting.** At the shared setting an iteration is
# 1,024 steps of acting and 16 minibatch updates, and the split above shows the updates
# take most of it in eager torch: each is a forward pass, a backward pass, a gradient
# clip and an Adam step. So Anakin's acting, many times `SyncVectorEnv`'s steps per
# second in the throughput table, barely changes its rate in the race against SyncSamples,
# whose two workers sample the next batch while the driver learns: the race table's
# steps/s and the per-iteration times above are close. The recorded time ratio moves from
# run to run with how many steps the seeds happened to need (from about 0.6 to 1.0 in
# the runs so far), within the seeds' spread in the race table.
# The JAX reference is fastest, and most of its time is compilation: after its first
# iteration, each iteration, acting and the 16 updates included, costs a fraction of
# torch's (the per-iteration times above), and XLA compiles that whole iteration into
# one program.
# Torch can compile the update too, and the compiled update is several times faster than
# the eager one (`compiled_update_speedup`), but its first call, from an empty cache,
# takes seconds (`compiled_update_compile_s`), and the C++ compiler building the update's
# kernels ran about as long, summed over its threads (`compiled_update_cpp_s`). The
# iterations the compiled update needs to pay that back are at least those of a whole
# race run (both printed above). By that arithmetic, not
# measured as a race contender, a compiled Anakin would finish no sooner than the eager one
# does and still well behind JAX, so the race's Anakin runs eagerly. On one core, XLA
# compiled JAX's whole iteration, acting and all, in a few seconds (the first-iteration
# times above).
#
# **Two replicas are slower than one here.** A replica's gradient on its half of a
# minibatch took a large share of one replica's whole update, from about a third up in the
# runs so far (the splits above), and the all-reduce and the clip-and-apply of the mean
# came on top: together, from about a third of one replica's whole update to more than all
# of it in the runs so far (the all-reduce's share has varied several-fold between runs).
# The replicas also wait for each other at every all-reduce, sixteen times per iteration,
# on two cores that also run Ray. They stay bit-identical (the check recorded below). On a
# TPU each core's update is compiled and the `pmean` runs over the chips' interconnect.
#
# **Sebulba's overlap pays, within its bound.** With the actor's and the learner's times
# of the synchronous run, the model bounds the overlap's speed-up by
# $(t_a + t_\ell)/\max(t_a, t_\ell)$; the measured ratio is below that bound, and the price
# is a lag of two versions on almost every batch, as the queue of one implies (one batch
# waits while the actor samples the next), which PPO's ratio against the stored
# log-probabilities is there to absorb; the race table gives the steps each needed.
