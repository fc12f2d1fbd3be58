"""HierarchicalWorkerSet with groups larger than one: the driver collects one batch per group."""

from __future__ import annotations

import numpy as np
import pytest
import ray

from distrl.hierarchical import HierarchicalWorkerSet
from distrl.policy import PolicyConfig
from distrl.rollout_worker import WorkerConfig

CONFIG = WorkerConfig(num_envs=2, fragment_length=20, policy=PolicyConfig(hidden=(16,)), seed=7)


def in_group(group, fn):
    """fn(worker) for every worker of one sub-driver's group, run in the workers' processes."""
    return ray.get(group.__ray_call__.remote(lambda sub: ray.get([w.__ray_call__.remote(fn) for w in sub.workers])))


@pytest.fixture(scope="module")
def tree(ray_session):
    """One set for the tests that only read it or set what they then check: starting two
    sub-drivers and four workers is most of each test's time."""
    hws = HierarchicalWorkerSet(CONFIG, num_groups=2, group_size=2)
    yield hws
    hws.stop()


def test_every_worker_has_its_own_index_across_groups(tree):
    assert [in_group(g, lambda w: w.index) for g in tree.groups] == [[1, 2], [3, 4]]


def test_broadcast_reaches_every_worker_of_every_group(tree):
    tree.local.set_weights(np.full_like(tree.local.get_weights(), 0.5))
    tree.broadcast_weights()
    for group in tree.groups:
        for weights in in_group(group, lambda w: w.get_weights()):
            np.testing.assert_array_equal(weights, tree.local.get_weights())


def test_one_batch_per_group_holds_each_workers_steps_once(tree):
    sampled = tree.sync_sample()
    assert [s.worker for s in sampled] == [1, 2]
    for s in sampled:
        assert len(s.batch) == 2 * 2 * 20  # 2 workers × 2 environments × 20 steps
        # Two workers with different seeds: their halves of the group's batch differ.
        assert not np.array_equal(s.batch["obs"][:40], s.batch["obs"][40:])
        assert int(s.batch["terminateds"].sum() + s.batch["truncateds"].sum()) == len(s.episodes.lengths)


def test_stop_ends_the_sub_drivers_and_their_workers(tree):
    # Last in the module: it stops the shared set (a second stop, at teardown, does nothing).
    import time

    from ray.exceptions import RayActorError

    actors = tree.groups + tree.workers
    ray.get([a.__ray_ready__.remote() for a in actors])
    tree.stop()
    deadline = time.monotonic() + 30
    for actor in actors:  # a kill lands a moment after ray.kill returns
        while True:
            try:
                ray.get(actor.__ray_ready__.remote(), timeout=10)
            except RayActorError:
                break
            assert time.monotonic() < deadline, "a stopped actor still answers after 30 s"
            time.sleep(0.05)
