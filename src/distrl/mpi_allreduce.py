"""MPI_Allreduce: the one-node production reference for distrl's all-reduce.

MPI is what HPC codes, and Spinning Up's data-parallel helpers, use to average gradients.
`MpiAllreduce(n)` runs n MPI ranks as one child job of the caller: the `mpiexec` of the
mpich wheel from PyPI (MPICH, whose ranks on one node talk through shared memory) starts
this module in each rank, through mpi4py. The caller sends rank 0 one request per line
of JSON on the job's stdin, and rank 0 answers one line on stdout:

- `{"time": nbytes, "calls": k}`: the seconds per MPI_Allreduce (sum) of nbytes of
  float32 held by every rank. A barrier, one untimed call (the ranks were asleep), a
  barrier, then k calls back to back; the answer is the slowest rank's time over k, as
  MPI's latency benchmarks report it (k > 1 averages out the timer and the scheduler at
  sizes where one call takes microseconds).
- `{"sum": length, "seed": s}`: rank r all-reduces `rank_input(s, r, length)`; the answer
  is the sum and whether every rank holds the same bytes.

Between requests the ranks sleep in short naps: MPICH's own waits spin, and would take
the cores from whatever the caller times next. Within a request MPICH runs as shipped.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np

NAP_S = 0.001  # an idle rank's sleep between looks at the next request


def rank_input(seed: int, rank: int, length: int) -> np.ndarray:
    """What rank `rank` contributes to a `sum` request: float32 normals, seeded per rank."""
    return np.random.default_rng(seed + rank).standard_normal(length).astype(np.float32)


class MpiAllreduce:
    """A job of `size` MPI ranks, driven from this process; `close()` (or `with`) ends it,
    waiting up to `timeout_s` for the ranks to exit before killing them."""

    def __init__(self, size: int, timeout_s: float = 60.0):
        assert size >= 1, "an MPI job needs at least one rank"
        mpiexec = Path(sysconfig.get_path("scripts")) / "mpiexec"
        if not mpiexec.exists():
            raise FileNotFoundError(f"{mpiexec} not found: install the mpich and mpi4py wheels into this environment")
        self.size, self.timeout_s = size, timeout_s
        # More ranks than cores is allowed: Hydra, mpich's launcher, does not refuse it.
        self.process = subprocess.Popen([str(mpiexec), "-n", str(size), sys.executable, "-m", __name__],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)

    def time(self, nbytes: int, calls: int = 1) -> float:
        """Seconds per all-reduce (float32 sum) of `nbytes` per rank, over `calls` in a row."""
        assert calls >= 1, "time at least one call"
        return self._ask({"time": nbytes, "calls": calls})["seconds"]

    def sum(self, length: int, seed: int) -> np.ndarray:
        """The all-reduced sum of `rank_input(seed, r, length)` over the ranks r, checked to be
        the same on every rank."""
        answer = self._ask({"sum": length, "seed": seed})
        assert answer["agree"], "the ranks' results differ"
        return np.array(answer["sum"], np.float32)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()  # end of input: every rank returns
            try:
                self.process.wait(self.timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> "MpiAllreduce":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _ask(self, request: dict) -> dict:
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the MPI job ended (exit status {self.process.wait()}) without answering {request}")
        return json.loads(line)


def main() -> None:
    """One rank's loop: take each request from rank 0, do it, and (rank 0) answer it."""
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    buffers = np.zeros(0, np.float32), np.zeros(0, np.float32)  # kept while the size stays the same
    while (request := _next_request(comm)) is not None:
        if "time" in request:
            if buffers[0].nbytes != request["time"]:
                buffers = np.ones(request["time"] // 4, np.float32), np.empty(request["time"] // 4, np.float32)
            answer = {"seconds": _time_allreduce(comm, *buffers, request["calls"])}
        else:
            answer = _checked_sum(comm, request["sum"], request["seed"])
        if comm.rank == 0:
            print(json.dumps(answer), flush=True)


def _next_request(comm) -> dict | None:
    """Rank 0 reads a line (None at end of input) and broadcasts it; the others nap meanwhile."""
    line = sys.stdin.readline() if comm.rank == 0 else ""
    # The request as (kind, a, b): 0 the end, 1 {"time": a, "calls": b}, 2 {"sum": a, "seed": b}.
    message = np.zeros(3, np.int64)
    if line:
        request = json.loads(line)
        message[:] = (1, request["time"], request["calls"]) if "time" in request else (2, request["sum"], request["seed"])
    pending = comm.Ibcast(message, root=0)
    while not pending.Test():
        time.sleep(NAP_S)
    kind, a, b = (int(v) for v in message)
    return None if kind == 0 else {"time": a, "calls": b} if kind == 1 else {"sum": a, "seed": b}


def _time_allreduce(comm, send: np.ndarray, out: np.ndarray, calls: int) -> float:
    from mpi4py import MPI

    comm.Barrier()
    comm.Allreduce(send, out, op=MPI.SUM)
    comm.Barrier()
    start = time.perf_counter()
    for _ in range(calls):
        comm.Allreduce(send, out, op=MPI.SUM)
    return comm.allreduce((time.perf_counter() - start) / calls, op=MPI.MAX)


def _checked_sum(comm, length: int, seed: int) -> dict:
    from mpi4py import MPI

    out = np.empty(length, np.float32)
    comm.Allreduce(rank_input(seed, comm.rank, length), out, op=MPI.SUM)
    results = comm.gather(out, root=0)
    if comm.rank != 0:
        return {}
    return {"sum": out.tolist(), "agree": all(np.array_equal(r, out) for r in results)}


if __name__ == "__main__":
    main()
