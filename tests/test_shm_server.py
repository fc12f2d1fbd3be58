"""distrl.shm_server: the parameter server over shared memory gives the updates the server's
own arithmetic gives (sync: bit for bit), counts staleness, follows rounds of either kind,
fails a round within a probe when a worker dies and leaves nothing in /dev/shm, and falls
back to the object store across nodes.

The protocol needs no Ray: its tests run the server and workers as plain processes, each
serving requests over a pipe, so that they run beside the Ray tests instead of behind them.
Two tests drive it through Ray (`ShmServer`), on one node and on two."""

from __future__ import annotations

import glob
import os
import signal
import time
import uuid

import numpy as np
import pytest
import ray
import torch

from distrl.parameter_server import Optimizer
from distrl.shm_server import ServerClient, ShmParameterServer, ShmServer

from conftest import rank_processes

SGD = Optimizer("sgd", lr=0.1)
LENGTH = 1001


def target_of(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(LENGTH).astype(np.float32)


class QuadraticWorker(ServerClient):
    """The gradient of ½‖θ − target‖²; or the target itself, a constant; or it stalls
    after `stall_after` gradients (to be killed there)."""

    def __init__(self, seed: int, constant: bool = False, stall_after: int | None = None):
        self.target, self.constant, self.stall_after, self.calls = target_of(seed), constant, stall_after, 0

    def gradient_at(self, params: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.stall_after is not None and self.calls > self.stall_after:
            time.sleep(3600)
        return self.target.copy() if self.constant else params - self.target


def serve(group: str, rank: int, workers: int, start: np.ndarray, worker_args: dict, pipe) -> None:
    """Rank 0 a server, the others workers: connect, then answer ("sync" | "async", count)
    with (θ, stats) on the server and None on a worker, or the error."""
    if rank == 0:
        node = ShmParameterServer(start, optimizer=SGD)
        node.shm_open(group, workers, timeout_s=30)
    else:
        node = QuadraticWorker(**worker_args)
        node.shm_open(group, rank, workers, len(start), timeout_s=30)
    node.shm_connect()
    pipe.send("connected")
    while (request := pipe.recv()) is not None:
        kind, count = request
        try:
            if rank == 0:
                (node.serve_sync if kind == "sync" else node.serve_async)(count)
                pipe.send((np.array(node.params), node.stats()))
            else:
                (node.work_sync if kind == "sync" else node.work_async)(count)
                pipe.send(None)
        except Exception as error:
            pipe.send(error)
    node.shm_close()


class Group:
    """A server process and one process per entry of `workers` (QuadraticWorker's arguments)."""

    def __init__(self, start: np.ndarray, workers: list[dict]):
        context = rank_processes()
        group, self.pipes, self.processes = uuid.uuid4().hex[:12], [], []
        for rank, args in enumerate([{}, *workers]):
            mine, theirs = context.Pipe()
            process = context.Process(target=serve, args=(group, rank, len(workers), start, args, theirs), daemon=True)
            process.start()
            self.pipes.append(mine)
            self.processes.append(process)
        for pipe in self.pipes:
            assert pipe.poll(60) and pipe.recv() == "connected"

    def round(self, kind: str, count: int, timeout_s: float = 60) -> list:
        for pipe in self.pipes:
            pipe.send((kind, count))
        return [pipe.recv() if pipe.poll(timeout_s) else TimeoutError("no answer") for pipe in self.pipes]

    def __enter__(self) -> "Group":
        return self

    def __exit__(self, *exc) -> None:
        for pipe, process in zip(self.pipes, self.processes):
            if process.is_alive():
                try:
                    pipe.send(None)
                except OSError:
                    pass
            process.join(10)
            if process.is_alive():
                process.kill()


def reference_sync(theta: np.ndarray, targets: list[np.ndarray], updates: int, lr: float) -> np.ndarray:
    """The server's own arithmetic, one process: θ ← θ − (α/N) g_i for each worker in rank order."""
    theta = theta.copy()
    for _ in range(updates):
        gradients = [theta - t for t in targets]
        for g in gradients:
            torch.from_numpy(theta).add_(torch.from_numpy(g), alpha=-lr / len(targets))
    return theta


def ring_files() -> list[str]:
    return glob.glob("/dev/shm/distrl-ring-*")


def test_sync_rounds_equal_the_servers_arithmetic_bit_for_bit():
    start = target_of(9)
    with Group(start, [{"seed": seed} for seed in range(3)]) as group:
        group.round("sync", 4)
        (theta, stats), *rest = group.round("sync", 3)  # a second round continues where the first stopped
        assert rest == [None] * 3
    np.testing.assert_array_equal(theta, reference_sync(start, [target_of(s) for s in range(3)], 7, SGD.lr))
    assert stats["version"] == 7


def test_async_pushes_are_all_applied_and_rounds_of_either_kind_follow_each_other():
    with Group(np.zeros(LENGTH, np.float32), [{"seed": seed, "constant": True} for seed in range(2)]) as group:
        for kind, count in (("async", 5), ("async", 0), ("sync", 2), ("async", 2)):
            (theta, stats), *rest = group.round(kind, count)
            assert rest == [None] * 2, rest
    assert stats["version"] == 16 and len(stats["staleness"]) == 14  # sync steps count no staleness
    np.testing.assert_allclose(theta, -SGD.lr * 8 * (target_of(0) + target_of(1)), rtol=1e-5, atol=1e-5)


def test_one_async_worker_is_sgd_with_no_staleness():
    """With one worker every gradient is computed on the newest θ: plain SGD, in order."""
    start = target_of(4)
    with Group(start, [{"seed": 3}]) as group:
        (theta, stats), _ = group.round("async", 6)
    assert stats["staleness"] == [0] * 6
    np.testing.assert_array_equal(theta, reference_sync(start, [target_of(3)], 6, SGD.lr))


def test_a_worker_killed_mid_round_fails_the_round_within_a_probe():
    with Group(np.zeros(LENGTH, np.float32), [{"seed": 0}, {"seed": 1, "stall_after": 2}]) as group:
        for pipe in group.pipes:
            pipe.send(("sync", 10))
        time.sleep(1.0)  # the second worker is stalled in its third gradient
        os.kill(group.processes[2].pid, signal.SIGKILL)
        start = time.monotonic()
        assert group.pipes[0].poll(10), "the server did not give up within 10 s (timeout_s is 30)"
        error = group.pipes[0].recv()
        assert isinstance(error, RuntimeError) and "gone" in str(error), error
        assert time.monotonic() - start < 5
        assert group.pipes[1].poll(10) and isinstance(group.pipes[1].recv(), RuntimeError)  # aborted too
    assert ring_files() == []


@ray.remote(num_cpus=0.1)
class RemoteWorker(ServerClient):
    """QuadraticWorker as an actor (Ray's workers cannot import this module, so no base
    class of it: a class defined here under the decorator travels by value)."""

    def __init__(self, seed: int):
        self.target = np.random.default_rng(seed).standard_normal(LENGTH).astype(np.float32)

    def gradient_at(self, params: np.ndarray) -> np.ndarray:
        return params - self.target


def test_shm_server_drives_rounds_through_ray_and_stops_cleanly(ray_session):
    workers = [RemoteWorker.remote(seed) for seed in range(2)]
    start = target_of(9)
    server = ShmServer(start, workers, optimizer=SGD, num_cpus=0.1, timeout_s=30)
    assert server.transport == "shm"
    server.sync(3)
    np.testing.assert_array_equal(server.pull(), reference_sync(start, [target_of(0), target_of(1)], 3, SGD.lr))
    server.run_async(2)
    assert server.stats()["version"] == 7
    server.stop()
    assert ring_files() == []
    for w in workers:
        ray.kill(w)


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
        server.run_async(0)
        server.run_async(1)  # both pull θ = 0.75 before either pushes: two steps of 0.5 · 0.25
        np.testing.assert_allclose(server.pull(), 1.0)
        stats = server.stats()
        assert stats["version"] == 4 and sorted(stats["staleness"]) == [0, 1], stats
        server.stop()
    """)
