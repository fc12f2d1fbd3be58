"""distrl.shm_ring: the shared-memory ring equals numpy's reduction on every rank, a lost or
silent rank fails the others' call within the bound, and no buffer outlives its ranks.

The ranks are plain processes here (the transport needs no Ray), each serving requests
over a pipe, so that these tests run beside the Ray tests instead of behind them."""

from __future__ import annotations

import glob
import os
import random
import signal
import threading
import time
import uuid

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distrl.shm_ring import RingBroken, ShmRing

from conftest import rank_processes

CAPACITY = 80_000  # bytes: 10^4 float64
DTYPES = (np.float32, np.float64, np.int32, np.int64)
REFERENCE = {"sum": np.add, "mean": np.add, "max": np.maximum, "min": np.minimum}


def serve(group: str, rank: int, size: int, timeout_s: float, pipe) -> None:
    """One rank: connect, then answer (op, array, algorithm) with the all-reduced array, or
    the error; ("loop", calls, None) with the number of wrong results in `calls` of its own;
    ("abort", None, None) by aborting."""
    ring = ShmRing(group, rank, size, CAPACITY, timeout_s)
    ring.connect()
    pipe.send("connected")
    while (request := pipe.recv()) is not None:
        op, array, algorithm = request
        if op == "loop":
            pipe.send(loop(ring, rank, size, calls=array))
            continue
        if op == "abort":
            ring.abort("a test")
            pipe.send(None)
            continue
        try:
            buffer = ring.buffer(array.dtype, len(array))
            buffer[:] = array
            ring.allreduce(op, array.dtype, len(array), algorithm)
            pipe.send(buffer.copy())
            del buffer
        except Exception as error:
            pipe.send(error)
    ring.close()


def loop(ring: ShmRing, rank: int, size: int, calls: int) -> int:
    """`calls` all-reduces in a row, each rank on its own: the sizes alternate between the
    direct path and the ring, and a rank sometimes naps before a call, so that one rank's
    next call starts while another is still in the last one."""
    nap, wrong = random.Random(rank), 0
    for call in range(calls):
        length = (10, 1000, 9000)[call % 3]  # int64: direct, direct, ring (72 KB)
        buffer = ring.buffer(np.int64, length)
        buffer[:] = (rank + 1) * 1000 + call
        if nap.random() < 0.2:
            time.sleep(nap.random() * 0.002)
        ring.allreduce("sum", np.int64, length)
        wrong += int((buffer != size * (size + 1) // 2 * 1000 + size * call).any())
        del buffer
    return wrong


class Ring:
    """n rank processes on one ShmRing."""

    def __init__(self, size: int, timeout_s: float = 30.0):
        context = rank_processes()
        self.group, self.pipes, self.processes = uuid.uuid4().hex[:12], [], []
        for rank in range(size):
            mine, theirs = context.Pipe()
            process = context.Process(target=serve, args=(self.group, rank, size, timeout_s, theirs), daemon=True)
            process.start()
            self.pipes.append(mine)
            self.processes.append(process)
        for pipe in self.pipes:
            assert pipe.poll(60) and pipe.recv() == "connected"

    def call(self, op: str, inputs: list[np.ndarray], algorithm: str | list[str] | None = None,
             ranks: list[int] | None = None, wait_s: float = 60) -> list:
        """Each of `ranks` (all by default) all-reduces its input, by `algorithm` (one for
        all, or one per rank); their results or errors."""
        ranks = range(len(self.pipes)) if ranks is None else ranks
        for r in ranks:
            self.pipes[r].send((op, inputs[r], algorithm[r] if isinstance(algorithm, list) else algorithm))
        return [self.pipes[r].recv() if self.pipes[r].poll(wait_s) else TimeoutError(f"rank {r}") for r in ranks]

    def without_rank_1(self, algorithm: str) -> tuple[list[str], float]:
        """Ranks 0 and 2 all-reduce and rank 1 does not: their errors, each checked to be a
        RingBroken, and the seconds until both had one."""
        start = time.monotonic()
        errors = self.call("sum", [np.ones(100)] * 3, algorithm, ranks=[0, 2])
        assert all(isinstance(e, RingBroken) for e in errors), errors
        return [str(e) for e in errors], time.monotonic() - start

    def close(self) -> None:
        for pipe, process in zip(self.pipes, self.processes):
            if process.is_alive():
                pipe.send(None)
            process.join(10)
            assert not process.is_alive()

    def files(self) -> list[str]:
        return glob.glob(f"/dev/shm/distrl-ring-{self.group}-*")

    def __enter__(self) -> "Ring":
        return self

    def __exit__(self, *exc) -> None:
        """Kill the ranks, whatever state the test left them in."""
        for process in self.processes:
            process.kill()
            process.join(10)


@pytest.fixture(scope="module")
def rings():
    made = {n: Ring(n) for n in (1, 2, 3, 4)}
    yield made
    for ring in made.values():
        ring.close()


@st.composite
def ring_inputs(draw):
    n = draw(st.integers(1, 4))
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    length = draw(st.integers(0, CAPACITY // dtype.itemsize))
    op = draw(st.sampled_from(["sum", "max", "min"] + (["mean"] if np.issubdtype(dtype, np.floating) else [])))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if np.issubdtype(dtype, np.integer):
        inputs = [rng.integers(-10**6, 10**6, length).astype(dtype) for _ in range(n)]
    else:
        inputs = [(rng.standard_normal(length) * 10.0 ** rng.integers(-3, 4)).astype(dtype) for _ in range(n)]
    return n, inputs, op


@pytest.mark.parametrize("algorithm", ["ring", "direct"])
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ring_inputs())
def test_every_rank_holds_numpys_reduction(rings, algorithm, case):
    n, inputs, op = case
    outputs = rings[n].call(op, inputs, algorithm)
    stacked = np.stack(inputs)
    want = REFERENCE[op].reduce(stacked, axis=0, dtype=stacked.dtype)
    want = want / n if op == "mean" else want
    for out in outputs:
        assert isinstance(out, np.ndarray), out
        assert out.dtype == want.dtype and out.shape == want.shape
        if np.issubdtype(want.dtype, np.integer) or op in ("max", "min"):
            np.testing.assert_array_equal(out, want)
        else:  # float sums in another order: within a few ulps of the sum of magnitudes
            scale = np.abs(stacked).sum(axis=0) / (n if op == "mean" else 1)
            assert (np.abs(out - want) <= 4 * n * np.finfo(want.dtype).eps * scale + 1e-30).all()
        np.testing.assert_array_equal(out, outputs[0])  # every rank holds the same bytes


@pytest.mark.parametrize("n", [2, 3, 4])
def test_ranks_calling_on_their_own_never_read_a_buffer_being_rewritten(rings, n):
    ring = rings[n]
    assert ring.files() == []  # every name went once all ranks had mapped the buffers
    assert ring.call("loop", [300] * n) == [0] * n  # wrong results per rank


@pytest.mark.parametrize("algorithm", ["ring", "direct"])
def test_a_silent_rank_fails_the_others_within_the_bound_and_the_ring_stays_broken(algorithm):
    with Ring(3, timeout_s=2.0) as ring:
        errors, elapsed = ring.without_rank_1(algorithm)
        assert any("within 2 s" in e for e in errors), errors
        assert 2.0 <= elapsed < 2.0 + 5, elapsed
        errors = [str(e) for e in ring.call("sum", [np.ones(100)] * 3, algorithm, wait_s=30)]
        assert "an earlier call failed" in errors[0] and "an earlier call failed" in errors[2], errors
        assert "aborted" in errors[1], errors  # the others' ABORTs were waiting for it


@pytest.mark.parametrize("algorithm", ["ring", "direct"])
def test_a_dead_rank_fails_the_others_at_once_and_leaves_no_memory(algorithm):
    with Ring(3, timeout_s=10.0) as ring:
        os.kill(ring.processes[1].pid, signal.SIGKILL)
        ring.processes[1].join(10)
        errors, elapsed = ring.without_rank_1(algorithm)
        assert any("rank 1 is gone" in e for e in errors), errors  # a send to it is refused at once
        if algorithm == "ring":  # rank 2 sends only to rank 0, and learns it from rank 0's ABORT
            assert any("rank 0 aborted" in e for e in errors), errors
        assert elapsed < 5.0  # no one waited out the 10 s
        assert ring.files() == []


@pytest.mark.parametrize("algorithm", ["ring", "direct"])
def test_a_rank_dying_while_the_others_wait_fails_them_within_a_probe(algorithm):
    with Ring(3, timeout_s=30.0) as ring:
        threading.Timer(0.5, os.kill, args=(ring.processes[1].pid, signal.SIGKILL)).start()
        errors, elapsed = ring.without_rank_1(algorithm)
        assert any("rank 1 is gone" in e for e in errors), errors
        assert elapsed < 5.0  # not the 30 s a silent rank is given


def test_more_ranks_than_a_socket_queues_messages_for():
    # A socket here holds 11 unread datagrams (net.unix.max_dgram_qlen = 10, plus one); a
    # rank that comes late to a direct call of 13 ranks is owed 12 READYs.
    n = 13
    with Ring(n, timeout_s=30.0) as ring:
        inputs = [np.full(10, r, np.int64) for r in range(n)]
        for algorithm in ("direct", "ring"):
            for r in range(n - 1):
                ring.pipes[r].send(("sum", inputs[r], algorithm))
            time.sleep(0.5)  # all but the last rank have sent what they could
            ring.pipes[n - 1].send(("sum", inputs[n - 1], algorithm))
            for pipe in ring.pipes:
                assert pipe.poll(60)
                np.testing.assert_array_equal(pipe.recv(), np.full(10, sum(range(n))))


def test_an_abort_reaches_a_rank_whose_queue_is_full():
    # Twelve ranks call at once (the direct path: each sends READY to all the others), and
    # the thirteenth, late, is owed eleven READYs, all its socket holds; rank 0 aborts.
    n = 13
    with Ring(n, timeout_s=30.0) as ring:
        for r in range(1, n - 1):
            ring.pipes[r].send(("sum", np.ones(10), "direct"))
        time.sleep(0.5)
        ring.pipes[0].send(("abort", None, None))
        time.sleep(0.2)
        start = time.monotonic()
        (late,) = ring.call("sum", [np.ones(10)] * n, "direct", ranks=[n - 1])
        # (from rank 0, or from a rank that rank 0's ABORT failed and that aborted in turn)
        assert isinstance(late, RingBroken) and "aborted the call" in str(late), late
        assert time.monotonic() - start < 5.0  # not the 30 s it would wait for rank 0's data
        assert ring.pipes[0].poll(10) and ring.pipes[0].recv() is None
        for r in range(1, n - 1):  # (again from rank 0 or from one of the others it failed)
            assert ring.pipes[r].poll(10) and "aborted the call" in str(ring.pipes[r].recv())


@pytest.mark.parametrize("algorithm", ["ring", "direct", ["ring", "direct"]])
def test_ranks_that_disagree_on_length_or_algorithm_are_named(algorithm):
    lengths = (10, 10) if isinstance(algorithm, list) else (10, 12)
    with Ring(2, timeout_s=5.0) as ring:
        errors = ring.call("sum", [np.ones(length, np.float32) for length in lengths], algorithm)
        assert all(isinstance(e, RingBroken) for e in errors), errors
        want = ("by ring", "by direct") if isinstance(algorithm, list) else ("10 × float32", "12 × float32")
        assert any(all(w in str(e) for w in want) for e in errors), errors


def test_one_rank_bad_arguments_and_closing_leave_nothing():
    group = uuid.uuid4().hex[:12]
    ring = ShmRing(group, 0, 1, capacity=64)
    ring.connect()
    buffer = ring.buffer(np.float64)
    assert len(buffer) == 8
    buffer[:] = np.arange(8)
    ring.allreduce("mean", np.float64)
    np.testing.assert_array_equal(buffer, np.arange(8))
    with pytest.raises(ValueError, match="unknown op 'prod'"):
        ring.allreduce("prod")
    with pytest.raises(TypeError, match="mean of int64"):
        ring.allreduce("mean", np.int64)
    with pytest.raises(ValueError, match="unknown algorithm 'tree'"):
        ring.allreduce("sum", algorithm="tree")
    with pytest.raises(ValueError, match="the ring holds 64"):
        ring.buffer(np.float64, 9)
    del buffer
    ring.abort("a test")
    with pytest.raises(RingBroken, match="an earlier call failed \\(a test\\)"):
        ring.allreduce("sum")
    ring.close()
    unconnected = ShmRing(group, 0, 2, capacity=64)
    unconnected.close()  # it never connected: its file is removed here
    assert glob.glob(f"/dev/shm/distrl-ring-{group}-*") == []
