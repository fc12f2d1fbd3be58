"""AsyncGradients: workers compute gradients, a parameter server applies them as they come (A3C).

The RLlib paper's asynchronous gradients optimizer, on distrl's parameter server. Each remote
evaluator samples and computes g = ∇θ L on its own batch with the weights it last pulled;
the driver forwards g, by reference, to the server, which applies it at once (Adam on the
server); the worker pulls the new weights and goes again. No worker waits for another, and
a gradient may be stale: computed on weights that other gradients have moved since.

The driver is in the control path only: gradients and weights travel as object references
(worker → server, server → worker), and the driver fetches just each worker's small report.
So its `learn_s` counts only submitting each push; the server applies them meanwhile.
"""

from __future__ import annotations

import numpy as np
import ray

from ..parameter_server import Optimizer, ShardedServer
from ..worker_set import WorkerSet
from .base import PolicyOptimizer


class AsyncGradients(PolicyOptimizer):
    def __init__(self, workers: WorkerSet, gradients_per_step: int = 16,
                 optimizer: Optimizer = Optimizer("adam", lr=1e-3)):
        super().__init__()
        assert workers.remotes, "AsyncGradients needs remote workers"
        self.workers, self.gradients_per_step = workers, gradients_per_step
        # One shard: a policy of thousands of parameters gains nothing from splitting.
        self.server = ShardedServer(workers.local.get_weights(), shards=1, optimizer=optimizer)
        self.versions = [0] * len(workers.remotes)  # the server version each worker last pulled
        self.gradients: dict = {}  # worker slot -> its gradient in flight (a reference)
        self.workers.broadcast_weights()

    def step(self) -> dict[str, float]:
        """`gradients_per_step` gradients applied; every worker is kept busy until the last
        requests are in, so nothing is in flight between steps (a checkpoint sees it all)."""
        pending = {self._request(i): i for i in range(min(len(self.workers.remotes), self.gradients_per_step))}
        applied, stats = 0, {}
        while pending:
            with self.timed("sample_s"):  # a lost worker is replaced and asked again (_request)
                i, report = self.workers.next_result(pending, self._request, "sample_and_compute_gradients")
            self.stats.add_experience(report["steps"], report["episodes"])
            with self.timed("learn_s"):  # θ ← Adam(θ, g), on the server
                self.server.push(self.gradients.pop(i), self.versions[i], wait=False)
                self.stats.updates += 1
            applied, stats = applied + 1, report["stats"]
            if applied + len(pending) < self.gradients_per_step:
                pending[self._request(i)] = i
        with self.timed("sync_s"):
            self.server.versions()  # every push has been applied (and a lost server surfaces here)
        return stats

    def _request(self, i: int):
        """Worker i pulls the current weights (by reference) and computes its next gradient
        (kept in `gradients[i]`); its calls run in order, so the gradient is on the weights
        it was just sent. Returns the reference to its report."""
        with self.timed("sync_s"):
            (weights,) = self.server.pull()
            self.versions[i] = self.stats.updates  # every push so far is in what it pulls
            worker = self.workers.remotes[i]
            worker.set_weights.remote(weights)
            self.gradients[i], report = worker.sample_and_compute_gradients.remote()
            return report

    def weights(self) -> np.ndarray:
        """The server's current weights."""
        return ray.get(self.server.pull()[0])

    def get_state(self) -> dict:
        return {"server": self.server.get_state(), "versions": list(self.versions),
                "workers": ray.get([w.get_state.remote() for w in self.workers.remotes])}

    def set_state(self, state: dict) -> None:
        self.server.set_state(state["server"])
        self.versions = list(state["versions"])
        ray.get([w.set_state.remote(s) for w, s in zip(self.workers.remotes, state["workers"], strict=True)])

    def stop(self) -> None:
        self.server.stop()
        self.workers.stop()
