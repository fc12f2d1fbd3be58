"""The one way labs and tests get Ray, and how much of a CPU an actor asks for by default.

With RAY_ADDRESS set, connect to that cluster; otherwise start a local Ray sized to this
machine. A lab says how many actors it holds at once (`init(actors=...)`). Where the
cluster has a CPU for each of them, an actor asks the scheduler for one whole CPU, so the
scaling a lab measures there is that of separate cores; where it has fewer, each asks for
the largest share at which all of them can be placed at once, node by node, and the
operating system shares the cores (on 2 cores, 8 actors ask for a quarter each). A class
given a share of its own (`num_cpus_per_worker=...`) uses that instead. `describe()` says
which default a run had, for its record.

A central learner (the driver's) computes on `learner_device()`: the first GPU this process
sees, else the CPU. An actor is assigned a GPU only where it asks for one (`num_gpus`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import ray

DEFAULT_ACTORS = 8  # a lab that does not say: on 2 cores, a quarter of a CPU each
SHARE_STEPS = 10_000  # Ray counts CPUs in ten-thousandths, as whole numbers

_actors, _share = DEFAULT_ACTORS, None


def init(num_cpus: int | None = None, actors: int = DEFAULT_ACTORS, **options) -> dict:
    """Connect to RAY_ADDRESS or start a local instance, and size the actors' default CPU
    share for `actors` held at once; return the cluster's resources. Idempotent."""
    global _actors, _share
    if not ray.is_initialized():
        options.setdefault("log_to_driver", False)  # actors' prints stay in Ray's logs, not in a lab's output
        address = os.environ.get("RAY_ADDRESS")
        if address:
            ray.init(address=address, **options)
        else:
            # a new instance, never a cluster some other process started here
            ray.init(address="local", num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, **options)
    _actors, _share = actors, share([n["Resources"].get("CPU", 0.0) for n in _alive()], actors)
    return ray.cluster_resources()


def share(node_cpus: Sequence[float], actors: int) -> float:
    """The CPU each of `actors` actors asks for on nodes of `node_cpus` CPUs: one where the
    nodes have one for each, else the largest number of ten-thousandths at which all of
    them fit, each node taking as many as its own CPUs hold (an actor cannot straddle two)."""
    if actors < 1:
        raise ValueError(f"actors must be at least 1, not {actors}")
    steps = [round(c * SHARE_STEPS) for c in node_cpus]

    def fit(each: int) -> int:
        return sum(s // each for s in steps)

    if fit(1) < actors:
        raise ValueError(f"{actors} actors do not fit on nodes of {list(node_cpus)} CPUs")
    low, high = 1, SHARE_STEPS  # fit() falls as the share grows: the largest share that fits
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if fit(middle) >= actors else (low, middle - 1)
    return low / SHARE_STEPS


def actor_cpus() -> float:
    """The CPU share a rollout worker, server or participant asks for by default: set by
    `init`; a quarter before it (a process that started Ray some other way)."""
    return 0.25 if _share is None else _share


def learner_device() -> str:
    """Where a central learner in this process computes: "cuda" where torch sees a GPU, else "cpu"."""
    import torch  # (a participant's process, which imports this module, need not import torch)

    return "cuda" if torch.cuda.is_available() else "cpu"


def describe() -> dict:
    """Where this process's Ray runs, for a run's record: a one-line summary, the number of
    nodes, each node's id (its first 12 hex digits), CPUs, GPUs and memory, and the default
    share, and where this process's learners compute. Addresses are left out: the record
    may be published."""
    nodes = [
        {"node_id": n["NodeID"][:12], "cpus": n["Resources"].get("CPU", 0.0),
         "gpus": n["Resources"].get("GPU", 0.0), "memory_gib": round(n["Resources"].get("memory", 0.0) / 2**30, 1)}
        for n in _alive()
    ]
    cpus, gpus = sum(n["cpus"] for n in nodes), sum(n["gpus"] for n in nodes)
    cluster = bool(os.environ.get("RAY_ADDRESS"))
    where = f"a Ray cluster of {len(nodes)} node{'s' * (len(nodes) != 1)}" if cluster else "a local Ray on this machine"
    each = actor_cpus()
    default = (f"an actor asks for 1 CPU by default: one for each of the {_actors} actors the lab may hold at once"
               if each >= 1 else
               f"an actor asks for {each:g} CPU by default: the {_actors} actors the lab may hold at once share the CPUs")
    learner = learner_device()
    if learner == "cuda":
        import torch

        learner = f"cuda ({torch.cuda.get_device_name()})"
    on = "the CPU" if learner == "cpu" else f"the GPU, {learner}"
    return {
        "summary": f"{where}, {cpus:g} CPUs, {gpus:g} GPUs; {default}; a central learner computes on {on}",
        "nodes": len(nodes),
        "cluster": cluster,
        "ray": ray.__version__,
        "per_node": nodes,
        "actors": _actors,
        "actor_cpus": each,
        "learner_device": learner,
    }


def _alive() -> list[dict]:
    return [n for n in ray.nodes() if n["Alive"]]


def shutdown() -> None:
    global _actors, _share
    if ray.is_initialized():
        ray.shutdown()
    _actors, _share = DEFAULT_ACTORS, None
