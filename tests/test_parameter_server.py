"""distrl.parameter_server: sharding, sync equivalence with SGD and Adam, staleness,
checkpoints, a dead shard rolling every shard back to one version, retried calls applied
once, a lost worker, two nodes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import ray
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import kill_actor
from distrl.partition import chunk_bounds
from distrl.parameter_server import (Optimizer, ParameterServer, ShardedServer, assemble, checkpoint_file,
                                     saved_versions)

ADAM = Optimizer("adam", lr=0.01, eps=1e-5)
SGD = Optimizer("sgd", lr=0.1)


@given(length=st.integers(1, 5000), shards=st.integers(1, 6), seed=st.integers(0, 1000))
@settings(max_examples=50, deadline=None)
def test_shards_split_and_reassemble_any_length(length, shards, seed):
    params = np.random.default_rng(seed).standard_normal(length).astype(np.float32)
    servers = [ParameterServer(params[lo:hi], SGD, lo=lo) for lo, hi in chunk_bounds(length, shards)]
    np.testing.assert_array_equal(assemble([s.pull() for s in servers]), params)
    grad = np.ones(length, np.float32)
    for s in servers:
        s.step(grad)  # each shard reads only its own slice of the whole gradient
    np.testing.assert_allclose(assemble([s.pull() for s in servers]), params - 0.1, rtol=0, atol=1e-6)


def torch_reference(params, gradients_per_step, optimizer):
    theta = torch.nn.Parameter(torch.tensor(params))
    opt = (torch.optim.Adam([theta], lr=optimizer.lr, betas=optimizer.betas, eps=optimizer.eps)
           if optimizer.kind == "adam" else torch.optim.SGD([theta], lr=optimizer.lr))
    for grads in gradients_per_step:
        theta.grad = torch.tensor(np.mean(grads, axis=0))
        opt.step()
    return theta.detach().numpy()


@pytest.mark.parametrize("optimizer", [SGD, ADAM], ids=["sgd", "adam"])
def test_sync_steps_equal_torch_on_the_mean_gradient(ray_session, optimizer):
    rng = np.random.default_rng(0)
    params = rng.standard_normal(1001).astype(np.float32)
    steps = [[rng.standard_normal(1001).astype(np.float32) for _ in range(3)] for _ in range(5)]
    server = ShardedServer(params, shards=3, optimizer=optimizer)
    for grads in steps:
        shards, lost = server.sync_step([ray.put(g) for g in grads])
        assert lost == []
    np.testing.assert_allclose(assemble(ray.get(shards)), torch_reference(params, steps, optimizer), rtol=0, atol=1e-6)
    assert server.versions() == [5, 5, 5]
    server.stop()


def test_async_staleness_is_counted_and_bounded():
    server = ParameterServer(np.zeros(4, np.float32), SGD, max_staleness=1)
    g = np.ones(4, np.float32)
    assert server.push(g, version=0)  # staleness 0
    assert server.push(g, version=0)  # staleness 1
    assert not server.push(g, version=0)  # staleness 2 > 1: dropped
    assert server.push(g, version=2)
    stats = server.stats()
    assert stats == {"version": 3, "staleness": [0, 1, 0], "dropped": 1}
    np.testing.assert_allclose(server.pull(), -0.3, rtol=1e-6)


def test_checkpoint_round_trip_continues_exactly(tmp_path):
    rng = np.random.default_rng(1)
    a = ParameterServer(rng.standard_normal(50).astype(np.float32), ADAM, lo=7)
    grads = [rng.standard_normal(57).astype(np.float32) for _ in range(4)]
    for g in grads[:3]:
        a.step(g)
    prefix = str(tmp_path / "ps")
    a.save(checkpoint_file(prefix, 3))
    b = ParameterServer(None, ADAM, checkpoint=prefix, restore=3)
    assert (b.version, b.lo) == (3, 7)
    a.step(grads[3])
    b.step(grads[3])
    np.testing.assert_array_equal(a.pull(), b.pull())
    assert not list(tmp_path.glob("*.tmp"))


def test_a_call_number_seen_before_is_not_applied_again():
    server = ParameterServer(np.zeros(3, np.float32), SGD)
    g = np.ones(3, np.float32)
    server.step(g, call=1)
    server.step(g, call=1)  # a retry
    assert server.push(g, version=1, call=2)
    assert server.push(g, version=1, call=2)  # held already: True, not applied again
    assert server.version == 2
    np.testing.assert_allclose(server.pull(), -0.2, rtol=1e-6)


def test_a_dead_shard_rolls_every_shard_back_to_one_common_version(ray_session, tmp_path):
    every = 5
    server = ShardedServer(np.zeros(100, np.float32), shards=2, optimizer=SGD, checkpoint_dir=tmp_path, checkpoint_every=every)
    g = ray.put(np.ones(100, np.float32))
    for _ in range(12):
        server.sync_step([g])
    assert server.versions() == [12, 12]
    assert [saved_versions(str(tmp_path / f"shard-{k}")) for k in range(2)] == [{5, 10}, {5, 10}]  # the last two
    kill_actor(server.servers[0])
    shards, _ = server.sync_step([g])  # every shard back to version 10, then this step
    assert server.restarts == 1
    assert server.versions() == [11, 11]  # updates 11 and 12 lost on both shards alike: θ is one version
    np.testing.assert_allclose(assemble(ray.get(shards)), -0.1 * 11, rtol=1e-5)
    for _ in range(4):  # and training goes on, checkpointing as before
        server.sync_step([g])
    assert server.versions() == [15, 15]
    assert [saved_versions(str(tmp_path / f"shard-{k}")) for k in range(2)] == [{10, 15}, {10, 15}]
    server.stop()


def test_a_shard_that_dies_after_checkpointing_a_call_does_not_apply_it_twice(ray_session, tmp_path):
    class DiesAfterCheckpoint(ParameterServer):  # local, so Ray ships it by value to the actor
        """Exits right after writing a checkpoint, before answering the call that wrote it,
        when its marker file `<checkpoint prefix>.die` exists (once: it removes it)."""

        def _advance(self) -> None:
            super()._advance()
            marker = Path(self.checkpoint + ".die")
            if self.version % self.checkpoint_every == 0 and marker.exists():
                marker.unlink()
                os._exit(1)

    server = ShardedServer(np.zeros(100, np.float32), shards=2, optimizer=SGD, checkpoint_dir=tmp_path,
                           checkpoint_every=5, server_class=DiesAfterCheckpoint)
    g = ray.put(np.ones(100, np.float32))
    for _ in range(9):
        server.sync_step([g])
    (tmp_path / "shard-0.die").touch()
    shards, _ = server.sync_step([g])  # shard 0 saves version 10 and dies; the step is sent again
    assert server.restarts == 1
    assert server.versions() == [10, 10]
    np.testing.assert_allclose(assemble(ray.get(shards)), -0.1 * 10, rtol=1e-5)
    server.stop()


@ray.remote(num_cpus=0.1)
class GradientWorker:
    def gradient(self, value: float) -> np.ndarray:
        return np.full(10, value, np.float32)


def test_a_dead_worker_is_left_out_instead_of_hanging(ray_session):
    server = ShardedServer(np.zeros(10, np.float32), shards=2, optimizer=SGD, timeout_s=10)
    workers = [GradientWorker.remote() for _ in range(3)]
    ray.get([w.__ray_ready__.remote() for w in workers])
    kill_actor(workers[1])
    start = time.monotonic()
    shards, lost = server.sync_step([w.gradient.remote(float(i + 1)) for i, w in enumerate(workers)])
    assert lost == [1] and time.monotonic() - start < 20
    np.testing.assert_allclose(assemble(ray.get(shards)), -0.1 * 2.0)  # the mean of 1 and 3
    server.stop()


def test_servers_and_workers_on_a_simulated_two_node_cluster(two_nodes):
    two_nodes("""
        import numpy as np
        from distrl.parameter_server import Optimizer, ShardedServer, assemble

        @ray.remote(resources={"second": 0.1}, num_cpus=0)
        def gradient():
            return np.ones(1000, np.float32)

        server = ShardedServer(np.zeros(1000, np.float32), shards=2, optimizer=Optimizer("sgd", lr=0.5),
                               actor_options={"resources": {"head": 0.1}})
        for _ in range(3):
            shards, lost = server.sync_step([gradient.remote(), gradient.remote()])
        assert lost == []
        np.testing.assert_allclose(assemble(ray.get(shards)), -1.5)
    """)


def test_a_ready_gradient_on_another_node_is_not_taken_for_a_lost_worker(two_nodes):
    """The step fails on another worker's error; finding which gradient is the error must
    not take a healthy one that lives on the other node (not yet fetched) for a failure."""
    two_nodes("""
        import numpy as np
        from distrl.parameter_server import Optimizer, ShardedServer, assemble

        @ray.remote(resources={"second": 0.1}, num_cpus=0)
        def gradient():
            return np.ones(1_000_000, np.float32)  # 4 MB: in the second node's store, not inline

        @ray.remote(resources={"head": 0.1}, num_cpus=0)
        def failing_gradient():
            raise RuntimeError("this worker failed")

        server = ShardedServer(np.zeros(1_000_000, np.float32), shards=1, optimizer=Optimizer("sgd", lr=0.5),
                               actor_options={"resources": {"second": 0.1}}, timeout_s=30)
        shards, lost = server.sync_step([gradient.remote(), failing_gradient.remote()])
        assert lost == [1], lost
        np.testing.assert_allclose(assemble(ray.get(shards)), -0.5)
    """)
