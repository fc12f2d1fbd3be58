"""AsyncReplay: Ape-X, acting, storing and learning as a pipeline that never waits.

Horgan et al. (2018); in the RLlib paper, the optimizer that pipelines sampling, replay and
learning. Three kinds of process, each always busy:

    evaluators  act with their own ε_i = ε^(1 + 7i/(N−1)) (a spread from exploring to
                greedy) and compute each row's first priority; each has two requests
                in flight, so it never waits for the driver between batches
    replay      shards (Ray actors holding a `ReplayBuffer`) store what the evaluators send,
                round-robin, and answer sample requests; `requests_per_shard` are kept in
                flight each, so a minibatch is waiting whenever the learner wants one
    learner     this process: learns on a minibatch as it lands, sends its TD errors back
                as the rows' priorities, and pushes θ to the evaluators every
                `push_every` updates

A batch goes from an evaluator to a shard by reference: the driver forwards the object, it
never fetches it. An evaluator that dies is replaced (with the latest θ); a shard that dies
is restarted empty, and the learner samples it again once it holds `learning_starts` rows
again. `step()` returns after `updates_per_step` updates with every request still in
flight; a checkpoint (`get_state`) lets them land first.

θ travels inside each `set_weights` call rather than as one shared object: Ray inlines an
argument under 100 KB into the call, and for a network this small (18 KB) a `ray.put`
costs more than the calls it would save (0.9 ms against 0.3 ms per call, measured on two
cores). A network of megabytes, or hundreds of evaluators, would want the shared object.
"""

from __future__ import annotations

import numpy as np
import ray

from ..cluster import actor_cpus
from ..q_learning import QLearner
from ..replay import ReplayBuffer
from ..replay_worker import ReplayWorker, ReplayWorkerConfig
from ..worker_set import WORKER_LOST
from .base import PolicyOptimizer


def apex_epsilons(num_workers: int, epsilon: float = 0.4, alpha: float = 7.0) -> list[float]:
    """ε_i = ε^(1 + α·i/(N−1)) for i = 0 … N−1 (one evaluator explores with ε)."""
    return [epsilon ** (1 + alpha * i / max(1, num_workers - 1)) for i in range(num_workers)]


def _update_then_sample(buffer: ReplayBuffer, update: tuple | None, n: int):
    """Run in a shard: new priorities for the rows last learned on, then the next minibatch."""
    if update is not None:
        buffer.update_priorities(*update)
    return buffer.sample(n)


class AsyncReplay(PolicyOptimizer):
    def __init__(self, config: ReplayWorkerConfig, num_workers: int, learner: QLearner, buffer_class: type[ReplayBuffer],
                 buffer_options: dict, num_shards: int = 1, batch_size: int = 256, learning_starts: int = 1000,
                 push_every: int = 10, updates_per_step: int = 16, requests_per_shard: int = 2, timeout_s: float = 60.0):
        super().__init__()
        self.config, self.learner, epsilons = config, learner, apex_epsilons(num_workers)
        self.batch_size, self.learning_starts, self.push_every = batch_size, learning_starts, push_every
        self.updates_per_step, self.requests_per_shard, self.timeout_s = updates_per_step, requests_per_shard, timeout_s
        worker_class = ray.remote(num_cpus=actor_cpus())(ReplayWorker)
        self.start_worker = lambda i: worker_class.remote(config, i, epsilons[i], self.learner.get_weights())
        shard_class = ray.remote(num_cpus=actor_cpus())(buffer_class)
        self.start_shard = lambda j: shard_class.remote(**buffer_options, seed=config.seed + j)
        self.workers = [self.start_worker(i) for i in range(num_workers)]
        self.shards = [self.start_shard(j) for j in range(num_shards)]
        self.stored, self.next_shard = [0] * num_shards, 0  # rows sent to each shard since it (re)started
        self.replaced, self.restarted = [], []  # evaluators that died and were replaced, shards restarted
        # In flight: report reference → (evaluator, its actor, batch and priorities references); minibatch → shard
        self.sampling, self.replaying = {}, {}
        self._request_samples()

    def _request_samples(self, workers: list[int] | None = None) -> None:
        """By default two requests per evaluator, so it starts the next batch as soon as one is done."""
        for i in list(range(len(self.workers))) * 2 if workers is None else workers:
            batch, priorities, report = self.workers[i].sample_for_replay.remote()
            self.sampling[report] = (i, self.workers[i], batch, priorities)

    def step(self) -> dict[str, float]:
        updates, stats = 0, {}
        while updates < self.updates_per_step:
            self._request_minibatches()
            with self.timed("sample_s"):  # the learner waiting: the pipeline did not keep up
                ready = self._wait([*self.sampling, *self.replaying])
            if ready in self.sampling:
                with self.timed("sync_s"):  # forwarding experience (weight pushes are not timed apart)
                    self._request_samples([self._store(ready)])
            elif (learned := self._learn(ready)) is not None:
                updates, stats = updates + 1, learned
        return stats

    def _wait(self, refs: list):
        ready, _ = ray.wait(refs, num_returns=1, timeout=self.timeout_s)
        if not ready:
            raise TimeoutError(f"no evaluator or replay shard answered within {self.timeout_s:g} s")
        return ready[0]

    def _store(self, report_ref) -> int:
        """Forward an evaluator's batch to the next shard, by reference; returns the evaluator."""
        i, worker, batch, priorities = self.sampling.pop(report_ref)
        try:
            report = ray.get(report_ref)
        except WORKER_LOST:
            if worker is self.workers[i]:  # its other request fails too: replace it once
                self.replaced.append(i)
                self.workers[i] = self.start_worker(i)
            return i
        j, self.next_shard = self.next_shard, (self.next_shard + 1) % len(self.shards)
        self.shards[j].add.remote(batch, priorities)  # a lost shard shows at its next sample
        self.stored[j] += report["rows"]
        self.stats.add_experience(report["rows"], report["episodes"])
        return i

    def _request_minibatches(self, learned: dict | None = None) -> None:
        """Keep `requests_per_shard` minibatch requests in flight to every shard holding
        enough rows; `learned` (shard → the last minibatch's slots, serials and TD errors)
        rides on the next request to that shard, so one round trip serves both."""
        for j, shard in enumerate(self.shards):
            if self.stored[j] * len(self.shards) >= self.learning_starts:
                for _ in range(self.requests_per_shard - list(self.replaying.values()).count(j)):
                    request = shard.__ray_call__.remote(_update_then_sample, (learned or {}).pop(j, None), self.batch_size)
                    self.replaying[request] = j

    def _learn(self, minibatch_ref) -> dict[str, float] | None:
        j = self.replaying.pop(minibatch_ref)
        try:
            minibatch = ray.get(minibatch_ref)
        except WORKER_LOST:  # its other requests are lost too; the shard starts again, empty
            self.restarted.append(j)
            self.shards[j], self.stored[j] = self.start_shard(j), 0
            self.replaying = {ref: s for ref, s in self.replaying.items() if s != j}
            return None
        with self.timed("learn_s"):
            td_errors, stats = self.learner.learn_on_batch(minibatch)
        self.stats.updates += 1
        self._request_minibatches({j: (minibatch["slots"], minibatch["serials"], td_errors)})
        if self.stats.updates % self.push_every == 0:  # runs on each evaluator after the samples already queued
            weights = self.learner.get_weights()  # inside each call, no ray.put: see the module's notes
            for worker in self.workers:
                worker.set_weights.remote(weights)
        return stats

    def weights(self) -> np.ndarray:
        return self.learner.get_weights()

    def save(self, path) -> None:
        self._drain()  # first, so that the statistics saved count the batches in flight too
        super().save(path)

    def _drain(self) -> None:
        """Store every batch in flight. Minibatches in flight are dropped unused; calls sent
        to a shard later run after them (an actor runs its calls in order)."""
        while self.sampling:
            self._store(self._wait(list(self.sampling)))
        self.replaying = {}

    def get_state(self) -> dict:
        self._drain()
        state = {"learner": self.learner.get_state(), "stored": list(self.stored),
                 "shards": ray.get([shard.get_state.remote() for shard in self.shards]),
                 "workers": ray.get([worker.get_state.remote() for worker in self.workers])}
        self._request_samples()
        return state

    def set_state(self, state: dict) -> None:
        self.sampling, self.replaying = {}, {}  # what is in flight lands before the calls below
        self.learner.set_state(state["learner"])
        self.stored = list(state["stored"])
        ray.get([shard.set_state.remote(s) for shard, s in zip(self.shards, state["shards"], strict=True)])
        ray.get([worker.set_state.remote(s) for worker, s in zip(self.workers, state["workers"], strict=True)])
        self._request_samples()

    def stop(self) -> None:
        for actor in self.workers + self.shards:
            ray.kill(actor)
