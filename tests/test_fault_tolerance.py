"""Fault tolerance of every policy optimizer, on a real Ray: a worker SIGKILLed between steps
or in the middle of one is replaced and training goes on, with statistics that still add up;
a worker that hangs ends the step with a WorkerTimeout that names it. One optimizer per kind
lives through all of it, since starting its worker processes is most of a test's time."""

from __future__ import annotations

import itertools
import os
import signal
import time

import numpy as np
import pytest
import ray

from conftest import kill_actor
from distrl.worker_set import WorkerTimeout
from test_optimizers import BATCH, OPTIMIZERS, SMALL, assert_three_steps_add_up, build

pytestmark = pytest.mark.usefixtures("ray_session")
BATCHES_PER_STEP = {"async_gradients": 4, "async_samples": 4}  # the others: one per worker (2)
UPDATES_PER_STEP = {"async_gradients": 4, "async_samples": 4}  # the others: 4 epochs × 4 minibatches


def inject(worker, fault: str, at: int, where: str = "env") -> None:
    """From now on, remote `worker` fails at its `at`-th vector-environment step (where="env")
    or loss evaluation (where="loss"): fault "kill" SIGKILLs its process, "hang" sleeps for an
    hour. Only this actor is changed, so its replacement behaves."""

    def install(rollout_worker) -> None:  # defined here so Ray ships it by value to the worker
        owner, name = (rollout_worker.env, "step") if where == "env" else (rollout_worker.policy, "loss")
        original, calls = getattr(owner, name), itertools.count(1)

        def faulty(*args):
            if next(calls) == at:
                if fault == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                time.sleep(3600)
            return original(*args)

        setattr(owner, name, faulty)

    ray.get(worker.__ray_call__.remote(install))


def assert_statistics_add_up(opt, name: str, steps: int) -> None:
    """Only whole batches of completed steps are counted: a lost batch is not."""
    s = opt.stats
    assert s.env_steps == steps * BATCHES_PER_STEP.get(name, 2) * BATCH
    assert s.updates == steps * UPDATES_PER_STEP.get(name, 16)
    assert s.episodes == len(s.returns)
    assert np.isfinite(opt.weights()).all()


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_statistics_add_up_killed_workers_are_replaced_and_a_hung_one_is_named(name):
    opt = build(name)
    try:
        for _ in range(3):
            stats = opt.step()
        assert_three_steps_add_up(opt, name, stats)
        # Worker 1 is dead before step 4 begins; worker 2 dies halfway through its next sample.
        # (With sample_ahead, each is found one step later: step 4 learns on batches sampled
        # before the kill, and worker 2's next sample is the one sent in step 5.)
        kill_actor(opt.workers.remotes[0])
        opt.step()
        inject(opt.workers.remotes[1], "kill", at=SMALL.fragment_length // 2)
        opt.step()
        opt.step()
        assert opt.workers.replaced == [1, 2]
        assert_statistics_add_up(opt, name, steps=6)
        copies = ray.get([w.get_weights.remote() for w in opt.workers.remotes])
        if name in ("sync_samples", "sync_allreduce"):  # every copy holds the current weights
            np.testing.assert_array_equal(copies[0], opt.weights())
            np.testing.assert_array_equal(copies[1], opt.weights())
        if name != "sync_samples_ahead":  # (its next step learns on batches already sampled)
            assert_a_hung_worker_is_named(opt)
    finally:
        opt.stop()


def assert_a_hung_worker_is_named(opt, timeout_s: float = 2.0) -> None:
    opt.workers.timeout_s = timeout_s
    inject(opt.workers.remotes[1], "hang", at=1)  # worker 2's next environment step never returns
    start = time.monotonic()
    with pytest.raises(WorkerTimeout) as error:
        opt.step()
    elapsed = time.monotonic() - start
    assert error.value.workers == [2]
    assert "worker 2 did not answer" in str(error.value) and "within 2 s" in str(error.value)
    assert timeout_s <= elapsed < timeout_s + 20, elapsed  # the healthy worker's calls come first


@pytest.mark.parametrize("transport", ["object_store", "shm", "dist"])
def test_ddppo_rank_killed_mid_all_reduce_rebuilds_the_ring_and_copies_stay_equal(transport):
    # (gloo's survivor waits out its timeout before it can join the new group: 10 s, not 60)
    opt = build("sync_allreduce", transport=transport, timeout_s=10)
    try:
        opt.step()
        # Rank 1 dies computing its third minibatch gradient of the next round: rank 0 has
        # applied two averaged gradients and then one it could not finish averaging.
        inject(opt.workers.remotes[1], "kill", at=3, where="loss")
        opt.step()
        assert opt.workers.replaced == [2]
        assert opt.group.ranks == opt.workers.remotes  # the ring runs over the replacement
        first, second = ray.get([w.get_weights.remote() for w in opt.workers.remotes])
        np.testing.assert_array_equal(first, second)
        opt.step()
        first, second = ray.get([w.get_weights.remote() for w in opt.workers.remotes])
        np.testing.assert_array_equal(first, second)
        assert_statistics_add_up(opt, "sync_allreduce", steps=3)
    finally:
        opt.stop()
