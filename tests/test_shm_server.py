"""distrl.shm_server: the parameter server over shared memory gives the updates the
object-store server gives (sync: bit for bit), counts staleness, fails a round within a
probe when a worker dies and leaves nothing in /dev/shm, and falls back to the object
store across nodes."""

from __future__ import annotations

import glob
import time

import numpy as np
import pytest
import ray
import torch

from conftest import kill_actor
from distrl.parameter_server import Optimizer
from distrl.shm_server import ServerClient, ShmServer

SGD = Optimizer("sgd", lr=0.1)
LENGTH = 1001


@ray.remote(num_cpus=0.1)
class QuadraticWorker(ServerClient):
    """The gradient of ½‖θ − target‖², target fixed per worker; or a fixed vector."""

    def __init__(self, seed: int, constant: bool = False, stall_after: int | None = None):
        self.target = np.random.default_rng(seed).standard_normal(LENGTH).astype(np.float32)
        self.constant, self.stall_after, self.calls = constant, stall_after, 0

    def gradient_at(self, params: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.stall_after is not None and self.calls > self.stall_after:
            time.sleep(3600)  # killed here by the test
        return self.target.copy() if self.constant else params - self.target


def reference_sync(theta: np.ndarray, targets: list[np.ndarray], updates: int, lr: float) -> np.ndarray:
    """The server's own arithmetic, one process: θ ← θ − (α/N) g_i for each worker in rank order."""
    theta = theta.copy()
    for _ in range(updates):
        gradients = [theta - t for t in targets]
        for g in gradients:
            torch.from_numpy(theta).add_(torch.from_numpy(g), alpha=-lr / len(targets))
    return theta


def no_ring_files() -> list[str]:
    return glob.glob("/dev/shm/distrl-ring-*")


def test_sync_rounds_equal_the_servers_arithmetic_bit_for_bit(ray_session):
    workers = [QuadraticWorker.remote(seed) for seed in range(3)]
    start = np.random.default_rng(9).standard_normal(LENGTH).astype(np.float32)
    server = ShmServer(start, workers, optimizer=SGD, num_cpus=0.1, timeout_s=30)
    assert server.transport == "shm"
    server.sync(4)
    server.sync(3)  # a second round continues where the first stopped
    targets = ray.get([w.__ray_call__.remote(lambda self: self.target) for w in workers])
    np.testing.assert_array_equal(server.pull(), reference_sync(start, targets, 7, SGD.lr))
    assert server.stats()["version"] == 7
    server.stop()
    assert no_ring_files() == []
    for w in workers:
        ray.kill(w)


def test_async_pushes_are_all_applied_and_rounds_of_either_kind_follow_each_other(ray_session):
    workers = [QuadraticWorker.remote(seed, constant=True) for seed in range(2)]
    server = ShmServer(np.zeros(LENGTH, np.float32), workers, optimizer=SGD, num_cpus=0.1, timeout_s=30)
    server.run_async(5)
    server.run_async(0)  # nothing, and nothing left owed to a later round
    server.sync(2)
    server.run_async(2)
    stats = server.stats()
    assert stats["version"] == 16 and len(stats["staleness"]) == 14  # sync steps count no staleness
    targets = ray.get([w.__ray_call__.remote(lambda self: self.target) for w in workers])
    np.testing.assert_allclose(server.pull(), -SGD.lr * 8 * sum(targets), rtol=1e-5, atol=1e-5)
    server.stop()
    for w in workers:
        ray.kill(w)


def test_one_async_worker_is_sgd_with_no_staleness(ray_session):
    """With one worker every gradient is computed on the newest θ: plain SGD, in order."""
    worker = QuadraticWorker.remote(3)
    start = np.random.default_rng(4).standard_normal(LENGTH).astype(np.float32)
    server = ShmServer(start, [worker], optimizer=SGD, num_cpus=0.1, timeout_s=30)
    server.run_async(6)
    assert server.stats()["staleness"] == [0] * 6
    target = ray.get(worker.__ray_call__.remote(lambda self: self.target))
    np.testing.assert_array_equal(server.pull(), reference_sync(start, [target], 6, SGD.lr))
    server.stop()
    ray.kill(worker)


def test_a_worker_killed_mid_round_fails_the_round_within_seconds(ray_session):
    workers = [QuadraticWorker.remote(0), QuadraticWorker.remote(1, stall_after=2)]
    server = ShmServer(np.zeros(LENGTH, np.float32), workers, optimizer=SGD, num_cpus=0.1, timeout_s=60)
    round_ = server.server.serve_sync.remote(10), [w.work_sync.remote(10) for w in workers]
    time.sleep(1.0)  # the second worker is stalled in its third gradient
    kill_actor(workers[1])
    start = time.monotonic()
    with pytest.raises(ray.exceptions.RayTaskError, match="gone|aborted"):
        ray.get(round_[0])
    assert time.monotonic() - start < 10  # within a probe or so, not the 60 s timeout
    with pytest.raises(ray.exceptions.RayError):
        ray.get(round_[1])  # the live worker was aborted too
    server.stop()
    assert no_ring_files() == []
    ray.kill(workers[0])


def test_the_server_and_workers_on_two_nodes_fall_back_to_the_object_store(two_nodes):
    two_nodes("""
        import warnings
        import numpy as np
        from distrl.parameter_server import Optimizer
        from distrl.shm_server import ServerClient, ShmServer

        @ray.remote(num_cpus=0, resources={"second": 0.1})
        class Worker(ServerClient):
            def gradient_at(self, params):
                return params - 1.0

        workers = [Worker.remote(), Worker.remote()]
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            server = ShmServer(np.zeros(1000, np.float32), workers, optimizer=Optimizer("sgd", lr=0.5),
                               num_cpus=0, actor_options={"resources": {"head": 0.1}})
        assert server.transport == "object_store", server.transport
        assert any("on 2 nodes" in str(w.message) for w in said), [str(w.message) for w in said]
        server.sync(2)  # θ: 0 → 0.5 → 0.75
        np.testing.assert_allclose(server.pull(), 0.75)
        server.run_async(1)  # both pull θ = 0.75 before either pushes: two steps of 0.5 · 0.25
        np.testing.assert_allclose(server.pull(), 1.0)
        stats = server.stats()
        assert stats["version"] == 4 and sorted(stats["staleness"]) == [0, 1], stats
        server.stop()
    """)
