"""The one way labs and tests get Ray.

With RAY_ADDRESS set, connect to that cluster; otherwise start a local Ray sized to this
machine. On 2 cores a lab may want more actors than cores: actors ask for a fraction of a
CPU (`ACTOR_CPUS`), so the scheduler places them all, and the OS shares the cores.
"""

from __future__ import annotations

import os

import ray

ACTOR_CPUS = 0.25  # what one rollout worker or server actor asks of the scheduler


def init(num_cpus: int | None = None, **options) -> dict:
    """Connect to RAY_ADDRESS or start a local instance; return its resources. Idempotent."""
    if ray.is_initialized():
        return ray.cluster_resources()
    address = os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, **options)
    else:
        ray.init(
            address="local",  # a new instance, never a cluster some other process started here
            num_cpus=num_cpus or os.cpu_count(),
            include_dashboard=False,
            log_to_driver=False,  # actors' prints stay in Ray's logs, not in a lab's output
            **options,
        )
    return ray.cluster_resources()


def shutdown() -> None:
    if ray.is_initialized():
        ray.shutdown()
