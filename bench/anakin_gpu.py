"""Anakin on a GPU: env steps per second of distrl's acting program, and of its whole training program.

The same code the Podracer lab runs on the CPU, at batch sizes a CPU cannot reach:

- acting: `distrl.tensor_rollout.TensorRollout` (CartPole-v1 as tensors, a 4-64-64-2 tanh
  actor sampling its actions), eager, and compiled as the lab's `compile=True` does it
  (`torch.compile` of 8 steps of actor and environment as one call);
- training: `distrl.anakin_learner.AnakinLearner`, one replica of Anakin, everything on the
  device: T = 32 steps of N environments, the critic on all T·N rows, GAE, and PPO's 4 epochs
  of 4 minibatches (the lab's race settings but for N), timed per round and split into
  acting (with the critic and GAE) and learning;
- learning: the same learner at N = 4,096 trained until the mean return of the last 20
  episodes reaches 450 (the lab's rule), wall-clock time from the first round.

It imports torch, numpy, gymnasium (for the policy's spaces) and distrl's tensor modules, not
Ray, so it runs on a machine with little of the project installed:

    PYTHONPATH=src python bench/anakin_gpu.py > bench/results/anakin_gpu.json

Each throughput figure is the median of `--repeats` timed calls after a warm-up call (for
compiled programs, the compilation, reported apart and not counted), with the device
synchronised before and after each.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import deque

import torch
from torch import nn

from distrl.anakin_learner import AnakinConfig, AnakinLearner
from distrl.tensor_rollout import TensorRollout, linear_layers

UNROLL = 32  # steps per environment per training round, the lab's race setting


def actor(device: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The shapes of distrl's ActorCritic actor (4 → 64 → 64 → 2, tanh), built with torch alone."""
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(4, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 2)).to(device)
    return linear_layers(mlp)


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def acting(num_envs: int, unroll: int, repeats: int, compile: bool, device: str) -> dict:
    torch._dynamo.reset()  # each size compiles afresh (static shapes), and never hits the recompile limit
    rollout = TensorRollout(actor(device), num_envs, seed=0, compile=compile, device=device)
    sync(device)
    start = time.perf_counter()
    rollout.run(unroll)  # warm-up (and, compiled, the compilation)
    sync(device)
    first = time.perf_counter() - start
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        rollout.run(unroll)
        sync(device)
        rates.append(num_envs * unroll / (time.perf_counter() - start))
    return {"num_envs": num_envs, "compiled": compile, "steps_per_s": rates,
            "median_steps_per_s": statistics.median(rates), "first_unroll_s": first}


def training(num_envs: int, repeats: int, compile: bool, device: str) -> dict:
    torch._dynamo.reset()
    learner = AnakinLearner(AnakinConfig(num_envs=num_envs, unroll=UNROLL), compile=compile, device=device)
    learner.policy.set_lr(2.5e-4)
    sync(device)
    start = time.perf_counter()
    learner.learn(learner.sample()[0])  # warm-up (and, compiled, the rollout's compilation)
    sync(device)
    first = time.perf_counter() - start
    acting_s, learning_s = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        batch, _ = learner.sample()
        sync(device)
        middle = time.perf_counter()
        learner.learn(batch)
        sync(device)
        acting_s.append(middle - start)
        learning_s.append(time.perf_counter() - middle)
    rates = [num_envs * UNROLL / (a + b) for a, b in zip(acting_s, learning_s)]
    return {"num_envs": num_envs, "compiled": compile, "steps_per_s": rates, "median_steps_per_s": statistics.median(rates),
            "median_acting_s": statistics.median(acting_s), "median_learning_s": statistics.median(learning_s),
            "first_round_s": first}


def time_to_450(num_envs: int, max_s: float, device: str) -> dict:
    """Rounds at a constant step size (no annealing: at this N the lab's 1M-step schedule
    would end within 8 rounds) until the last 20 episodes average 450."""
    learner = AnakinLearner(AnakinConfig(num_envs=num_envs, unroll=UNROLL), device=device)
    recent: deque[float] = deque(maxlen=20)
    rounds, curve = 0, []
    sync(device)
    start = time.perf_counter()
    while time.perf_counter() - start < max_s:
        _, returns, _ = learner.round(2.5e-4)
        recent.extend(returns)
        rounds += 1
        mean = statistics.fmean(recent) if recent else 0.0
        curve.append(mean)
        if len(recent) == 20 and mean >= 450:
            break
    seconds = time.perf_counter() - start
    return {"num_envs": num_envs, "unroll": UNROLL, "reached": bool(curve and curve[-1] >= 450), "seconds": seconds,
            "rounds": rounds, "env_steps": rounds * num_envs * UNROLL, "last20_mean_per_round": curve}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--acting-sizes", nargs="*", type=int, default=[4096, 16384, 65536, 262144, 1048576, 2097152])
    parser.add_argument("--training-sizes", nargs="*", type=int, default=[4096, 65536, 262144, 1048576])
    parser.add_argument("--learning-envs", type=int, default=4096)
    parser.add_argument("--learning-max-s", type=float, default=90.0)
    parser.add_argument("--unroll", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda", help="cpu only to try the script out")
    parser.add_argument("--output", help="also write the JSON here after every row, so a cut-off run keeps what it measured")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA device: this benchmark measures the GPU")
    out = {"device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu", "torch": torch.__version__,
           "unroll": args.unroll, "training_unroll": UNROLL, "repeats": args.repeats,
           "measured": time.strftime("%Y-%m-%d"), "rows": [], "training": [], "learning": None}

    def save() -> None:
        if args.output:
            with open(args.output, "w") as f:
                json.dump(out, f, indent=1)

    def report(kind: str, row: dict) -> None:
        extra = (f"  acting {row['median_acting_s'] * 1e3:.1f} ms, learning {row['median_learning_s'] * 1e3:.1f} ms"
                 if "median_acting_s" in row else "")
        print(f"{kind} N = {row['num_envs']:>9,} {'compiled' if row['compiled'] else 'eager   '} "
              f"{row['median_steps_per_s']:>15,.0f} steps/s{extra}", file=sys.stderr, flush=True)
        save()

    for n in args.training_sizes:
        for compile in (False, True):
            try:
                out["training"].append(training(n, args.repeats, compile, args.device))
            except torch.OutOfMemoryError:
                print(f"training N = {n:,}: out of memory", file=sys.stderr, flush=True)
                break
            report("training", out["training"][-1])
    if args.learning_envs:
        out["learning"] = time_to_450(args.learning_envs, args.learning_max_s, args.device)
        row = out["learning"]
        print(f"learning N = {row['num_envs']:,}: {'reached' if row['reached'] else 'did not reach'} 450 in "
              f"{row['seconds']:.1f} s, {row['rounds']} rounds, {row['env_steps']:,} env steps", file=sys.stderr, flush=True)
        save()
    # Acting last: it was measured before (on an H100), training is what a short lease must not miss.
    for n in args.acting_sizes:
        for compile in (False, True):
            out["rows"].append(acting(n, args.unroll, args.repeats, compile, args.device))
            report("acting  ", out["rows"][-1])
    json.dump(out, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
