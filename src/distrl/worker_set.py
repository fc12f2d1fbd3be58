"""WorkerSet: one local and N remote policy evaluators, driven by logically centralized control.

The driver decides who samples and when; the evaluators only answer. Three ways to drive them:

- `sync_sample()`: every remote worker samples at once; the driver waits for all (ray.get).
- `async_sample(n)`: one request in flight per worker; each batch is yielded as soon as it
  arrives (ray.wait) and that worker is asked again at once, so no worker waits for the
  slowest. At most one request per worker is ever in flight (backpressure).
- `broadcast_weights()`: the local policy's weights go into the object store once, and every
  worker receives the same reference, not a copy each.

Fault tolerance, and what it guarantees. Every result passes through `next_result` (or,
for a caller that must resynchronise its workers itself, `get` and then `recover`). A worker
whose process dies is detected when its result is fetched, reported by index in `replaced`,
and replaced by a fresh actor holding the local weights; its request is sent again to the
replacement (an optimizer whose current weights live elsewhere sends them with the
request). A batch is counted once, and only whole: a dead worker's partial batch never
leaves its process. A call that gets no answer for `timeout_s` (a hung environment) raises
`WorkerTimeout` naming the worker, rather than blocking the driver forever. Not guaranteed:
the replacement's environments start new episodes (the dead worker's running episodes are
lost and never reported), and its random streams restart from its seed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

from .cluster import actor_cpus
from .rollout_worker import EpisodeStats, RolloutWorker, WorkerConfig
from .sample_batch import SampleBatch

WORKER_LOST = (RayActorError, ActorDiedError, ActorUnavailableError)


class WorkerTimeout(TimeoutError):
    """Remote workers (by index, 1-based) did not answer `call` within `timeout_s` seconds.
    They are left as they are: stop the WorkerSet, or find out what hangs."""

    def __init__(self, workers: list[int], call: str, timeout_s: float):
        self.workers, self.call, self.timeout_s = workers, call, timeout_s
        super().__init__(f"worker{'s' * (len(workers) > 1)} {', '.join(map(str, workers))} did not answer {call} "
                         f"within {timeout_s:g} s "
                         "(a hung environment? a slower one needs a larger WorkerSet timeout_s)")


@dataclass(frozen=True)
class Sampled:
    """One batch and the episodes it completed, from worker `worker`."""

    worker: int
    batch: SampleBatch
    episodes: EpisodeStats


class WorkerSet:
    """A local RolloutWorker (index 0, holds the weights the driver learns) and N remote ones;
    remote worker i + 1 is in slot i of `remotes`."""

    def __init__(
        self,
        config: WorkerConfig,
        num_workers: int,
        loss=None,
        num_cpus_per_worker: float | None = None,
        on_replace: Callable[[int], None] | None = None,
        actor_options: dict | None = None,
        worker_class: type = RolloutWorker,
        timeout_s: float | None = 60.0,
    ):
        # timeout_s: the longest the driver waits for an answer (a new worker's start-up included)
        self.config, self.loss, self.timeout_s = config, loss, timeout_s
        self.local = RolloutWorker(config, 0, loss)
        # worker_class: RolloutWorker or a subclass that adds what an optimizer needs of it.
        num_cpus = actor_cpus() if num_cpus_per_worker is None else num_cpus_per_worker
        self.remote_class = ray.remote(num_cpus=num_cpus, **(actor_options or {}))(worker_class)
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
        pending = {worker.set_weights.remote(weights): i for i, worker in enumerate(self.remotes)}
        while wait and pending:
            self.next_result(pending, lambda i: self.remotes[i].set_weights.remote(weights), "set_weights")

    def sync_sample(self, num_workers: int | None = None) -> list[Sampled]:
        """One batch from every remote worker, or from the first `num_workers` of them (the
        local one when there are none)."""
        if not self.remotes and num_workers is None:
            batch, episodes = self.local.sample_with_episodes()
            return [Sampled(0, batch, episodes)]
        return self.collect(self.request_samples(num_workers))

    def request_samples(self, num_workers: int | None = None) -> list:
        """One sample request per remote worker (the first `num_workers`: all by default),
        sent now; `collect` gathers the batches."""
        count = len(self.remotes) if num_workers is None else num_workers
        if not 1 <= count <= len(self.remotes):
            raise ValueError(f"asked for samples from {count} of {len(self.remotes)} remote workers")
        return [self._request_sample(i) for i in range(count)]

    def collect(self, requests: list) -> list[Sampled]:
        """The batches of `request_samples()`, in worker order."""
        pending = {ref: i for i, ref in enumerate(requests)}
        results: dict[int, Sampled] = {}
        while pending:
            i, (batch, episodes) = self.next_result(pending, self._request_sample, "sample_with_episodes")
            results[i] = Sampled(i + 1, batch, episodes)
        return [results[i] for i in sorted(results)]

    def async_sample(self, num_batches: int) -> Iterator[Sampled]:
        """Yield `num_batches` batches in the order they complete, keeping every worker busy."""
        if not self.remotes:
            raise ValueError("async_sample needs remote workers (num_workers >= 1)")
        pending = {self._request_sample(i): i for i in range(len(self.remotes))}
        delivered = 0
        try:
            while delivered < num_batches:
                i, (batch, episodes) = self.next_result(pending, self._request_sample, "sample_with_episodes")
                delivered += 1
                if delivered + len(pending) < num_batches:
                    pending[self._request_sample(i)] = i
                yield Sampled(i + 1, batch, episodes)
        finally:
            for ref in pending:  # requests no longer wanted
                ray.cancel(ref)

    def _request_sample(self, i: int):
        return self.remotes[i].sample_with_episodes.remote()

    def next_result(self, pending: dict, resend: Callable[[int], Any], call: str) -> tuple[int, Any]:
        """The first result to arrive among `pending` (request → slot), taken out of it, as
        (slot, value). A lost worker is replaced and `resend(slot)`, which must send its
        request again and return the new reference, puts it back in `pending`. If none
        answers within timeout_s, WorkerTimeout names every worker still waited for."""
        while True:
            # fetch_local=False: the timeout is for the worker's answer, not for moving it here.
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=self.timeout_s, fetch_local=False)
            if not ready:
                raise WorkerTimeout(sorted(i + 1 for i in pending.values()), call, self.timeout_s)
            i = pending.pop(ready[0])
            try:
                return i, ray.get(ready[0])
            except WORKER_LOST:
                self.replace(i)
                pending[resend(i)] = i

    def get(self, requests: list, call: str) -> list:
        """ray.get of one request per remote worker (in slot order), for a caller that
        replaces lost workers itself: a lost worker's error is raised as it is. Those not
        answered within timeout_s are named in a WorkerTimeout."""
        self._wait_all(requests, call)
        return ray.get(requests)

    def recover(self, error: Exception):
        """After `error` from a caller's own requests: replace every worker that has died
        and return one that lived; raise `error` again if none died (it is not a lost
        worker) or all did (no worker holds a state to go on from). A worker runs its calls
        in order, so one that answers the check has finished (or failed) all sent before."""
        pings = [worker.__ray_ready__.remote() for worker in self.remotes]  # Ray's no-op method
        self._wait_all(pings, "a ping")
        lost = [i for i, ping in enumerate(pings) if _died(ping)]
        if not lost or len(lost) == len(self.remotes):
            raise error
        for i in lost:
            self.replace(i)
        return next(worker for i, worker in enumerate(self.remotes) if i not in lost)

    def _wait_all(self, requests: list, call: str) -> None:
        """Return once every request (one per slot) has answered, or raise WorkerTimeout
        naming those that have not within timeout_s."""
        ready, _ = ray.wait(requests, num_returns=len(requests), timeout=self.timeout_s, fetch_local=False)
        if len(ready) < len(requests):
            done = set(ready)
            raise WorkerTimeout([i + 1 for i, ref in enumerate(requests) if ref not in done], call, self.timeout_s)

    def replace(self, i: int):
        """Start a fresh actor in slot i with the local weights; report it."""
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


def _died(request) -> bool:
    """Whether an answered request failed because its worker died."""
    try:
        ray.get(request)
        return False
    except WORKER_LOST:
        return True
