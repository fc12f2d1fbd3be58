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
#         contenders: [dqn, apex, apex_uniform, apex_push_1, apex_push_100, cleanrl, rllib]
#         evaluators: [1, 2, 4]
#         rllib_cap_s: 300
#         seeds: [0, 1, 2, 3, 4]
#         target: 450
#         throughput_s: 8
#       quick:
#         cap_s: 8
#         contenders: [dqn, apex, cleanrl]
#         evaluators: [1, 2]
#         rllib_cap_s: 12
#         seeds: [0]
#         target: 100
#         throughput_s: 1.0
#     summary: DQN and Ape-X composed from replay shards, ε-greedy evaluators and one learner,
#       raced against a CleanRL-style DQN and RLlib's DQN on CartPole, with Ape-X's
#       throughput from one to four evaluators.
#     title: 'Replay: DQN and Ape-X'
# ---

# %% [markdown]
# # Replay: DQN and Ape-X
#
# **The question.** Off-policy learners store experience and learn from it many times.
# The RLlib paper's most scaled optimizer is of this kind: Ape-X [@horgan2018], which the
# paper [@liang2018] writes in about 200 lines as a pipeline of sampling, replay and
# learning, scaling "nearly linearly up to 160k environment frames per second with 256
# workers". Composed from distrl's primitives, does the pipeline make a DQN learner solve
# CartPole sooner than the same learner in one process, than a CleanRL-style DQN
# [@huang2022] and than RLlib's DQN? And what does its throughput do as evaluators are
# added on two cores?
#
# **The idea.** DQN [@mnih2015] learns $Q_\theta(s, a)$ from transitions drawn from a
# replay buffer. Here every row is an $n$-step transition, and the target is double
# Q-learning's [@vanhasselt2016]: the online network $\theta$ picks the next action, the
# target network $\theta^-$ (a copy of $\theta$, refreshed every few hundred updates)
# values it,
#
# $$
# y_t = \sum_{k<m} \gamma^k r_{t+k} + \gamma^m (1 - \text{term})\, Q_{\theta^-}\!\big(s_{t+m}, \arg\max_a Q_\theta(s_{t+m}, a)\big),
# \qquad L(\theta) = \frac{1}{B}\sum_i w_i\, \mathrm{huber}\big(Q_\theta(s_i, a_i) - y_i\big),
# $$
#
# with $m \le n$ the steps before the episode or the fragment ends. Prioritized replay
# [@schaul2016] draws row $i$ with probability $P(i) = p_i^\alpha / \sum_k p_k^\alpha$,
# $p_i = |\delta_i| + \epsilon$ its last TD error, and weighs it by
# $w_i = (P(i) / \min_k P(k))^{-\beta}$ to undo the bias of the draw. Ape-X runs $N$
# evaluators, each with its own exploration rate $\varepsilon_i = \varepsilon^{1 + 7i/(N-1)}$
# ($\varepsilon = 0.4$: from exploring to nearly greedy), which compute every row's first
# priority themselves and send rows to replay shards; one learner draws minibatches from
# the shards, sends back their new priorities and pushes $\theta$ to the evaluators every
# $K$ updates. No stage waits for another: that is the claim this lab puts to the test.

# %% tags=["parameters"]
seeds = [0]  # one race per seed; every contender runs once per seed
target = 150  # the race ends when the greedy policy's mean return over 20 episodes reaches this
cap_s = 12.0  # a contender that has not reached the target after this much training stops
rllib_cap_s = 12.0  # RLlib's cap
contenders = ["dqn", "apex", "cleanrl"]
evaluators = [1, 2]  # Ape-X evaluator counts for the throughput measurement
throughput_s = 1.5  # seconds measured per throughput configuration

# %%
import inspect
import os
import statistics
import time
from pathlib import Path

import gymnasium as gym
import matplotlib.pyplot as plt
import numpy as np
import ray
import torch
from radon.raw import analyze
from torch import nn
from torch.nn import functional as F

from distrl import cluster
from distrl.optimizers.async_replay import AsyncReplay, apex_epsilons
from distrl.optimizers.sync_replay import SyncReplay
from distrl.q_learning import QLearner, n_step
from distrl.replay import PrioritizedReplayBuffer, ReplayBuffer
from distrl.replay_worker import ReplayWorker, ReplayWorkerConfig
from distrl.slow_env import StepDelay
from studylog import record, record_environment, record_median

cluster.init()
record_environment("ray", cluster.describe())  # where the actors ran: this machine or a cluster
# The learners (distrl's, CleanRL's, RLlib's) run in this process with one thread each, so
# that on two cores they do not fight the evaluators and shards for the second core.
torch.set_num_threads(1)
print(f"ray {ray.__version__}, torch {torch.__version__}, gymnasium {gym.__version__}")

# %% [markdown]
# ## The composition
#
# `SyncReplay` is DQN: one evaluator in the learner's process samples, the rows go into a
# buffer, the learner takes a fixed number of updates per row. `AsyncReplay` is Ape-X:
# evaluators and replay shards are Ray actors, and the driver only forwards references
# and learns. Both are built from the same four pieces: `ReplayWorker` (the ε-greedy
# evaluator returning $n$-step rows), `ReplayBuffer`/`PrioritizedReplayBuffer` (a ring
# and a sum tree), `QLearner` (the double-DQN loss and Adam) and, for Ape-X, Ray actors.
# Here is each `step()`, as the driver runs it.

# %% code-fold=false
for cls in (SyncReplay, AsyncReplay):
    print(f"# {cls.__module__}.{cls.__name__}\n{inspect.getsource(cls.step)}")

# %% [markdown]
# How long are they? Counted by radon as in the policy-optimizers lab: *lines* is every
# line of the module, docstrings and comments included; *code* is radon's SLOC. RLlib
# 2.60's DQN module is counted for scale (it holds its configuration class and training
# step; Ape-X itself left RLlib's core in 2.9).

# %% code-fold=false
package = Path(inspect.getfile(AsyncReplay)).parent
modules = {"SyncReplay (DQN)": package / "sync_replay.py", "AsyncReplay (Ape-X)": package / "async_replay.py"}
rllib_dqn = Path(ray.__file__).parent / "rllib" / "algorithms" / "dqn" / "dqn.py"
if rllib_dqn.exists():
    modules["RLlib 2.60 algorithms/dqn/dqn.py"] = rllib_dqn
counts = {name: analyze(path.read_text()) for name, path in modules.items()}
print(f"{'module':<34} {'lines':>6} {'code':>6}")
for name, raw in counts.items():
    print(f"{name:<34} {raw.loc:>6} {raw.sloc:>6}")
record("apex_loc", counts["AsyncReplay (Ape-X)"].sloc, "lines",
       "code lines (radon SLOC) of the Ape-X optimizer module, async_replay.py")
record("apex_lines", counts["AsyncReplay (Ape-X)"].loc, "lines",
       "every line of async_replay.py, docstrings and comments included")

# %% [markdown]
# ## Checks before racing
#
# Three properties the race rests on (the test suite checks more: the $n$-step return by
# hand with terminations and truncations, rows against gymnasium's own transitions, a
# killed shard or evaluator, checkpoints):
#
# - The sum tree draws rows in proportion to $p^\alpha$: a $\chi^2$ test on 20,000 draws.
# - The importance weights are their definition, $w_i = (P(i)/\min_k P(k))^{-\beta}$.
# - An evaluator's 3-step rows are the 3-step sums of its 1-step rows: two evaluators from
#   the same seed act alike (ε = 1 draws the same actions), one with $n = 1$, one with $n = 3$.

# %% code-fold=false
rng = np.random.default_rng(0)
priorities = rng.uniform(0.1, 5.0, 50)
buffer = PrioritizedReplayBuffer(64, alpha=0.6, beta=0.4, seed=1)
buffer.add(ReplayWorker(ReplayWorkerConfig(num_envs=1, fragment_length=50)).sample()[0], priorities)
drawn = np.concatenate([buffer.sample(100)["slots"] for _ in range(200)])
expected = (priorities + buffer.epsilon) ** 0.6
expected = expected / expected.sum() * len(drawn)
chi2 = float((((np.bincount(drawn, minlength=50) - expected) ** 2) / expected).sum())
critical = 49 * (1 - 2 / (9 * 49) + 3.09 * np.sqrt(2 / (9 * 49))) ** 3  # Wilson–Hilferty, z(0.999) = 3.09
print(f"χ² = {chi2:.1f} against the 0.1% critical value {critical:.1f} (49 degrees of freedom)")
assert chi2 < critical

minibatch = buffer.sample(32)
p = (priorities[minibatch["slots"]] + buffer.epsilon) ** 0.6 / ((priorities + buffer.epsilon) ** 0.6).sum()
p_min = ((priorities + buffer.epsilon) ** 0.6).min() / ((priorities + buffer.epsilon) ** 0.6).sum()
np.testing.assert_allclose(minibatch["weights"], (p / p_min) ** -0.4, rtol=1e-5)
print(f"importance weights: largest gap to the definition {np.abs(minibatch['weights'] - (p / p_min) ** -0.4).max():.1e}")

one, three = (ReplayWorker(ReplayWorkerConfig(num_envs=2, fragment_length=40, n_step=n, gamma=0.9, seed=7), epsilon=1.0)
              for n in (1, 3))
rows1, rows3 = one.sample()[0], three.sample()[0]


def three_step(rewards: np.ndarray, discounts: np.ndarray) -> np.ndarray:
    """One environment's 3-step returns from its 1-step rows (discount 0: the episode terminated
    there; random play ends long before CartPole truncates at 500)."""
    returns = np.zeros(len(rewards))
    for t in range(len(rewards)):
        for k in range(min(3, len(rewards) - t)):
            returns[t] += 0.9 ** k * rewards[t + k]
            if discounts[t + k] == 0:
                break
    return returns


by_hand = np.concatenate([three_step(rows1["returns"][e * 40:(e + 1) * 40], rows1["discounts"][e * 40:(e + 1) * 40])
                          for e in range(2)])
np.testing.assert_allclose(rows3["returns"], by_hand, rtol=1e-6)
print(f"3-step returns equal the sums of 1-step rows on {len(by_hand)} rows, across "
      f"{int((rows1['discounts'] == 0).sum())} terminations")

# %% [markdown]
# ## The contenders
#
# One learner setting for distrl's two optimizers: double DQN with 3-step returns, a 64-64
# ReLU network, Adam at 2·10⁻³, minibatches of 256, the target network refreshed every 100
# updates, prioritized replay (α = 0.6, β = 0.4) of 50,000 rows, learning from the 1,000th row.
#
# - `dqn`: `SyncReplay`, one evaluator of 4 environments in the learner's process, 8
#   steps per `step()` then one update per 8 rows sampled (32 rows replayed per row
#   sampled); ε falls from 1 to 0.05 over 10,000 steps.
# - `apex`: `AsyncReplay`, 2 evaluators of 8 environments × 32 steps, one replay shard with
#   4 minibatch requests in flight, weights pushed every K = 10 updates; the evaluators'
#   processes are made nicer (`niceness` 19), so that on two cores the shard and the
#   learner, which the pipeline waits on, get a core when they need one.
# - `apex_uniform`: the same with uniform replay (the evaluators compute no priorities):
#   what prioritization does to the updates needed.
# - `apex_push_1`, `apex_push_100`: K = 1 and K = 100.
# - `cleanrl`: a single-process DQN written here after CleanRL's `dqn.py` and its CartPole
#   defaults (one environment, a 120-84 network, Adam at 2.5·10⁻⁴, one minibatch of 128
#   every 10 steps from a 10,000-row buffer, plain Q-learning with a squared error, the
#   target copied every 500 steps, ε from 1 to 0.05 over 250,000 steps, learning from step
#   10,000). Episodes reset within the step that ends them, as in the gymnasium CleanRL
#   was written for; a truncated step's next state is its real last state, as CleanRL does.
# - `rllib`: RLlib 2.60's DQN as its CartPole example (`tuned_examples/dqn/cartpole_dqn.py`)
#   ships it: dueling double DQN, 2–5-step returns, prioritized episode replay of 50,000,
#   Adam at 5·10⁻⁴, minibatches of 32, ε from 1 to 0.02 over 10,000 steps, a 256-unit
#   tanh torso and head, with RLlib's default of sampling in the driver's env runner.
#
# So `dqn` and `apex` share the learner, and differ in more than the pipeline: exploration
# (an annealed ε against two fixed ones), how often a row is replayed (32 times in `dqn`;
# in `apex`, what its evaluators and learner make of it: the race table's steps and
# updates), and the environments behind the rows. `apex_vs_dqn` compares the two systems at
# one learner setting, not the pipeline alone.
#
# **The stopping rule, and why not the training returns.** The policy-optimizer races end
# when the last 20 training episodes average the target. Here that would measure
# exploration as much as learning: CleanRL's ε is still 0.6 after 100,000 steps, and one
# of Ape-X's two evaluators explores with ε = 0.4 for ever. So every contender is judged
# the same way: once per second of training, the clock stops and the current $Q$'s greedy
# policy plays 20 episodes (the same 20 starting states each time); the race ends at the
# first check averaging `target`. A greedy policy can pass one check and fail the next;
# the first pass counts, for every contender alike, so a lucky early check ends a race
# early, and the ranges below show how far that reaches. An Ape-X evaluator keeps sampling while the clock is
# stopped, but only to the end of the two requests it has in flight (the driver sends the
# next ones), so a check adds at most two fragments per evaluator to its data.

# %%
EVAL_EPISODES, EVAL_SEED, EVAL_EVERY_S = 20, 10_000, 1.0
LEARNER = dict(hidden=(64, 64), lr=2e-3, target_period=100)
REPLAY_ROWS, LEARNING_STARTS, BATCH = 50_000, 1_000, 256


def greedy_return(act) -> float:
    """Mean return of `act` (observations → actions) over EVAL_EPISODES episodes."""
    env = gym.make_vec("CartPole-v1", num_envs=EVAL_EPISODES, vectorization_mode="sync",
                       vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP})
    obs, _ = env.reset(seed=EVAL_SEED)
    total, running = np.zeros(EVAL_EPISODES), np.ones(EVAL_EPISODES, bool)
    while running.any():
        obs, rewards, terminated, truncated, _ = env.step(act(obs))
        total += rewards * running
        running &= ~(terminated | truncated)
    env.close()
    return float(total.mean())


def greedy(network: nn.Module):
    def act(obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return network(torch.as_tensor(obs, dtype=torch.float32)).argmax(1).numpy()
    return act


class Distrl:
    """A distrl optimizer as a race contender: advance() is one step()."""

    def __init__(self, opt, learner: QLearner):
        self.opt, self.act = opt, greedy(learner.online)

    def advance(self) -> None:
        self.opt.step()

    def counts(self) -> tuple[int, int]:
        return self.opt.stats.env_steps, self.opt.stats.updates

    def stop(self) -> None:
        self.opt.stop()


def apex_config(seed: int, prioritized: bool = True, env_kwargs: dict | None = None) -> ReplayWorkerConfig:
    return ReplayWorkerConfig(num_envs=8, fragment_length=32, n_step=3, seed=seed, priorities=prioritized,
                              niceness=19, env_kwargs=env_kwargs or {})


def make_apex(seed: int, num_workers: int = 2, push_every: int = 10, prioritized: bool = True,
              env_kwargs: dict | None = None) -> AsyncReplay:
    learner = QLearner(4, 2, seed=seed, **LEARNER)
    buffer = (PrioritizedReplayBuffer, {"capacity": REPLAY_ROWS}) if prioritized else (ReplayBuffer, {"capacity": REPLAY_ROWS})
    opt = AsyncReplay(apex_config(seed, prioritized, env_kwargs), num_workers, learner, *buffer, batch_size=BATCH,
                      learning_starts=LEARNING_STARTS, push_every=push_every, requests_per_shard=4)
    ray.get([actor.__ray_ready__.remote() for actor in opt.workers + opt.shards])  # the clock starts once all are up
    return opt


def make_distrl(kind: str, seed: int) -> Distrl:
    if kind == "dqn":
        learner = QLearner(4, 2, seed=seed, **LEARNER)
        worker = ReplayWorker(ReplayWorkerConfig(num_envs=4, fragment_length=8, n_step=3, seed=seed))
        opt = SyncReplay(worker, learner, PrioritizedReplayBuffer(REPLAY_ROWS, seed=seed), batch_size=BATCH,
                         updates_per_row=1 / 8, learning_starts=LEARNING_STARTS, explore_steps=10_000)
        return Distrl(opt, learner)
    options = {"apex": {}, "apex_uniform": {"prioritized": False}, "apex_push_1": {"push_every": 1},
               "apex_push_100": {"push_every": 100}}[kind]
    opt = make_apex(seed, **options)
    return Distrl(opt, opt.learner)

# %% [markdown]
# **CleanRL-style DQN**, written afresh after CleanRL's single-file `dqn.py` and its defaults.

# %%
class CleanDQN:
    def __init__(self, seed: int, lr: float = 2.5e-4, buffer_size: int = 10_000, gamma: float = 0.99,
                 target_every: int = 500, batch_size: int = 128, end_e: float = 0.05, explore_steps: int = 250_000,
                 learning_starts: int = 10_000, train_every: int = 10):
        torch.manual_seed(seed)
        self.env = gym.make_vec("CartPole-v1", num_envs=1, vectorization_mode="sync",
                                vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP})
        self.env.single_action_space.seed(seed)

        def network() -> nn.Module:
            return nn.Sequential(nn.Linear(4, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 2))

        self.q, self.target = network(), network()
        self.target.load_state_dict(self.q.state_dict())
        self.optimizer = torch.optim.Adam(self.q.parameters(), lr=lr)
        self.act = greedy(self.q)
        self.rows = {"obs": np.zeros((buffer_size, 4), np.float32), "next_obs": np.zeros((buffer_size, 4), np.float32),
                     "action": np.zeros(buffer_size, np.int64), "reward": np.zeros(buffer_size, np.float32),
                     "done": np.zeros(buffer_size, np.float32)}
        self.size, self.rng, self.explore = 0, np.random.default_rng(seed), np.random.default_rng(seed + 1)
        self.obs, _ = self.env.reset(seed=seed)
        self.step_count, self.updates = 0, 0
        self.gamma, self.target_every, self.batch_size, self.end_e = gamma, target_every, batch_size, end_e
        self.explore_steps, self.learning_starts, self.train_every, self.capacity = explore_steps, learning_starts, train_every, buffer_size

    def advance(self, steps: int = 500) -> None:
        for _ in range(steps):
            t = self.step_count
            epsilon = max(1.0 + (self.end_e - 1.0) * t / self.explore_steps, self.end_e)
            action = (np.array([self.env.single_action_space.sample()]) if self.explore.random() < epsilon
                      else self.act(self.obs))
            next_obs, reward, terminated, truncated, infos = self.env.step(action)
            real_next = infos["final_obs"][0] if (terminated[0] or truncated[0]) else next_obs[0]
            i = t % self.capacity
            for name, value in zip(self.rows, (self.obs[0], real_next, action[0], reward[0], terminated[0])):
                self.rows[name][i] = value
            self.size, self.obs = min(self.size + 1, self.capacity), next_obs
            if t > self.learning_starts:
                if t % self.train_every == 0:
                    self.learn()
                if t % self.target_every == 0:
                    self.target.load_state_dict(self.q.state_dict())
            self.step_count += 1

    def learn(self) -> None:
        index = self.rng.integers(0, self.size, self.batch_size)
        obs, next_obs, action, reward, done = (torch.as_tensor(column[index]) for column in self.rows.values())
        with torch.no_grad():
            y = reward + self.gamma * self.target(next_obs).max(1).values * (1 - done)
        q = self.q(obs).gather(1, action.unsqueeze(1)).squeeze(1)
        loss = F.mse_loss(y, q)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.updates += 1

    def counts(self) -> tuple[int, int]:
        return self.step_count, self.updates

    def stop(self) -> None:
        self.env.close()

# %% [markdown]
# **RLlib's DQN**, as its CartPole example ships it. Its `train()` samples at least 1,000
# steps (RLlib's default per iteration), so it is checked after each `train()`, at least
# a second apart like the others.

# %%
class RLlibDQN:
    def __init__(self, seed: int):
        from ray.rllib.algorithms.dqn import DQNConfig
        from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

        config = (DQNConfig().environment("CartPole-v1").debugging(seed=seed)
                  .training(lr=0.0005, train_batch_size_per_learner=32, n_step=(2, 5), double_q=True, dueling=True,
                            epsilon=[(0, 1.0), (10000, 0.02)],
                            replay_buffer_config={"type": "PrioritizedEpisodeReplayBuffer", "capacity": 50000,
                                                  "alpha": 0.6, "beta": 0.4})
                  .rl_module(model_config=DefaultModelConfig(
                      fcnet_hiddens=[256], fcnet_activation="tanh", fcnet_bias_initializer="zeros_",
                      head_fcnet_bias_initializer="zeros_", head_fcnet_hiddens=[256])))
        self.algo = config.build_algo()
        self.steps, self.updates = 0, 0

    def advance(self) -> None:
        result = self.algo.train()
        self.steps = int(result["env_runners"]["num_env_steps_sampled_lifetime"])
        self.updates = int(result["learners"]["__all_modules__"]["num_module_steps_trained_lifetime"]) // 32

    def act(self, obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.algo.get_module().forward_inference({"obs": torch.as_tensor(obs, dtype=torch.float32)})["actions"].numpy()

    def counts(self) -> tuple[int, int]:
        return self.steps, self.updates

    def stop(self) -> None:
        self.algo.stop()

# %% [markdown]
# ## The race
#
# Seeds run in turn; within a seed every contender runs once, one after another, the order
# rotating from seed to seed. The clock counts training only: building (timed apart) and
# the greedy checks are outside it.

# %% code-fold=false timeout_s=7200
def race(name: str, seed: int) -> dict:
    built = time.perf_counter()
    contender = CleanDQN(seed) if name == "cleanrl" else RLlibDQN(seed) if name == "rllib" else make_distrl(name, seed)
    build_s, cap = time.perf_counter() - built, rllib_cap_s if name == "rllib" else cap_s
    clock, checked, curve = 0.0, 0.0, []
    try:
        while clock < cap:
            start = time.perf_counter()
            contender.advance()
            clock += time.perf_counter() - start
            if clock - checked >= EVAL_EVERY_S:
                checked = clock
                curve.append((clock, *contender.counts(), greedy_return(contender.act)))
                if curve[-1][3] >= target:
                    break
    finally:
        contender.stop()
    reached = bool(curve) and curve[-1][3] >= target
    time_s, steps, updates, _ = curve[-1] if curve else (clock, 0, 0, 0.0)
    return dict(reached=reached, time_s=time_s, steps=steps, updates=updates, curve=curve, build_s=build_s)


runs = {}
for turn, seed in enumerate(seeds):
    for name in contenders[turn % len(contenders):] + contenders[:turn % len(contenders)]:
        runs[name, seed] = r = race(name, seed)
        print(f"seed {seed} {name:<14} {'reached' if r['reached'] else 'did NOT reach'} {target} in {r['time_s']:6.1f} s, "
              f"{r['steps']:>9,} env steps, {r['updates']:>6,} updates")

# %%
def solved_values(name: str, key: str) -> list[float]:
    """Per seed; a seed that did not reach the target counts as infinitely slow."""
    return [runs[name, s][key] if runs[name, s]["reached"] else float("inf") for s in seeds]


def median(name: str, key: str) -> float:
    return statistics.median(solved_values(name, key))


print(f"median [min–max] over {len(seeds)} seeds, to a greedy mean return of {target}")
print(f"{'contender':<14} {'reached':>7} {'time (s)':>22} {'updates':>24} {'env steps':>28}")
for name in contenders:
    cells = []
    for key, digits in (("time_s", 1), ("updates", 0), ("steps", 0)):
        values = solved_values(name, key)
        cells.append(f"{median(name, key):>9,.{digits}f} [{min(values):,.{digits}f}–{max(values):,.{digits}f}]")
    print(f"{name:<14} {sum(runs[name, s]['reached'] for s in seeds):>5}/{len(seeds)} "
          f"{cells[0]:>22} {cells[1]:>24} {cells[2]:>28}")
if "rllib" in contenders:
    print(f"RLlib's build (not timed): median {statistics.median(runs['rllib', s]['build_s'] for s in seeds):.1f} s")


def record_seeds(name: str, values: list[float], unit: str, description: str) -> None:
    """The median over seeds with their range; a seed that did not reach the target (∞) leaves
    the range out, and a median that is ∞ is not recorded (the table above shows it)."""
    if all(np.isfinite(values)):
        record_median(name, values, unit, description)
    elif np.isfinite(statistics.median(values)):
        record(name, statistics.median(values), unit, f"{description}; a seed did not reach the target, so no range")
    else:
        print(f"{name}: not recorded, most seeds did not reach the target")


def record_ratio(name: str, over: str, metric: str, description: str) -> None:
    """median(name) / median(over) of the race times, where both contenders ran and reached."""
    if name in contenders and over in contenders:
        ratio = median(name, "time_s") / median(over, "time_s")
        if np.isfinite(ratio) and ratio > 0:
            record(metric, ratio, "x", description)
        else:
            print(f"{metric}: not recorded, a median time is infinite")


record_ratio("apex", "dqn", f"apex_vs_dqn_time_to_{target}",
             "Ape-X / DQN with the same learner settings, median time (lower is better): the two systems, "
             "which also differ in exploration and replay ratio")
record_ratio("apex", "cleanrl", f"apex_vs_cleanrl_dqn_time_to_{target}",
             "Ape-X / a CleanRL-style DQN at CleanRL's defaults, median time (lower is better)")
record_ratio("apex", "rllib", f"apex_vs_rllib_dqn_time_to_{target}",
             "Ape-X / RLlib 2.60's DQN as its CartPole example ships it, median time (lower is better)")
for name in ("apex", "dqn", "cleanrl", "rllib"):
    if name in contenders:
        record_seeds(f"{name}_time_to_{target}_s", solved_values(name, "time_s"), "s",
                     f"{name}: training time to a greedy mean return of {target}, median over seeds")
if {"apex", "apex_uniform"} <= set(contenders):
    record_seeds(f"prioritized_vs_uniform_updates_to_{target}",
                 [a / b for a, b in zip(solved_values("apex", "updates"), solved_values("apex_uniform", "updates"))],
                 "x", "Ape-X updates to the target, prioritized / uniform replay, per seed (same seed, same start)")
if {"apex_push_1", "apex_push_100"} & set(contenders):
    for name, k in (("apex_push_1", 1), ("apex", 10), ("apex_push_100", 100)):
        if name in contenders:
            record_seeds(f"apex_push_every_{k}_updates_to_{target}", solved_values(name, "updates"), "updates",
                         f"Ape-X with weights pushed every {k} updates: learner updates to the target, median over seeds")
            record_seeds(f"apex_push_every_{k}_time_to_{target}_s", solved_values(name, "time_s"), "s",
                         f"Ape-X with weights pushed every {k} updates: training time to the target, median over seeds")

# %% [markdown]
# ## Learning curves
#
# The greedy policy's mean return at each check, against training time and against
# learner updates: the line is the median across seeds, the band spans the seeds. A run
# that reached the target is drawn at its last value after that.

# %% fig-cap="Greedy mean return over 20 episodes against training time (left) and learner updates (right): median across seeds, band from the lowest to the highest seed."
def on_grid(curve: list, column: int, grid: np.ndarray) -> np.ndarray:
    xs, ys = np.array([c[column] for c in curve]), np.array([c[3] for c in curve])
    return np.interp(grid, xs, ys, left=0.0, right=ys[-1]) if len(xs) else np.zeros_like(grid)


fig, axes = plt.subplots(1, 2, figsize=(14, 4.5))
for ax, column, label in ((axes[0], 0, "training time (s)"), (axes[1], 2, "learner updates")):
    for name in contenders:
        end = max(runs[name, s]["curve"][-1][column] if runs[name, s]["curve"] else 1 for s in seeds)
        grid = np.linspace(0, end, 200)
        values = np.array([on_grid(runs[name, s]["curve"], column, grid) for s in seeds])
        ax.plot(grid, np.median(values, 0), label=name)
        ax.fill_between(grid, values.min(0), values.max(0), alpha=0.15)
    ax.axhline(target, color="grey", linestyle=":", linewidth=1)
    ax.set(xlabel=label, ylabel="greedy mean return")
    if column == 2:
        ax.set_xscale("symlog", linthresh=1000)  # linear to 1,000 updates, logarithmic beyond
    ax.set_xlim(left=0)
axes[0].legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Throughput: one to four evaluators
#
# Ape-X's scaling claim is about frames per second as evaluators are added, so the
# pipeline is measured without the race: each configuration learns for `throughput_s`
# seconds after the shard holds its first 1,000 rows, and reports environment frames per
# second, learner updates per second, and each stage's occupancy: the share of the time
# the evaluators were sampling (on average), the learner learning, the learner waiting for
# a minibatch, and the driver forwarding batches.
#
# Two environments. On plain CartPole an evaluator is bound by the CPU: it computes as
# fast as its core lets it, and two cores hold the learner, the shard and every evaluator,
# so frames cannot grow in proportion beyond the first evaluator. The second is CartPole
# with 0.5 ms added to every step as waiting (`distrl.slow_env.StepDelay`): an emulator or
# simulator whose step costs time but not this machine's CPU, as Atari's emulator did for
# the paper's 256 actors on their own cores. There an evaluator's rate is set by its
# environment, and what is measured is whether the pipeline keeps up as they are added.

# %% code-fold=false
def throughput(num_workers: int, env_kwargs: dict | None) -> dict:
    opt = make_apex(0, num_workers=num_workers, env_kwargs=env_kwargs)

    def busy() -> float:
        return sum(ray.get([w.__ray_call__.remote(lambda worker: worker.busy_s) for w in opt.workers]))

    try:
        while opt.stats.updates < 20:  # past learning_starts: the learner is running
            opt.step()
        s = opt.stats
        begin = (s.env_steps, s.updates, s.learn_s, s.sample_s, s.sync_s, busy())
        start = time.perf_counter()
        while time.perf_counter() - start < throughput_s:
            opt.step()
        wall = time.perf_counter() - start
        evaluators_busy = busy() - begin[5]
        forwarding = s.sync_s - begin[4]  # AsyncReplay times forwarding as sync_s
        return dict(frames_s=(s.env_steps - begin[0]) / wall, updates_s=(s.updates - begin[1]) / wall,
                    learner=(s.learn_s - begin[2]) / wall, waiting=(s.sample_s - begin[3]) / wall,
                    forwarding=forwarding / wall, evaluators=evaluators_busy / num_workers / wall,
                    forward_s=forwarding / ((s.env_steps - begin[0]) / ROWS_PER_BATCH))
    finally:
        opt.stop()


def dqn_throughput(env_kwargs: dict | None) -> dict:
    learner = QLearner(4, 2, seed=0, **LEARNER)
    worker = ReplayWorker(ReplayWorkerConfig(num_envs=4, fragment_length=8, n_step=3, env_kwargs=env_kwargs or {}))
    opt = SyncReplay(worker, learner, PrioritizedReplayBuffer(REPLAY_ROWS), batch_size=BATCH, updates_per_row=1 / 8,
                     learning_starts=LEARNING_STARTS)
    while opt.stats.updates < 20:
        opt.step()
    steps, updates, start = opt.stats.env_steps, opt.stats.updates, time.perf_counter()
    while time.perf_counter() - start < throughput_s:
        opt.step()
    wall = time.perf_counter() - start
    opt.stop()
    return dict(frames_s=(opt.stats.env_steps - steps) / wall, updates_s=(opt.stats.updates - updates) / wall)


DELAY_S = 0.0005
ROWS_PER_BATCH = apex_config(0).num_envs * apex_config(0).fragment_length
environments = {"CartPole (CPU-bound)": None, "CartPole + 0.5 ms wait per step": {"wrappers": [lambda env: StepDelay(env, DELAY_S)]}}
measured = {}
for env_name, env_kwargs in environments.items():
    measured[env_name, "dqn"] = dqn_throughput(env_kwargs)
    for n in evaluators:
        measured[env_name, n] = throughput(n, env_kwargs)
    print(f"\n{env_name}")
    print(f"{'':<16} {'frames/s':>10} {'updates/s':>10} {'evaluators busy':>16} {'learner busy':>13} {'learner waits':>14} "
          f"{'forwarding':>11}")
    row = measured[env_name, "dqn"]
    print(f"{'DQN (1 process)':<16} {row['frames_s']:>10,.0f} {row['updates_s']:>10,.0f}")
    for n in evaluators:
        row = measured[env_name, n]
        print(f"{f'Ape-X, {n} eval.':<16} {row['frames_s']:>10,.0f} {row['updates_s']:>10,.0f} {row['evaluators']:>16.0%} "
              f"{row['learner']:>13.0%} {row['waiting']:>14.0%} {row['forwarding']:>11.0%}")

# %%
cpu, waiting = environments
if 2 in evaluators:
    record("apex_frames_scaling_2", measured[waiting, 2]["frames_s"] / measured[waiting, 1]["frames_s"], "x",
           "Ape-X frames/s with 2 evaluators / 1, on CartPole with a 0.5 ms wait per step (evaluators not CPU-bound)")
    record("apex_frames_scaling_2_cpu_bound", measured[cpu, 2]["frames_s"] / measured[cpu, 1]["frames_s"], "x",
           "the same on plain CartPole, where two cores hold the learner, the shard and every evaluator")
if 4 in evaluators:
    record("apex_frames_scaling_4", measured[waiting, 4]["frames_s"] / measured[waiting, 1]["frames_s"], "x",
           "Ape-X frames/s with 4 evaluators / 1, CartPole with a 0.5 ms wait per step")
record("apex_updates_per_s", measured[cpu, max(n for n in evaluators if n <= 2)]["updates_s"], "updates/s",
       "Ape-X learner updates per second on CartPole (minibatches of 256)")

# %% fig-cap="Ape-X's environment frames per second with N evaluators, relative to one evaluator, on plain CartPole (CPU-bound) and with a 0.5 ms wait per step; dotted: perfect scaling (N times one evaluator's rate)."
fig, ax = plt.subplots(figsize=(7, 4))
for env_name in environments:
    ax.plot(evaluators, [measured[env_name, n]["frames_s"] / measured[env_name, 1]["frames_s"] for n in evaluators],
            marker="o", label=f"{env_name} (one evaluator: {measured[env_name, 1]['frames_s']:,.0f} frames/s)")
ax.plot(evaluators, evaluators, linestyle=":", color="grey", label="perfect scaling")
ax.set(xlabel="evaluators", ylabel="frames/s relative to one evaluator", xticks=evaluators)
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## A model of the paper's 160k frames per second (a model, not a measurement)
#
# The driver forwards every evaluator batch by reference (one `ray.get` of a small report
# and two actor calls), learns, and does the rest (weight pushes, minibatch requests, the
# loop itself). If forwarding one batch costs it $c$ seconds, and learning and the rest
# take shares $\ell$ and $o$ of its time, it forwards at most $(1 - \ell - o)/c$ batches
# per second; with $b$ rows per batch the pipeline is capped at
#
# $$ F_{\max} = b\,(1 - \ell - o)/c \ \text{frames/s}, \qquad F(N) = \min(N r,\ F_{\max}) $$
#
# for $N$ evaluators of $r$ frames/s each. $c$, $\ell$ and $o$ (what is left of the wall
# time after learning, waiting and forwarding) are fitted to the run with the most
# evaluators on the waiting environment above, $r$ to the one-evaluator run.

# %%
fit = measured[waiting, max(evaluators)]
r_one = measured[waiting, 1]["frames_s"]
other = max(0.0, 1 - fit["learner"] - fit["waiting"] - fit["forwarding"])
f_max = ROWS_PER_BATCH * (1 - fit["learner"] - other) / fit["forward_s"]
print(f"fitted: c = {fit['forward_s'] * 1e3:.2f} ms per forwarded batch of {ROWS_PER_BATCH} rows, learner share "
      f"ℓ = {fit['learner']:.0%}, the rest o = {other:.0%}, r = {r_one:,.0f} frames/s per evaluator")
print(f"model ceiling F_max = {f_max:,.0f} frames/s: linear scaling up to N ≈ {f_max / r_one:,.0f} evaluators of this rate")
paper_rate = 160_000 / 256
print(f"the paper: 160,000 frames/s from 256 actors is {paper_rate:,.0f} frames/s per actor; this driver would "
      f"saturate at {f_max / paper_rate:,.0f} such actors ({min(f_max, 160_000):,.0f} frames/s)")
record("apex_model_ceiling_frames_per_s", f_max, "frames/s",
       "a model, not a measurement: b(1 - ℓ - o)/c with c, ℓ, o fitted on this machine")

# %% [markdown]
# ## What it means
#
# The sentences below are computed from this run's figures, so they say what was measured
# and no more; the log entry that cites this lab reads them.

# %%
def per_update_ms(name: str) -> float:
    return 1e3 * statistics.median(runs[name, s]["time_s"] / max(1, runs[name, s]["updates"]) for s in seeds)


if {"apex", "dqn"} <= set(contenders):
    a, d = median("apex", "time_s"), median("dqn", "time_s")
    print(f"- Same learner settings, two systems: Ape-X reached {target} in a median {a:.1f} s, DQN in one process in {d:.1f} s, "
          f"after a median {median('apex', 'updates'):,.0f} and {median('dqn', 'updates'):,.0f} updates; a race took "
          f"{per_update_ms('apex'):.2f} ms of training time per update with Ape-X and {per_update_ms('dqn'):.2f} ms with DQN, "
          f"whose time per update includes its own sampling.")
    cpu_dqn, cpu_apex = measured[cpu, "dqn"], measured[cpu, min(evaluators, key=lambda n: abs(n - 2))]
    print(f"- On plain CartPole the one-process DQN took {cpu_dqn['updates_s']:,.0f} updates/s while sampling "
          f"{cpu_dqn['frames_s']:,.0f} frames/s; Ape-X's learner took {cpu_apex['updates_s']:,.0f} updates/s "
          f"(waiting for a minibatch {cpu_apex['waiting']:.0%} of the time, forwarding batches {cpu_apex['forwarding']:.0%}) "
          f"while its evaluators sampled {cpu_apex['frames_s']:,.0f} frames/s.")
for reference in ("cleanrl", "rllib"):
    if {"apex", reference} <= set(contenders):
        print(f"- Against {reference}: Ape-X took {median('apex', 'time_s') / median(reference, 'time_s'):.2f}× its median time "
              f"({median(reference, 'time_s'):.1f} s, {median(reference, 'steps'):,.0f} env steps), a comparison of whole "
              f"systems at their own settings.")
if {"apex", "apex_uniform"} <= set(contenders):
    ratios = [a / b for a, b in zip(solved_values("apex", "updates"), solved_values("apex_uniform", "updates"))]
    print(f"- Prioritized replay needed {statistics.median(ratios):.2f}× the updates of uniform replay "
          f"(per seed {min(ratios):.2f}–{max(ratios):.2f}).")
if {"apex_push_1", "apex_push_100"} <= set(contenders):
    print("- Weights pushed every K updates: " + ", ".join(
        f"K = {k}: {median(name, 'time_s'):.1f} s, {median(name, 'updates'):,.0f} updates"
        for name, k in (("apex_push_1", 1), ("apex", 10), ("apex_push_100", 100))) + " (medians).")
if 2 in evaluators:
    print(f"- Frames/s from one to two evaluators: ×{measured[waiting, 2]['frames_s'] / measured[waiting, 1]['frames_s']:.2f} "
          f"where the environment waits, ×{measured[cpu, 2]['frames_s'] / measured[cpu, 1]['frames_s']:.2f} where it "
          f"computes on the two cores the learner and the shard use too.")
