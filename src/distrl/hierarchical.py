"""HierarchicalWorkerSet: delegation when one driver would be the bottleneck.

The RLlib paper's answer to a driver that cannot keep up with many evaluators: the driver
talks to a few sub-drivers, each of which drives its own group of workers and hands back
one aggregated batch. The driver's control stays centralized (it still decides when every
group samples), but its per-step work falls from N results to N / group size. The price:
one more process per group, and one more hop for every batch, which the sub-driver
receives, concatenates with its group's others and sends on. The actors lab measures both
sides on one machine.

Weights travel as one object-store reference: the driver puts them once, each sub-driver
passes the same reference on to its workers (wrapped in a list, so Ray hands the
sub-driver the reference rather than a copy of the array).

The driver starts every worker itself and hands each sub-driver its group's handles, so
workers and sub-drivers start at the same time rather than one level after the other; the
workers' results still go to their sub-driver, which is what takes them off the driver.
"""

from __future__ import annotations

import ray

from .cluster import actor_cpus
from .rollout_worker import EpisodeStats, RolloutWorker, WorkerConfig
from .sample_batch import SampleBatch
from .worker_set import Sampled


class SubDriver:
    """Drives one group of remote RolloutWorkers (actor handles) and aggregates their batches."""

    def __init__(self, workers: list):
        self.workers = workers

    def set_weights(self, wrapped: list) -> None:
        (weights,) = wrapped  # an ObjectRef, shared with every worker of the group
        ray.get([w.set_weights.remote(weights) for w in self.workers])

    def sample(self) -> tuple[SampleBatch, EpisodeStats]:
        results = ray.get([w.sample_with_episodes.remote() for w in self.workers])
        batch = SampleBatch.concat([b for b, _ in results])
        returns = tuple(r for _, e in results for r in e.returns)
        lengths = tuple(n for _, e in results for n in e.lengths)
        return batch, EpisodeStats(returns, lengths)


class HierarchicalWorkerSet:
    """A local worker and `num_groups` sub-drivers of `group_size` remote workers each."""

    def __init__(self, config: WorkerConfig, num_groups: int, group_size: int, loss=None,
                 num_cpus_per_worker: float | None = None):
        self.local = RolloutWorker(config, 0, loss)
        num_cpus_per_worker = actor_cpus() if num_cpus_per_worker is None else num_cpus_per_worker
        worker = ray.remote(num_cpus=num_cpus_per_worker)(RolloutWorker)
        sub_driver = ray.remote(num_cpus=num_cpus_per_worker)(SubDriver)
        self.workers = [worker.remote(config, i, loss) for i in range(1, num_groups * group_size + 1)]
        self.groups = [sub_driver.remote(self.workers[g * group_size:(g + 1) * group_size]) for g in range(num_groups)]

    def broadcast_weights(self) -> None:
        weights = ray.put(self.local.get_weights())
        ray.get([group.set_weights.remote([weights]) for group in self.groups])

    def sync_sample(self) -> list[Sampled]:
        """One aggregated batch per group; `worker` is the group's number (1-based)."""
        results = ray.get([group.sample.remote() for group in self.groups])
        return [Sampled(g + 1, batch, episodes) for g, (batch, episodes) in enumerate(results)]

    def stop(self) -> None:
        for actor in self.groups + self.workers:
            ray.kill(actor)
        self.groups, self.workers = [], []
