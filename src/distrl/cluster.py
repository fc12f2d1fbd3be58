"""The one way labs and tests get Ray, and how much of a CPU each actor asks for.

With RAY_ADDRESS set, connect to that cluster; otherwise start a local Ray sized to this
machine. A lab says how many actors it holds at once (`init(actors=...)`). Where the
cluster has a CPU for each of them, every actor asks the scheduler for one whole CPU, so
the scaling a lab measures there is that of separate cores; where it has fewer, each asks
for an equal share, the scheduler places them all, and the operating system shares the
cores (on 2 cores, 8 actors ask for a quarter each). `describe()` says which happened,
for the run's record.
"""

from __future__ import annotations

import math
import os

import ray

DEFAULT_ACTORS = 8  # a lab that does not say: on 2 cores, a quarter of a CPU each
SHARE_STEPS = 10_000  # Ray schedules CPU fractions to a ten-thousandth


class NoCluster(RuntimeError):
    """A profile meant for a cluster was run without one."""


_actors, _share = DEFAULT_ACTORS, None


def init(num_cpus: int | None = None, actors: int = DEFAULT_ACTORS, require_cluster: bool = False,
         **options) -> dict:
    """Connect to RAY_ADDRESS or start a local instance, and size the actors' CPU share for
    `actors` held at once; return the cluster's resources. Idempotent."""
    global _actors, _share
    address = os.environ.get("RAY_ADDRESS")
    if require_cluster and not address:
        raise NoCluster("this profile is meant for a Ray cluster: start one and set RAY_ADDRESS "
                        "(README, 'Running the labs on a Ray cluster')")
    if not ray.is_initialized():
        options.setdefault("log_to_driver", False)  # actors' prints stay in Ray's logs, not in a lab's output
        if address:
            ray.init(address=address, **options)
        else:
            # a new instance, never a cluster some other process started here
            ray.init(address="local", num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, **options)
    resources = ray.cluster_resources()
    _actors, _share = actors, share(resources.get("CPU", 0.0), actors)
    return resources


def share(cpus: float, actors: int) -> float:
    """The CPU each of `actors` actors asks for on a cluster of `cpus` CPUs: one where there
    is one for each, an equal share (rounded down to what Ray schedules) where there is not."""
    if actors < 1:
        raise ValueError(f"actors must be at least 1, not {actors}")
    if cpus >= actors:
        return 1.0
    return max(1, math.floor(cpus * SHARE_STEPS / actors)) / SHARE_STEPS


def actor_cpus() -> float:
    """The CPU share a rollout worker, server or participant asks for by default: set by
    `init`; a quarter before it (a process that started Ray some other way)."""
    return 0.25 if _share is None else _share


def describe() -> dict:
    """Where this process's Ray runs, for a run's record: a one-line summary, the number of
    nodes, and each node's id (its first 12 hex digits), address, CPUs, GPUs and memory."""
    nodes = [
        {"node_id": n["NodeID"][:12], "address": n["NodeManagerAddress"], "cpus": n["Resources"].get("CPU", 0.0),
         "gpus": n["Resources"].get("GPU", 0.0), "memory_gib": round(n["Resources"].get("memory", 0.0) / 2**30, 1)}
        for n in ray.nodes() if n["Alive"]
    ]
    cpus, gpus = sum(n["cpus"] for n in nodes), sum(n["gpus"] for n in nodes)
    address = os.environ.get("RAY_ADDRESS") or None
    where = f"a Ray cluster at {address}" if address else "a local Ray on this machine"
    each = f"each of up to {_actors} actors asks for {actor_cpus():g} CPU"
    each += "" if actor_cpus() >= 1 else f", so they share {cpus:g} CPUs"
    return {
        "summary": f"{where}: {len(nodes)} node{'s' * (len(nodes) != 1)}, {cpus:g} CPUs, {gpus:g} GPUs; {each}",
        "nodes": len(nodes),
        "ray": ray.__version__,
        "address": address,
        "per_node": nodes,
        "actors": _actors,
        "actor_cpus": actor_cpus(),
    }


def shutdown() -> None:
    global _share
    if ray.is_initialized():
        ray.shutdown()
    _share = None
