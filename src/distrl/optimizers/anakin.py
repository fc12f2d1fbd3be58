"""Anakin replicated: R copies of the one-replica program, gradients averaged by all-reduce.

`distrl.anakin_learner` is Anakin's program for one replica: acting, GAE and PPO in one
process, on one device. The paper replicates that program over the cores of a TPU with pmap
and averages gradients with pmean. Here R replicas are R processes (Ray actors), each with
its own environments and random streams; for each minibatch every replica computes g_r on
its share, an all-reduce (the pmean) gives each the mean ḡ, and each clips and applies the
same ḡ to the same θ: the replicas' parameters stay bit-identical without ever being sent.
The all-reduce is torch.distributed's, on the device the replicas compute on: gloo between
CPU replicas, NCCL between replicas on GPUs of their own (`device="cuda"`: each replica
asks Ray for one GPU), so a gradient never leaves the accelerator. With R = 1 the whole
thing runs in the caller's process.
"""

from __future__ import annotations

import numpy as np
import ray

from ..anakin_learner import AnakinConfig, AnakinLearner
from ..collective import Participant, gpus_per_rank
from ..rollout_worker import EpisodeStats
from .base import PolicyOptimizer, annealed


class AnakinReplica(AnakinLearner, Participant):
    """A replica in its own process, and a rank of the all-reduce its gradients go through."""

    def __init__(self, config: AnakinConfig, rank: int, replicas: int, compile: bool = False, device: str = "cpu"):
        AnakinLearner.__init__(self, config, rank, compile, device)
        Participant.__init__(self, rank, replicas)
        self.allreduce = self._mean

    def _mean(self, grads):
        self.flat = grads
        self.dist_allreduce("mean")  # in place, over the replicas, where the gradient is
        return self.flat


class Anakin(PolicyOptimizer):
    def __init__(self, config: AnakinConfig = AnakinConfig(), replicas: int = 1, compile: bool = False,
                 num_cpus_per_replica: float = 1.0, device: str = "cpu"):
        super().__init__()
        self.config, self.replicas = config, replicas
        if replicas == 1:
            self.learners = [AnakinLearner(config, compile=compile, device=device)]
        else:
            cls = ray.remote(num_cpus=num_cpus_per_replica, num_gpus=gpus_per_rank(device))(AnakinReplica)
            self.learners = [cls.remote(config, r, replicas, compile, device) for r in range(replicas)]
            address, port = ray.get(self.learners[0].dist_address.remote())  # rank 0 hosts the rendezvous
            ray.get([r.dist_init.remote(address, port, 60.0) for r in self.learners])

    def step(self) -> dict[str, float]:
        lr = annealed(self.config.policy.lr, self.stats.env_steps, self.config.anneal_steps)
        with self.timed("learn_s"):  # acting and learning are one program: the driver only waits
            rounds = self._call("round", lr)
        for rows, returns, _ in rounds:
            # CartPole pays 1 per step, so an episode's length is its return.
            self.stats.add_experience(rows, EpisodeStats(returns, tuple(int(r) for r in returns)))
        self.stats.updates += self.config.epochs * self.config.minibatches
        return rounds[0][2]

    def _call(self, method: str, *args):
        if self.replicas == 1:
            return [getattr(self.learners[0], method)(*args)]
        return ray.get([getattr(r, method).remote(*args) for r in self.learners])

    def weights(self) -> np.ndarray:
        return self._call("get_weights")[0]

    def replica_weights(self) -> list[np.ndarray]:
        """θ as each replica holds it (they should be bit-identical)."""
        return self._call("get_weights")

    def get_state(self) -> dict:
        return {"replicas": self._call("get_state")}

    def set_state(self, state: dict) -> None:
        if self.replicas == 1:
            self.learners[0].set_state(state["replicas"][0])
        else:
            ray.get([r.set_state.remote(s) for r, s in zip(self.learners, state["replicas"], strict=True)])

    def stop(self) -> None:
        if self.replicas > 1:
            for r in self.learners:
                ray.kill(r)
