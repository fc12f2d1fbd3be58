"""Anakin's acting program on a GPU: env steps per second of distrl's TensorRollout.

The same code the Podracer lab times on the CPU (`distrl.tensor_rollout.TensorRollout`,
CartPole-v1 as tensors, a 4-64-64-2 tanh actor sampling its actions), at batch sizes a CPU
cannot reach. It imports only torch and distrl's tensor modules, so it runs on a machine
with torch and nothing else of the project installed:

    PYTHONPATH=src python bench/anakin_gpu.py [N ...] > bench/results/anakin_gpu.json

Each figure is the median of `--repeats` timed unrolls of `--unroll` steps, after a warm-up
unroll, with the GPU synchronised before and after each; eager, and compiled as the lab's
`compile=True` does it (`torch.compile` of 8 steps of actor and environment as one call),
whose compile time is reported apart and not counted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch
from torch import nn

from distrl.tensor_rollout import TensorRollout, linear_layers


def actor(device: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The shapes of distrl's ActorCritic actor (4 → 64 → 64 → 2, tanh), built with torch alone."""
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(4, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 2)).to(device)
    return linear_layers(mlp)


def steps_per_s(num_envs: int, unroll: int, repeats: int, compile: bool, device: str) -> tuple[list[float], float]:
    torch._dynamo.reset()  # each size compiles afresh (static shapes), and never hits the recompile limit
    rollout = TensorRollout(actor(device), num_envs, seed=0, compile=compile, device=device)
    torch.cuda.synchronize()
    start = time.perf_counter()
    rollout.run(unroll)  # warm-up (and, compiled, the compilation)
    torch.cuda.synchronize()
    first = time.perf_counter() - start
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        rollout.run(unroll)
        torch.cuda.synchronize()
        rates.append(num_envs * unroll / (time.perf_counter() - start))
    return rates, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[4096, 16384, 65536, 262144, 1048576])
    parser.add_argument("--unroll", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("no CUDA device: this benchmark measures the GPU")
    device = "cuda"
    rows = []
    for n in args.sizes:
        for compile in (False, True):
            rates, first = steps_per_s(n, args.unroll, args.repeats, compile, device)
            rows.append({"num_envs": n, "compiled": compile, "steps_per_s": rates,
                         "median_steps_per_s": statistics.median(rates), "first_unroll_s": first})
            print(f"N = {n:>9,} {'compiled' if compile else 'eager   '} {statistics.median(rates):>15,.0f} steps/s "
                  f"[{min(rates):,.0f}–{max(rates):,.0f}]  first unroll {first:.1f} s", file=sys.stderr, flush=True)
    json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__, "unroll": args.unroll,
               "repeats": args.repeats, "measured": time.strftime("%Y-%m-%d"), "rows": rows}, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
