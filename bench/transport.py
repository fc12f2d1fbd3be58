"""Which same-node data path for distrl's all-reduce: the candidates, measured in one run.

Issue #20 asks for a path that does not go through Ray's object store and task scheduler
for every message, and for the choice among the ways of building one to be measured.
This script times, on this machine, in turns:

- `ring (object store)`: `distrl.collective`'s ring, every message a task through the
  driver, timed from the driver (as the all-reduce lab times it);
- `shm, ring` and `shm, direct`: `distrl.shm_ring.ShmRing`'s two algorithms, in Ray
  actors, timed inside the ranks, back-to-back calls, the slowest rank's time per call (as
  MPI's benchmarks, and the lab, time MPI);
- `MPI`: `MPI_Allreduce` of the mpich wheel (`distrl.mpi_allreduce`), timed the same way;
- a Ray compiled graph passing the buffer driver → a → b → driver through its reused
  shared-memory channels, against the same chain as two plain actor tasks: the cost of a
  hop, which a ring built from compiled-graph nodes would pay 2(n−1) times per call.

It also checks whether a torch tensor in shared memory (`share_memory_()`) stays shared when
passed to a Ray actor, the third candidate the issue names.

    .venv/bin/python bench/transport.py [--output bench/results/transport.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
import uuid

import numpy as np
import ray
import torch

from distrl import cluster
from distrl.collective import CollectiveGroup
from distrl.mpi_allreduce import MpiAllreduce
from distrl.shm_ring import ShmRing

SIZES = {"4 KiB": 4096, "64 KiB": 64 << 10, "1 MiB": 1 << 20, "64 MiB": 64 << 20}


def calls_for(nbytes: int) -> int:
    """Back-to-back calls per timed round: enough that the timer and one wake-up do not dominate."""
    return 200 if nbytes <= 4096 else 20 if nbytes <= 1 << 20 else 3


@ray.remote
class ShmRank:
    def __init__(self, group: str, rank: int, size: int, capacity: int):
        self.ring = ShmRing(group, rank, size, capacity)

    def connect(self) -> None:
        self.ring.connect()

    def time(self, nbytes: int, calls: int, algorithm: str | None) -> float:
        """Seconds per all-reduce (float32 sum) over `calls` in a row, after one untimed call."""
        length = nbytes // 4
        self.ring.buffer(np.float32, length)[:] = 1.0
        self.ring.allreduce("max", np.float32, length, algorithm)  # max: values stay finite
        start = time.perf_counter()
        for _ in range(calls):
            self.ring.allreduce("sum", np.float32, length, algorithm)
        return (time.perf_counter() - start) / calls

    def close(self) -> None:
        self.ring.close()


def shm_ring(n: int, capacity: int):
    group = uuid.uuid4().hex[:12]
    ranks = [ShmRank.options(num_cpus=cluster.actor_cpus()).remote(group, r, n, capacity) for r in range(n)]
    ray.get([r.connect.remote() for r in ranks])
    return ranks, lambda nbytes, algorithm=None: max(ray.get([r.time.remote(nbytes, calls_for(nbytes), algorithm)
                                                              for r in ranks]))


def object_store_ring(n: int):
    group = CollectiveGroup(n)
    ray.get([r.__ray_ready__.remote() for r in group.ranks])
    current = {"nbytes": -1}

    def timed(nbytes: int) -> float:
        if current["nbytes"] != nbytes:
            group.set_buffers([np.ones(nbytes // 4, np.float32)] * n)
            current["nbytes"] = nbytes
        group.allreduce("max")
        calls = max(1, calls_for(nbytes) // 20)
        start = time.perf_counter()
        for _ in range(calls):
            group.allreduce("sum")
        return (time.perf_counter() - start) / calls

    return group, timed


def in_turns(contenders: dict, rounds: int) -> dict:
    samples = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            samples[name].append(fn())
    return samples


def compiled_graph_hops(rounds: int) -> dict:
    """driver → a → b → driver, 4 KiB and 16 MiB: compiled graph against plain tasks."""
    from ray.dag import InputNode

    @ray.remote(num_cpus=cluster.actor_cpus())
    class Hop:
        def forward(self, x):
            return x

    a, b = Hop.remote(), Hop.remote()
    out = {}
    for label, nbytes in (("4 KiB", 4096), ("16 MiB", 16 << 20)):
        x = np.ones(nbytes // 4, np.float32)
        with InputNode() as source:
            dag = b.forward.bind(a.forward.bind(source))
        compiled = dag.experimental_compile(_buffer_size_bytes=2 * nbytes + (1 << 20))
        calls = 100 if nbytes <= 4096 else 5
        for _ in range(3):
            ray.get(compiled.execute(x))

        def graph():
            start = time.perf_counter()
            for _ in range(calls):
                ray.get(compiled.execute(x))
            return (time.perf_counter() - start) / calls

        def tasks():
            start = time.perf_counter()
            for _ in range(calls):
                ray.get(b.forward.remote(a.forward.remote(x)))
            return (time.perf_counter() - start) / calls

        samples = in_turns({"compiled graph": graph, "actor tasks": tasks}, rounds)
        out[label] = {name: statistics.median(s) for name, s in samples.items()}
        start = time.perf_counter()
        compiled.teardown(kill_actors=True)  # without kill_actors, teardown hung > 30 s here
        out[label]["teardown_s"] = time.perf_counter() - start
        if label == "4 KiB":
            a, b = Hop.remote(), Hop.remote()
    for actor in (a, b):
        ray.kill(actor)
    return out


def torch_shared_tensor_stays_shared() -> bool:
    @ray.remote(num_cpus=cluster.actor_cpus())
    def write(t):
        t += 1  # the argument arrives as a copy unless its memory is shared
        return None

    tensor = torch.zeros(1024).share_memory_()
    ray.get(write.remote(tensor))
    return bool(tensor[0] == 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=None, help="write the results here as JSON")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    cluster.init(num_cpus=2)
    results = {"machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
               "date": time.strftime("%Y-%m-%d"), "ray": ray.__version__, "allreduce": {}}
    for n in (2, 4):
        ranks, shm_time = shm_ring(n, max(SIZES.values()))
        group, store_time = object_store_ring(n)
        with MpiAllreduce(n) as mpi:
            for label, nbytes in SIZES.items():
                contenders = {"ring (object store)": lambda: store_time(nbytes),
                              "shm, ring": lambda: shm_time(nbytes, "ring"),
                              "shm, direct": lambda: shm_time(nbytes, "direct"),
                              "MPI": lambda: mpi.time(nbytes, calls_for(nbytes))}
                if nbytes > 1 << 20:
                    del contenders["shm, direct"]  # n times the reading: not a contender at this size
                samples = in_turns(contenders, args.rounds)
                row = {name: statistics.median(s) for name, s in samples.items()}
                results["allreduce"][f"n={n} {label}"] = row
                print(f"n={n} {label:>6}: " + "  ".join(f"{k} {v * 1e6:9.0f} µs" for k, v in row.items()), flush=True)
        group.stop()
        ray.get([r.close.remote() for r in ranks])
        for r in ranks:
            ray.kill(r)
    results["hops"] = compiled_graph_hops(args.rounds)
    for label, row in results["hops"].items():
        print(f"driver → a → b → driver, {label}: " + "  ".join(f"{k} {v * 1e6:.0f} µs" for k, v in row.items()))
    results["torch_shared_tensor_stays_shared_through_ray"] = torch_shared_tensor_stays_shared()
    print("a torch tensor in shared memory passed to a Ray task stays shared:",
          results["torch_shared_tensor_stays_shared_through_ray"])
    cluster.shutdown()
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
