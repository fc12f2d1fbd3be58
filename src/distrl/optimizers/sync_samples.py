"""SyncSamples: collect in parallel, learn in one place (PPO and A2C run on it).

The RLlib paper's synchronous sampling optimizer. One step:

    every remote evaluator samples, all at once        (WorkerSet.sync_sample)
    the driver concatenates the batches and learns:     epochs × minibatches of SGD
    the new weights go out as one shared object         (WorkerSet.broadcast_weights)

Every batch is sampled by the weights that learn on it, so the data is on-policy up to the
epochs of the step itself (what PPO's clipped ratio is for). With `epochs=1` and one
minibatch the size of the batch, it is synchronous A2C.

With `sample_ahead`, the workers sample the next batch while the driver learns on this one,
so sampling and learning overlap. The batch learned on was then sampled by the weights of
one step before (one step: `epochs` × minibatches updates): PPO's ratio is taken against the behaviour policy's log π stored in the
batch, so the loss stays correct, and the clip bounds how far one step moves from it.

The driver's policy learns on `device` (a GPU, say, where the workers act on CPUs): each
step's batch crosses to it once, and the weights come back to the host once to be broadcast.
(With no remote workers the driver's own worker samples, and acts on that device too.)
"""

from __future__ import annotations

import numpy as np
import ray

from ..sample_batch import SampleBatch
from ..worker_set import WorkerSet
from .base import PolicyOptimizer, annealed


class SyncSamples(PolicyOptimizer):
    def __init__(self, workers: WorkerSet, epochs: int = 4, minibatch_size: int = 128,
                 anneal_steps: int | None = None, sample_ahead: bool = False, seed: int = 0, device: str = "cpu"):
        super().__init__()
        self.sample_ahead, self.ahead = sample_ahead and bool(workers.remotes), None  # requests in flight
        self.workers, self.epochs, self.minibatch_size = workers, epochs, minibatch_size
        self.policy = workers.local.policy.to(device)  # the one the driver learns; workers hold copies
        self.lr, self.anneal_steps = self.policy.config.lr, anneal_steps
        self.rng = np.random.default_rng(seed)  # minibatch shuffling
        self.workers.broadcast_weights()  # each worker was initialised with its own seed

    def step(self) -> dict[str, float]:
        self.policy.set_lr(annealed(self.lr, self.stats.env_steps, self.anneal_steps))
        with self.timed("sample_s"):
            sampled = self.workers.collect(self.ahead) if self.ahead else self.workers.sync_sample()
        if self.sample_ahead:  # sampled with the weights broadcast at the end of the last step
            self.ahead = self.workers.request_samples()
        batch = SampleBatch.concat([s.batch for s in sampled])
        for s in sampled:
            self.stats.add_experience(len(s.batch), s.episodes)
        with self.timed("learn_s"):
            stats = self.learn(batch)
        with self.timed("sync_s"):
            self.workers.broadcast_weights(wait=not self.sample_ahead)
        return stats

    def learn(self, batch: SampleBatch) -> dict[str, float]:
        """`epochs` passes of minibatch SGD over the batch, on the driver's policy."""
        if self.policy.device.type != "cpu":  # on the CPU the loss reads the numpy columns in place
            batch = batch.to(self.policy.device)
        for _ in range(self.epochs):
            for minibatch in batch.minibatches(self.minibatch_size, self.rng):
                stats = self.policy.learn_on_batch(minibatch)
                self.stats.updates += 1
        return stats

    def weights(self) -> np.ndarray:
        return self.policy.get_weights()

    def get_state(self) -> dict:
        return {"local": self.workers.local.get_state(), "rng": self.rng.bit_generator.state,
                "ahead": ray.get(self.ahead) if self.ahead else None,  # batches sampled, not yet learned on
                "workers": ray.get([w.get_state.remote() for w in self.workers.remotes])}

    def set_state(self, state: dict) -> None:
        self.workers.local.set_state(state["local"])
        self.rng.bit_generator.state = state["rng"]
        self.ahead = [ray.put(sampled) for sampled in state["ahead"]] if state["ahead"] else None
        ray.get([w.set_state.remote(s) for w, s in zip(self.workers.remotes, state["workers"], strict=True)])

    def stop(self) -> None:
        self.workers.stop()
