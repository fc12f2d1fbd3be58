"""WorkerSet: one local and N remote policy evaluators, driven by logically centralized control.

The driver decides who samples and when; the evaluators only answer. Three ways to drive them:

- `sync_sample()`: every remote worker samples at once; the driver waits for all (ray.get).
- `async_sample(n)`: one request in flight per worker; each batch is yielded as soon as it
  arrives (ray.wait) and that worker is asked again at once, so no worker waits for the
  slowest. At most one request per worker is ever in flight (backpressure).
- `broadcast_weights()`: the local policy's weights go into the object store once, and every
  worker receives the same reference, not a copy each.

Fault tolerance, and what it guarantees: a worker whose process dies is detected when its
result is fetched, reported by index, and replaced by a fresh actor holding the current
weights; its request is sent again to the replacement. A batch is counted once, and only
whole: a dead worker's partial batch never leaves its process. Not guaranteed: the
replacement's environments start new episodes (the dead worker's running episodes are lost
and never reported), and its random streams restart from its seed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

from .cluster import ACTOR_CPUS
from .rollout_worker import EpisodeStats, RolloutWorker, WorkerConfig
from .sample_batch import SampleBatch

WORKER_LOST = (RayActorError, ActorDiedError, ActorUnavailableError)


@dataclass(frozen=True)
class Sampled:
    """One batch and the episodes it completed, from worker `worker`."""

    worker: int
    batch: SampleBatch
    episodes: EpisodeStats


class WorkerSet:
    """A local RolloutWorker (index 0, holds the weights the driver learns) and N remote ones."""

    def __init__(
        self,
        config: WorkerConfig,
        num_workers: int,
        loss=None,
        num_cpus_per_worker: float = ACTOR_CPUS,
        on_replace: Callable[[int], None] | None = None,
        actor_options: dict | None = None,
        worker_class: type = RolloutWorker,
    ):
        self.config, self.loss = config, loss
        self.local = RolloutWorker(config, 0, loss)
        # worker_class: RolloutWorker or a subclass that adds what an optimizer needs of it.
        self.remote_class = ray.remote(num_cpus=num_cpus_per_worker, **(actor_options or {}))(worker_class)
        self.remotes = [self._start(i) for i in range(1, num_workers + 1)]
        self.on_replace = on_replace
        self.replaced: list[int] = []  # indexes of workers that died and were replaced

    def _start(self, index: int):
        return self.remote_class.remote(self.config, index, self.loss)

    def broadcast_weights(self, wait: bool = True) -> None:
        """Send the local weights to every remote worker through one object-store entry.
        With wait=False it returns at once: each worker applies them after the calls it
        already has queued (a sample in flight) and before any sent later."""
        weights = ray.put(self.local.get_weights())
        done = [worker.set_weights.remote(weights) for worker in self.remotes]
        if wait:
            ray.get(done)

    def sync_sample(self) -> list[Sampled]:
        """One batch from every remote worker (the local one when there are none)."""
        if not self.remotes:
            batch, episodes = self.local.sample_with_episodes()
            return [Sampled(0, batch, episodes)]
        return self.collect(self.request_samples())

    def request_samples(self) -> list:
        """One sample request per remote worker, sent now; `collect` gathers the batches."""
        return [worker.sample_with_episodes.remote() for worker in self.remotes]

    def collect(self, requests: list) -> list[Sampled]:
        """The batches of `request_samples()`, in worker order; a lost worker is replaced
        and asked again."""
        pending = {ref: i for i, ref in enumerate(requests)}
        results: dict[int, Sampled] = {}
        while pending:
            ref, i = pending.popitem()
            try:
                batch, episodes = ray.get(ref)
                results[i] = Sampled(i + 1, batch, episodes)
            except WORKER_LOST:
                pending[self._replace(i).sample_with_episodes.remote()] = i
        return [results[i] for i in sorted(results)]

    def async_sample(self, num_batches: int) -> Iterator[Sampled]:
        """Yield `num_batches` batches in the order they complete, keeping every worker busy."""
        if not self.remotes:
            raise ValueError("async_sample needs remote workers (num_workers >= 1)")
        pending = {worker.sample_with_episodes.remote(): i for i, worker in enumerate(self.remotes)}
        delivered = 0
        try:
            while delivered < num_batches:
                [ready], _ = ray.wait(list(pending), num_returns=1)
                i = pending.pop(ready)
                try:
                    batch, episodes = ray.get(ready)
                except WORKER_LOST:
                    pending[self._replace(i).sample_with_episodes.remote()] = i
                    continue
                delivered += 1
                if delivered + len(pending) < num_batches:
                    pending[self.remotes[i].sample_with_episodes.remote()] = i
                yield Sampled(i + 1, batch, episodes)
        finally:
            for ref in pending:  # requests no longer wanted
                ray.cancel(ref)

    def _replace(self, i: int):
        """Start a fresh actor in slot i with the current weights; report it."""
        self.replaced.append(i + 1)
        if self.on_replace:
            self.on_replace(i + 1)
        worker = self._start(i + 1)
        worker.set_weights.remote(ray.put(self.local.get_weights()))
        self.remotes[i] = worker
        return worker

    def stop(self) -> None:
        for worker in self.remotes:
            ray.kill(worker)
        self.remotes = []
