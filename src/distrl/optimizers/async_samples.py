"""AsyncSamples: actors sample without pause, one learner consumes batches as they land (IMPALA).

Espeholt et al. (2018), in the RLlib paper's terms an asynchronous sampling optimizer. Each
remote evaluator always has a sample request in flight. When a batch arrives, its worker is
at once sent the learner's latest weights (one shared object) and its next request, and only
then does the learner learn on the batch, so sampling and learning overlap. The price is
staleness: a batch was sampled by weights a few updates old. V-trace (`distrl.vtrace`)
corrects for it: the learner re-evaluates the batch under its current policy π, weighs
each step by the truncated ratio π/μ to the behaviour policy μ that sampled it, and learns
with the A2C loss on the corrected targets and advantages.

The learner computes on `device`; V-trace itself runs on the host (a recursion over a
fragment's few hundred steps), the batch's forward passes and the update on the device.
"""

from __future__ import annotations

import numpy as np
import ray
import torch

from ..sample_batch import SampleBatch
from ..vtrace import ratio_stats, vtrace
from ..worker_set import WorkerSet
from .base import PolicyOptimizer


class AsyncSamples(PolicyOptimizer):
    def __init__(self, workers: WorkerSet, batches_per_step: int = 16, lam: float = 1.0,
                 rho_bar: float = 1.0, c_bar: float = 1.0, device: str = "cpu"):
        super().__init__()
        assert workers.remotes, "AsyncSamples needs remote workers"
        self.workers, self.batches_per_step = workers, batches_per_step
        self.policy = workers.local.policy.to(device)  # the learner's; its loss should be a2c_loss
        self.vtrace_options = dict(gamma=workers.config.gamma, lam=lam, rho_bar=rho_bar, c_bar=c_bar)
        self.weights_ref = ray.put(self.policy.get_weights())

    def step(self) -> dict[str, float]:
        """`batches_per_step` batches learned on; the last requests are consumed before it
        returns, so nothing is in flight between steps."""
        pending = {self._request(i): i for i in range(min(len(self.workers.remotes), self.batches_per_step))}
        consumed, stats = 0, {}
        while pending:
            with self.timed("sample_s"):  # a lost worker is replaced and asked again (_request)
                i, (batch, episodes) = self.workers.next_result(pending, self._request, "sample_with_episodes")
            consumed += 1
            if consumed + len(pending) < self.batches_per_step:
                pending[self._request(i)] = i  # before learning: the worker samples meanwhile
            self.stats.add_experience(len(batch), episodes)
            with self.timed("learn_s"):
                corrected, ratios = self.corrected(batch)
                stats = self.policy.learn_on_batch(corrected) | ratios
                self.stats.updates += 1
            with self.timed("sync_s"):
                self.weights_ref = ray.put(self.policy.get_weights())
        return stats

    def _request(self, i: int):
        worker = self.workers.remotes[i]
        worker.set_weights.remote(self.weights_ref)  # runs before the sample: calls run in order
        return worker.sample_with_episodes.remote()

    def corrected(self, batch: SampleBatch) -> tuple[SampleBatch, dict[str, float]]:
        """The batch with V-trace advantages and value targets under the current policy, and
        how much the truncated ratios cut (`vtrace.ratio_stats`)."""
        envs, steps = self.workers.config.num_envs, self.workers.config.fragment_length
        # The store hands out read-only arrays; torch wants writable ones.
        batch = SampleBatch({name: np.array(column) for name, column in batch.columns.items()})
        device = self.policy.device
        with torch.no_grad():
            dist, values = self.policy.distribution(torch.as_tensor(batch["obs"], device=device))
            actions = torch.as_tensor(batch["actions"], device=device)
            logp = dist.log_prob(actions) if self.policy.discrete else dist.log_prob(actions).sum(-1)
            logp, values = logp.cpu().numpy(), values.cpu().numpy()
        next_values = self.policy.compute_values(batch["next_obs"])

        def time_major(column: np.ndarray) -> np.ndarray:  # rows are env-major: (envs · steps) → (steps, envs)
            return column.reshape(envs, steps).T

        log_rhos = logp - batch["logp"]
        vs, advantages = vtrace(
            time_major(log_rhos), time_major(batch["rewards"]), time_major(values),
            time_major(next_values), time_major(batch["terminateds"]), time_major(batch["truncateds"]),
            **self.vtrace_options)
        ratios = ratio_stats(log_rhos, self.vtrace_options["rho_bar"], self.vtrace_options["c_bar"])
        return batch.with_columns(advantages=advantages.T.reshape(-1), value_targets=vs.T.reshape(-1)), ratios

    def weights(self) -> np.ndarray:
        return self.policy.get_weights()

    def get_state(self) -> dict:
        return {"local": self.workers.local.get_state(),
                "workers": ray.get([w.get_state.remote() for w in self.workers.remotes])}

    def set_state(self, state: dict) -> None:
        self.workers.local.set_state(state["local"])
        self.weights_ref = ray.put(self.policy.get_weights())
        ray.get([w.set_state.remote(s) for w, s in zip(self.workers.remotes, state["workers"], strict=True)])

    def stop(self) -> None:
        self.workers.stop()
