"""SyncAllReduce: decentralized PPO (DD-PPO, Wijmans et al., 2020), no central learner.

Every worker samples and keeps its own batch. For each minibatch, every worker computes its
unclipped gradient g_i, the ring all-reduce (`CollectiveGroup`, the workers its ranks) gives
each the mean ḡ, and each clips ḡ to the max norm (as DDP and DD-PPO do: the step taken is
bounded, as one learner's is) and applies it to its own copy. Equal bytes clipped the same
way keep the copies bit-equal without weights ever being sent.

Over the object store (`transport="object_store"`) the driver submits the whole step at
once (gradient, all-reduce and apply tasks); each worker runs its tasks in the order
submitted, so an all-reduce reads the gradient just computed. The driver takes part in
every all-reduce: a chunk under Ray's inline limit (100 KiB; a CartPole gradient is about
37 KB) travels through it to the next rank's task. Over shared memory (`"shm"`, ranks on
one node) the driver is out of the loop, as in DD-PPO itself: each rank runs the round's
minibatches in one task, and the ranks meet only in their all-reduces. With
`transport="dist"` the ranks do the same through torch.distributed, as DD-PPO's own code
and RLlib's do: gloo between CPU ranks, on any number of nodes, and NCCL where the ranks
learn on GPUs (`device="cuda"`: each rank asks Ray for one GPU, and its gradient is
averaged and applied without leaving it; the ranks then act on their GPUs too).

A rank that dies is replaced, and every rank goes back to a survivor's round start. Over
gloo, shared memory and the object store the survivors' collectives fail or time out and
they rejoin (tested); over NCCL a survivor's hung collective is NCCL's watchdog's to end,
which by default ends the process, so there a lost rank can take the others with it.
"""

from __future__ import annotations

import numpy as np
import ray
from ray.exceptions import RayError

from ..collective import CollectiveGroup, Participant, gpus_per_rank
from ..rollout_worker import EpisodeStats, RolloutWorker, WorkerConfig
from ..worker_set import WorkerSet
from .base import PolicyOptimizer, annealed

TRANSPORTS = ("object_store", "shm", "dist")


class AllReduceWorker(RolloutWorker, Participant):
    """A rollout worker that is also a rank of the gradient all-reduce; its buffer holds g."""

    def __init__(self, config: WorkerConfig, index: int, loss=None):
        RolloutWorker.__init__(self, config, index, loss)
        Participant.__init__(self, rank=index - 1, size=1)
        self.rng = np.random.default_rng(config.seed + 1000 * index)  # its own minibatch shuffling

    def join(self, size: int, start: dict, transport: str, device: str) -> None:
        """Be one of `size` equal copies, learning on `device`: θ and optimizer state from
        Policy state `start`, the sampler its own."""
        self.size, self.transport = size, transport
        self.policy.to(device)
        self.policy.set_state({**start, "sampler": self.policy.sampler.get_state()})

    def start_round(self, lr: float, epochs: int, minibatch_size: int) -> tuple[int, EpisodeStats]:
        """Sample this round's batch and plan its minibatches; report rows and episodes."""
        self.round_start = self.policy.get_state()  # what a failed round is undone to
        self.policy.set_lr(lr)
        self.batch = self.sample()
        rows = len(self.batch)
        self.minibatches = [order[i : i + minibatch_size] for order in (self.rng.permutation(rows) for _ in range(epochs))
                            for i in range(0, rows, minibatch_size)]
        return rows, self.last_episodes

    def gradient(self, k: int) -> None:
        """The buffer ← g_i on minibatch k, unclipped. Unlike a central learner, each rank
        normalises advantages over its own share of the minibatch."""
        grads, self.loss_stats = self.policy.compute_unclipped_gradients(self.batch.take(self.minibatches[k]))
        # torch.distributed reduces the tensor where it is; the other transports, host memory
        self.flat = grads if self.transport == "dist" else grads.numpy(force=True)
        self.shape = self.flat.shape

    def apply(self) -> dict[str, float]:
        """Clip the buffer, which the all-reduce has made ḡ, the mean of every rank's g_i, to
        the max global norm, and apply it."""
        self.policy.apply_gradients(self.policy.clip_gradients(self.flat))
        return self.loss_stats

    def learn_round(self) -> dict[str, float]:
        """Every minibatch of the round here: g_i, the all-reduce with the other ranks (each
        running this same loop) through shared memory or torch.distributed, then the clipped step."""
        stats = {}
        for k in range(len(self.minibatches)):
            self.gradient(k)
            if self.transport == "dist":
                self.dist_allreduce("mean")
            else:
                self.shm_allreduce("mean", None)
            stats = self.apply()
        return stats

    def get_state(self) -> dict:
        return {**super().get_state(), "rng": self.rng.bit_generator.state}

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        self.rng.bit_generator.state = state["rng"]


class SyncAllReduce(PolicyOptimizer):
    def __init__(self, config: WorkerConfig, num_workers: int, loss=None, epochs: int = 4,
                 minibatch_size: int = 128, anneal_steps: int | None = None, transport: str = "object_store",
                 device: str = "cpu", **worker_set_options):
        super().__init__()
        assert num_workers >= 1, "SyncAllReduce needs remote workers: they are the all-reduce's ranks"
        assert minibatch_size % num_workers == 0, "each worker takes an equal share of every minibatch"
        if transport not in TRANSPORTS:
            raise ValueError(f"unknown transport {transport!r}; use one of {TRANSPORTS}")
        on_gpus = bool(gpus_per_rank(device))
        if on_gpus and transport != "dist":
            raise ValueError(f"ranks learning on {device} all-reduce through torch.distributed: use transport='dist'")
        if on_gpus:
            options = worker_set_options.get("actor_options") or {}
            if options.get("num_gpus", 1) != 1:
                raise ValueError(f"a rank learning on a GPU needs one of its own (NCCL does not share one between "
                                 f"ranks): num_gpus {options['num_gpus']} in actor_options")
            worker_set_options["actor_options"] = {**options, "num_gpus": 1}
        self.workers = WorkerSet(config, num_workers, loss, worker_class=AllReduceWorker, **worker_set_options)
        self.epochs, self.minibatch_size = epochs, minibatch_size // num_workers  # per worker: same global minibatch
        self.lr, self.anneal_steps = self.workers.local.policy.config.lr, anneal_steps
        self.transport, self.device, self.on_gpus = transport, device, on_gpus
        self._join(ray.put(self.workers.local.policy.get_state()))

    def _join(self, start) -> None:
        """Every rank takes the Policy state `start`, and the all-reduce is built over the ranks."""
        ranks = self.workers.remotes
        self.workers.get([w.join.remote(len(ranks), start, self.transport, self.device) for w in ranks], "join")
        # A rank waits for a silent peer as long as the driver waits for a worker.
        options = dict(length=len(self.workers.local.get_weights()), timeout_s=self.workers.timeout_s or 60.0)
        if self.transport == "dist":  # the group plans nothing: it only starts torch.distributed on the ranks
            self.group = CollectiveGroup.of(ranks, **options)
            self.group.start_dist(gpus=self.on_gpus)
        else:
            self.group = CollectiveGroup.of(ranks, transport=self.transport, **options)

    def step(self) -> dict[str, float]:
        lr = annealed(self.lr, self.stats.env_steps, self.anneal_steps)
        remotes = self.workers.remotes
        try:
            with self.timed("sample_s"):
                rounds = self.workers.get([w.start_round.remote(lr, self.epochs, self.minibatch_size) for w in remotes], "start_round")
            minibatches = self.epochs * -(-rounds[0][0] // self.minibatch_size)
            with self.timed("learn_s"):
                if self.transport == "dist" or self.group.transport == "shm":
                    stats = self.workers.get([w.learn_round.remote() for w in remotes], "a round's updates")[0]
                else:
                    pending = []
                    for k in range(minibatches):
                        pending += [w.gradient.remote(k) for w in remotes]
                        pending += self.group.allreduce("mean", wait=False)
                        applied = [w.apply.remote() for w in remotes]
                        pending += applied
                    stats = self.workers.get(applied, "a round's updates")[0]  # a rank runs its tasks in order
                    ray.get(pending)  # surfaces any failure (the chunks are a gradient's size: small here)
        except RayError as error:  # a rank died: replace it, and every rank goes back to a survivor's round start
            self._join(self.workers.recover(error).__ray_call__.remote(lambda survivor: survivor.round_start))
            return self.step()  # the round again; the failed one's batches are not counted
        for rows, episodes in rounds:  # only a whole round's experience counts
            self.stats.add_experience(rows, episodes)
        self.stats.updates += minibatches
        return stats

    def weights(self) -> np.ndarray:
        return ray.get(self.workers.remotes[0].get_weights.remote())

    def get_state(self) -> dict:
        return {"workers": ray.get([w.get_state.remote() for w in self.workers.remotes])}

    def set_state(self, state: dict) -> None:
        ray.get([w.set_state.remote(s) for w, s in zip(self.workers.remotes, state["workers"], strict=True)])

    def stop(self) -> None:
        self.workers.stop()
