"""WorkerSet on a real Ray: sync and async sampling, shared weight broadcast, a killed worker."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
import ray

from distrl.policy import PolicyConfig
from distrl.rollout_worker import WorkerConfig
from distrl.worker_set import WorkerSet


CONFIG = WorkerConfig(num_envs=2, fragment_length=25, policy=PolicyConfig(hidden=(16,)), seed=5)


@pytest.fixture(scope="module")
def workers(ray_session):
    """One set for the module: starting two workers is most of each test's time. The test
    that kills a worker comes last in the file."""
    ws = WorkerSet(CONFIG, num_workers=2)
    yield ws
    ws.stop()


def test_sync_sample_exact_steps_and_episode_stats(workers):
    sampled = workers.sync_sample()
    assert [s.worker for s in sampled] == [1, 2]
    for s in sampled:
        assert len(s.batch) == 50
        assert s.episodes.returns == tuple(float(n) for n in s.episodes.lengths)
        assert int(s.batch["terminateds"].sum() + s.batch["truncateds"].sum()) == len(s.episodes.lengths)


def test_the_first_n_workers_sample_alone(workers):
    (first,) = workers.sync_sample(1)
    assert first.worker == 1 and len(first.batch) == 50
    for wrong in (0, 3):
        with pytest.raises(ValueError, match=f"samples from {wrong} of 2 remote workers"):
            workers.sync_sample(wrong)


def test_zero_remote_workers_samples_locally(ray_session):
    ws = WorkerSet(CONFIG, num_workers=0)
    (only,) = ws.sync_sample()
    assert only.worker == 0 and len(only.batch) == 50
    with pytest.raises(ValueError, match="needs remote workers"):
        next(ws.async_sample(1))
    with pytest.raises(ValueError, match="samples from 1 of 0 remote workers"):
        ws.sync_sample(1)


def test_async_sample_yields_the_requested_number(workers):
    seen = list(workers.async_sample(5))
    assert len(seen) == 5 and all(len(s.batch) == 50 for s in seen)
    assert {s.worker for s in seen} == {1, 2}


def test_broadcast_weights_reaches_every_worker(workers):
    workers.local.set_weights(np.full_like(workers.local.get_weights(), 0.125))
    workers.broadcast_weights()
    for remote in workers.remotes:
        np.testing.assert_array_equal(ray.get(remote.get_weights.remote()), workers.local.get_weights())


def test_killed_worker_is_replaced_and_sampling_goes_on(workers):
    pid = ray.get(workers.remotes[0].__ray_call__.remote(lambda self: os.getpid()))
    os.kill(pid, signal.SIGKILL)
    sampled = workers.sync_sample()
    assert workers.replaced == [1]
    assert [len(s.batch) for s in sampled] == [50, 50]
    np.testing.assert_array_equal(ray.get(workers.remotes[0].get_weights.remote()), workers.local.get_weights())


def test_workers_on_a_simulated_two_node_cluster(two_nodes):
    two_nodes("""
        from distrl.policy import PolicyConfig
        from distrl.rollout_worker import WorkerConfig
        from distrl.worker_set import WorkerSet

        config = WorkerConfig(num_envs=2, fragment_length=20, policy=PolicyConfig(hidden=(8,)))
        placements = [{"resources": {"head": 0.1}}, {"resources": {"second": 0.1}}]
        sets = [WorkerSet(config, 1, actor_options=p) for p in placements]
        nodes = set()
        for ws in sets:
            ws.broadcast_weights()
            (s,) = ws.sync_sample()
            assert len(s.batch) == 40
            nodes.add(ray.get(ws.remotes[0].__ray_call__.remote(lambda self: ray.get_runtime_context().get_node_id())))
        assert len(nodes) == 2, nodes
    """)
