"""The learners on a GPU: what each path computes there agrees with the CPU's.

These run only where torch sees CUDA devices (and the all-reduce tests only where there are
two, one per rank); elsewhere they are skipped, saying why. On the CPU the same code paths
run in the other suites (test_policy, test_optimizers, test_podracer, test_collective).
"""

from __future__ import annotations

import numpy as np
import pytest
import ray
import torch

from distrl import cluster
from distrl.anakin_learner import AnakinConfig, AnakinLearner
from distrl.collective import CollectiveGroup
from distrl.losses import a2c_loss, ppo_loss
from distrl.optimizers import AsyncSamples, SyncAllReduce, SyncSamples
from distrl.optimizers.anakin import Anakin
from distrl.optimizers.sebulba import Sebulba
from distrl.policy import PolicyConfig
from distrl.rollout_worker import WorkerConfig
from distrl.worker_set import WorkerSet
from test_policy import batch_for, make

GPUS = torch.cuda.device_count()
one_gpu = pytest.mark.skipif(GPUS < 1, reason="no CUDA device here")
two_gpus = pytest.mark.skipif(GPUS < 2, reason=f"{GPUS} CUDA device(s) here: NCCL between ranks needs two")
SMALL = WorkerConfig(num_envs=2, fragment_length=32, policy=PolicyConfig(hidden=(16,)))


def test_the_learner_device_is_what_torch_sees():
    assert cluster.learner_device() == ("cuda" if GPUS else "cpu")


def test_refused_combinations_say_what_to_do():
    with pytest.raises(ValueError, match="use transport='dist'"):
        SyncAllReduce(SMALL, 2, ppo_loss(), minibatch_size=16, transport="shm", device="cuda")
    with pytest.raises(ValueError, match="unknown transport"):
        SyncAllReduce(SMALL, 2, ppo_loss(), minibatch_size=16, transport="carrier pigeon")
    with pytest.raises(ValueError, match="as cuda:0; pass 'cuda'"):
        SyncAllReduce(SMALL, 2, ppo_loss(), minibatch_size=16, transport="dist", device="cuda:1")
    with pytest.raises(ValueError, match="as cuda:0; pass 'cuda'"):
        Anakin(AnakinConfig(num_envs=8, unroll=8), replicas=2, device="cuda:1")
    with pytest.raises(ValueError, match="needs one of its own"):
        SyncAllReduce(SMALL, 2, ppo_loss(), minibatch_size=16, transport="dist", device="cuda",
                      actor_options={"num_gpus": 0.5})


@one_gpu
def test_a_policy_moved_to_the_gpu_keeps_its_parameters_and_moments_and_computes_alike():
    cpu, gpu = make(), make()
    batch = batch_for(cpu)
    cpu.learn_on_batch(batch)
    gpu.learn_on_batch(batch)  # moments exist before the move: they must move too
    parameters = [id(p) for p in gpu.parameters]
    gpu.to("cuda")
    assert [id(p) for p in gpu.parameters] == parameters
    assert all(p.device.type == "cuda" for p in gpu.parameters)
    assert all(v.device.type == "cuda" for state in gpu.optimizer.state.values() for k, v in state.items() if k != "step")
    actions, logp, values = gpu.compute_actions(batch["obs"])
    assert isinstance(actions, np.ndarray) and isinstance(values, np.ndarray)
    g_cpu, _ = cpu.compute_unclipped_gradients(batch)
    g_gpu, _ = gpu.compute_unclipped_gradients(batch)
    assert g_gpu.device.type == "cuda"
    np.testing.assert_allclose(g_gpu.cpu().numpy(), g_cpu.numpy(), rtol=1e-3, atol=1e-5)
    cpu.learn_on_batch(batch)
    gpu.learn_on_batch(batch)
    np.testing.assert_allclose(gpu.get_weights(), cpu.get_weights(), rtol=1e-3, atol=1e-5)
    # the same random stream acts on either device, and a GPU's state restores on the CPU
    cpu.set_state(gpu.get_state())
    np.testing.assert_array_equal(gpu.compute_actions(batch["obs"])[0], cpu.compute_actions(batch["obs"])[0])


@one_gpu
@pytest.mark.parametrize("kind", ["sync_samples", "async_samples", "sebulba"])
def test_a_central_learner_on_the_gpu_learns_as_on_the_cpu(ray_session, kind):
    weights = {}
    for device in ("cpu", "cuda"):
        # one worker: the asynchronous learner's batches then arrive in one order
        if kind == "sync_samples":
            opt = SyncSamples(WorkerSet(SMALL, 1, ppo_loss()), minibatch_size=16, device=device)
        elif kind == "async_samples":
            opt = AsyncSamples(WorkerSet(SMALL, 1, a2c_loss()), batches_per_step=2, device=device)
        else:  # its first batch is sampled with the starting parameters, whatever the timing
            opt = Sebulba(SMALL, 1, ppo_loss(), minibatch_size=16, device=device)
        try:
            opt.step()
            assert opt.policy.device.type == device
            weights[device] = opt.weights()
        finally:
            opt.stop()
    np.testing.assert_allclose(weights["cuda"], weights["cpu"], rtol=1e-3, atol=1e-4)


@one_gpu
def test_anakin_acts_and_learns_on_the_gpu_from_the_cpus_start():
    config = AnakinConfig(num_envs=8, unroll=8)
    learners = {device: AnakinLearner(config, device=device) for device in ("cpu", "cuda")}
    rows = {device: learner.round(2.5e-4)[0] for device, learner in learners.items()}
    assert rows["cpu"] == rows["cuda"] == 64
    # Different random streams on each device (torch's generators differ): both learned, from the same start.
    start = AnakinLearner(config).get_weights()
    for learner in learners.values():
        assert np.isfinite(learner.get_weights()).all() and not np.array_equal(learner.get_weights(), start)
    gpu_state = learners["cuda"].get_state()  # host memory, so it reaches a driver without a GPU
    assert all(t.device.type == "cpu" for t in gpu_state["envs"][:3])
    resumed = AnakinLearner(config, device="cuda")
    resumed.set_state(gpu_state)
    assert resumed.rollout.state.device.type == "cuda"
    resumed.round(2.5e-4)
    learners["cuda"].round(2.5e-4)  # the same round from the same state (GPU kernels: equal to rounding)
    np.testing.assert_allclose(resumed.get_weights(), learners["cuda"].get_weights(), rtol=1e-5, atol=1e-6)


@two_gpus
def test_nccl_allreduce_between_two_gpus(ray_session):
    group = CollectiveGroup(2, num_cpus_per_participant=0.1, actor_options={"num_gpus": 1})
    try:
        inputs = [np.arange(1000, dtype=np.float32) * (r + 1) for r in range(2)]
        group.set_buffers(inputs)
        group.allreduce("mean", "nccl")
        for out in group.buffers():
            np.testing.assert_allclose(out, (inputs[0] + inputs[1]) / 2)
    finally:
        group.stop()


@two_gpus
def test_ddppo_and_anakin_replicas_over_nccl_stay_bit_identical(ray_session):
    opt = SyncAllReduce(SMALL, 2, ppo_loss(), minibatch_size=16, transport="dist", device="cuda",
                        num_cpus_per_worker=0.1)
    try:
        opt.step()
        first, second = ray.get([w.get_weights.remote() for w in opt.workers.remotes])
        np.testing.assert_array_equal(first, second)
    finally:
        opt.stop()
    anakin = Anakin(AnakinConfig(num_envs=8, unroll=8), replicas=2, num_cpus_per_replica=0.1, device="cuda")
    try:
        anakin.step()
        first, second = anakin.replica_weights()
        np.testing.assert_array_equal(first, second)
    finally:
        anakin.stop()
