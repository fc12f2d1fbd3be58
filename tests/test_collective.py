"""distrl.collective: every algorithm on either transport equals numpy's reduction, the
building blocks compose, a lost participant fails the call in bounded time, and it all runs
across two nodes (where the shared-memory transport falls back to the object store)."""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pytest
import ray
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distrl.collective import CollectiveGroup, Participant, ParticipantLost
from distrl.mpi_allreduce import MpiAllreduce, rank_input
from distrl.partition import chunk_bounds

from conftest import kill_actor

# (algorithm, transport) pairs; None: the default (the ring on the object store, the ring or
# the direct path by size on shared memory).
METHODS = [("naive", None), ("tree", None), ("gloo", None), ("ring", "object_store"), ("ring", "shm"),
           ("direct", "shm"), (None, "shm")]
REFERENCE = {"sum": np.add, "mean": np.add, "max": np.maximum, "min": np.minimum}


@pytest.fixture(scope="module")
def groups(ray_session):
    """One group per size, reused by every example (actors take a second to start), each
    with shared-memory buffers, on which the object store's algorithms run too."""
    # 15 actors at a tenth of a CPU each fit the session's 2 CPUs (Ray would leave the rest unplaced).
    made = {n: CollectiveGroup(n, num_cpus_per_participant=0.1, timeout_s=30, transport="shm") for n in range(1, 6)}
    yield made
    for group in made.values():
        group.stop()


def expected(inputs: list[np.ndarray], op: str) -> np.ndarray:
    stacked = np.stack(inputs)
    out = REFERENCE[op].reduce(stacked, axis=0, dtype=stacked.dtype)
    return out / len(inputs) if op == "mean" else out


def assert_reduced(outputs, inputs, op):
    want = expected(inputs, op)
    for out in outputs:
        assert out.dtype == want.dtype and out.shape == want.shape
        if np.issubdtype(want.dtype, np.integer) or op in ("max", "min"):
            np.testing.assert_array_equal(out, want)  # exact: no rounding in these
        else:
            # Float sums in another order: within a few ulps of the sum of magnitudes.
            eps = np.finfo(want.dtype).eps
            scale = np.abs(np.stack(inputs)).sum(axis=0) / (len(inputs) if op == "mean" else 1)
            assert (np.abs(out - want) <= 4 * len(inputs) * eps * scale + 1e-30).all()
    for out in outputs[1:]:
        np.testing.assert_array_equal(out, outputs[0])  # every rank holds the same result


@st.composite
def collective_inputs(draw):
    n = draw(st.integers(1, 5))
    length = draw(st.integers(0, 10_000))
    dtype = draw(st.sampled_from([np.float32, np.float64, np.int32, np.int64]))
    op = draw(st.sampled_from(["sum", "max", "min"] + (["mean"] if np.issubdtype(dtype, np.floating) else [])))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if np.issubdtype(dtype, np.integer):
        inputs = [rng.integers(-10**6, 10**6, length).astype(dtype) for _ in range(n)]
    else:
        inputs = [(rng.standard_normal(length) * 10.0 ** rng.integers(-3, 4)).astype(dtype) for _ in range(n)]
    return n, inputs, op


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=collective_inputs(), method=st.sampled_from(METHODS))
def test_allreduce_equals_numpy_for_every_algorithm_and_transport(groups, case, method):
    n, inputs, op = case
    originals = [x.copy() for x in inputs]
    group = groups[n]
    group.set_buffers(inputs)
    group.allreduce(op, method[0], transport=method[1])
    assert_reduced(group.buffers(), inputs, op)
    for x, y in zip(inputs, originals):
        np.testing.assert_array_equal(x, y)  # the caller's arrays are untouched


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=collective_inputs(), segments=st.integers(1, 3))
def test_reduce_scatter_then_allgather_is_allreduce(groups, case, segments):
    n, inputs, op = case
    group = groups[n]
    group.set_buffers(inputs)
    group.reduce_scatter(op, segments)
    want = expected(inputs, op)
    for rank, chunk in enumerate(group.chunks()):
        lo, hi = chunk_bounds(len(want), n)[rank]
        assert_reduced([chunk], [x[lo:hi] for x in inputs], op)
    group.allgather()
    assert_reduced(group.buffers(), inputs, op)


def test_a_rank_given_no_tensor_and_running_no_gloo_never_imports_torch(ray_session):
    group = CollectiveGroup(2, num_cpus_per_participant=0.1, transport="shm")
    try:
        group.set_buffers([np.ones(10, np.float32)] * 2)
        group.allreduce("sum")
        group.allreduce("sum", "tree", transport="object_store")
        assert ray.get([p.__ray_call__.remote(lambda self: "torch" in sys.modules) for p in group.ranks]) == [False] * 2
    finally:
        group.stop()


def test_an_empty_first_buffer_on_shared_memory_reduces_to_nothing(ray_session):
    group = CollectiveGroup(1, num_cpus_per_participant=0.1, transport="shm")
    try:
        group.set_buffers([np.zeros(0, np.float32)])
        group.allreduce("sum")
        assert [len(out) for out in group.buffers()] == [0]
    finally:
        group.stop()


@given(length=st.integers(0, 10_000), parts=st.integers(1, 9))
def test_chunk_bounds_cover_the_buffer_in_near_equal_pieces(length, parts):
    bounds = chunk_bounds(length, parts)
    assert len(bounds) == parts and bounds[0][0] == 0 and bounds[-1][1] == length
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    sizes = [hi - lo for lo, hi in bounds]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def test_broadcast_and_torch_buffers(groups):
    group = groups[3]
    inputs = [torch.full((2, 5), float(r)) for r in range(3)]
    group.set_buffers(inputs)
    group.broadcast(root=2)
    for out in group.buffers():
        assert isinstance(out, torch.Tensor) and out.shape == (2, 5)
        assert torch.equal(out, inputs[2])
    group.set_buffers(inputs)
    group.allreduce("mean", "ring")
    for out in group.buffers():
        assert torch.equal(out, torch.full((2, 5), 1.0))


def test_bad_requests_are_refused_clearly(groups):
    group = groups[2]
    with pytest.raises(ValueError, match="one shape and dtype"):
        group.set_buffers([np.zeros(3), np.zeros(4)])
    group.set_buffers([np.arange(4), np.arange(4)])
    with pytest.raises(TypeError, match="mean of int64"):
        group.allreduce("mean")
    with pytest.raises(ValueError, match="unknown algorithm"):
        group.allreduce("sum", "butterfly")
    with pytest.raises(ValueError, match="unknown op"):
        group.allreduce("prod")
    with pytest.raises(ValueError, match="unknown transport"):
        group.allreduce("sum", transport="carrier pigeon")
    with pytest.raises(ValueError, match="direct algorithm runs on the shared-memory transport only"):
        group.allreduce("sum", "direct", transport="object_store")
    plain = CollectiveGroup(1, num_cpus_per_participant=0.1)
    with pytest.raises(ValueError, match="no shared-memory buffers"):
        plain.allreduce("sum", transport="shm")
    plain.stop()
    # (participants that asked for no GPU are assigned none, on a machine with GPUs too)
    with pytest.raises(ValueError, match=r"NCCL needs a GPU on every rank; ranks \[0, 1\] have none"):
        group.allreduce("sum", "nccl")


@pytest.mark.parametrize("algorithm, transport", [("naive", "object_store"), ("tree", "object_store"),
                                                  ("ring", "object_store"), ("ring", "shm"), ("direct", "shm")])
def test_a_dead_participant_fails_the_call_naming_its_rank(ray_session, algorithm, transport):
    # Rank 2: a leaf of the tree.
    group = CollectiveGroup(3, num_cpus_per_participant=0.1, timeout_s=10, transport=transport)
    group.set_buffers([np.ones(1_000_000, np.float32)] * 3)
    group.allreduce("sum", algorithm)
    kill_actor(group.ranks[2])
    start = time.monotonic()
    with pytest.raises(ParticipantLost, match="rank 2") as lost:
        group.allreduce("sum", algorithm)
    assert lost.value.ranks == [2] and time.monotonic() - start < 25
    group.stop()


@pytest.mark.parametrize("transport", ["object_store", "shm"])
def test_a_participant_dying_mid_ring_fails_the_others_in_bounded_time(ray_session, transport):
    group = CollectiveGroup(3, num_cpus_per_participant=0.1, timeout_s=10, transport=transport)
    group.set_buffers([np.ones(32_000_000, np.float32)] * 3)  # 128 MB: the ring takes a while
    killer = threading.Timer(0.05, ray.kill, args=(group.ranks[1],))
    start = time.monotonic()
    killer.start()
    with pytest.raises(ParticipantLost, match="rank 1"):
        for _ in range(20):  # if a ring ends before the kill lands, the next one meets it
            group.allreduce("sum", "ring")
    assert time.monotonic() - start < 40
    group.stop()


def test_gloo_with_a_dead_peer_times_out_instead_of_hanging(ray_session):
    group = CollectiveGroup(3, num_cpus_per_participant=0.1, timeout_s=5)
    group.set_buffers([np.ones(1000, np.float32)] * 3)
    group.allreduce("sum", "gloo")
    kill_actor(group.ranks[0])
    start = time.monotonic()
    with pytest.raises(ParticipantLost, match="rank 0"):
        group.allreduce("sum", "gloo")
    assert time.monotonic() - start < 30
    group.stop()


def test_importing_torch_is_not_timed_as_part_of_the_first_gloo_call(ray_session):
    class SlowToImportTorch(Participant):  # (defined here, so Ray ships it by value)
        """A rank whose torch import takes longer than a short timeout allows (three ranks
        importing torch at once on a loaded CI machine took over 10 s)."""

        def import_torch(self) -> None:
            time.sleep(10)
            super().import_torch()
            self.imported = True

        def dist_init(self, address: str, port: int, timeout_s: float) -> None:
            assert getattr(self, "imported", False), "asked to join before importing torch"
            super().dist_init(address, port, timeout_s)

    ranks = [ray.remote(num_cpus=0.1)(SlowToImportTorch).remote(r, 2) for r in range(2)]
    group = CollectiveGroup.of(ranks, 1000, timeout_s=4)  # a collective gets 4 + 5 s: less than the import
    group.set_buffers([np.ones(1000, np.float32)] * 2)
    group.allreduce("sum", "gloo")
    for out in group.buffers():
        np.testing.assert_array_equal(out, np.full(1000, 2, np.float32))
    group.stop()


def test_allreduce_on_a_simulated_two_node_cluster(two_nodes):
    two_nodes("""
        import warnings
        import numpy as np
        from distrl.collective import CollectiveGroup

        placements = [{"resources": {"head": 0.1}}, {"resources": {"second": 0.1}}] * 2
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            group = CollectiveGroup(4, actor_options=placements, timeout_s=60, transport="shm")
        assert group.transport == "object_store", group.transport  # shared memory stops at the machine
        assert any("on 2 nodes" in str(w.message) for w in said), [str(w.message) for w in said]
        nodes = {ray.get(p.node_id.remote()) for p in group.ranks}
        assert len(nodes) == 2, nodes
        inputs = [np.random.default_rng(r).integers(-100, 100, 300_001) for r in range(4)]
        for algorithm in ("naive", "tree", "ring", "gloo"):
            group.set_buffers(inputs)
            group.allreduce("sum", algorithm)
            for out in group.buffers():
                np.testing.assert_array_equal(out, sum(inputs))
    """)


def test_mpi_allreduce_sums_for_two_ranks_and_ends_cleanly():
    with MpiAllreduce(2) as job:
        out = job.sum(1001, seed=7)
        assert 0 < job.time(4096, calls=3) < 1.0
    # Two terms: one rounding, the same in either order, so exactly numpy's sum.
    np.testing.assert_array_equal(out, rank_input(7, 0, 1001) + rank_input(7, 1, 1001))
    assert job.process.returncode == 0
