"""Collective communication among Ray actors: all-reduce and the pieces it is made of.

The RLlib paper's second way to move parameters has no server: every participant ends with
the reduction (sum, mean, max or min) of everyone's buffer. A `CollectiveGroup` holds n
`Participant` actors, each with a buffer of its own, and all-reduces it three ways:

- naive: every rank sends its buffer to rank 0, which reduces them all and sends the result
  back. Rank 0 moves and reduces (n−1)·N bytes; everyone else waits.
- tree: partial reductions flow up a binary tree (rank r's children are 2r+1 and 2r+2),
  whose depth is ⌊log2 n⌋: that many levels, a parent adding both children's partial sums
  in one step; the result then goes back to everyone.
- ring: reduce-scatter, then all-gather. The buffer is cut into n contiguous chunks; in
  round s of n−1, rank i sends chunk (i−s−1) mod n to rank i+1, which adds its own copy of
  that chunk. Afterwards rank i holds chunk i fully reduced, and the all-gather gives every
  rank every chunk. On a network each rank sends and receives 2(n−1)/n · N bytes, whatever
  n is, and does 1/n of the reduction (on one node the all-gather reads chunks in place:
  below).

`reduce_scatter`, `allgather` and `broadcast` are offered on their own; the ring all-reduce
is literally the first two in sequence.

How data moves. The ring is not decentralised: the driver plans a collective as a graph
of actor tasks and submits the whole graph at once, every message being a task whose
argument is the reference to what another participant sent. The driver blocks on none of
the steps, but it takes part in each: Ray's caller holds a task until its arguments exist
and then sends it to its actor, so every step costs a round through the driver, and a
plan's fixed cost grows with the number of tasks the driver submits (naive and tree
2n−1, ring n(n+1), gloo and nccl n). What a participant sends is the array its task returns. Ray
writes a returned array of 100 KiB or more into the shared-memory object store, and the
driver handles only its reference, so those bytes go from rank to rank; a smaller one Ray
inlines into the task's reply, which goes to the driver (the caller) and from there into
the receiving task, so those bytes pass through the driver. DD-PPO's gradient (about 37 KB
for a CartPole policy) is all chunks of that kind. Putting even small chunks into the
store from the participant (passing nested references) would keep their bytes off the
driver, but measured here it makes a 4 KiB ring at n=4 about three times slower (40 ms
against 14), so small messages take Ray's inline path. On one node the receiver reads a
chunk in place from shared memory (numpy arrays come out of the store zero-copy) and
reduces it straight into its own buffer. A chunk that is passed on unchanged (the
broadcast after naive and tree, the ring's all-gather) is passed on by reference: it is
put once and every rank that needs it reads that one object, where a network
implementation would send it again at every hop. Copies that remain, because the store
owns its memory: one into the store per message sent, and one out of it for each chunk
that is copied (not reduced) into a buffer. Counted over all ranks, each of the three
plans so puts n buffers' worth into the store, reduces n−1 and copies n−1 out: on one node
they differ in how that work is spread over ranks and in task count, not in its amount.

The reference backends run torch.distributed's all-reduce inside the same actors, on the
same buffers, so a comparison is like for like: `algorithm="gloo"` on the host buffers, and
`algorithm="nccl"` on a copy of each buffer on its rank's GPU (the copies there and back
are part of what it costs; a caller whose data already lives on the GPU calls
`Participant.dist_allreduce` on the tensor itself). Every rank joins one process group whose
backend follows the tensor: gloo for host memory, NCCL for a GPU's, where every rank has a
GPU of its own: one Ray assigned it (`num_gpus` in the actor's options; Ray 2.60 leaves all
of a node's GPUs visible to an actor that asks for none, so a rank goes by
`ray.get_gpu_ids()`, not by what torch sees). A rank imports torch only when it runs these
or is given a tensor: importing it takes 1.3 s of CPU here, most of what starting a
participant's process costs.

Transports. All of the above is the object store's path (`transport="object_store"`). With
`transport="shm"` each rank's buffer lives instead in a `ShmRing` (`distrl.shm_ring`):
shared memory mapped once by every rank, reused across calls, and the ranks signal each
other directly, so an all-reduce is one task per rank and no byte or step passes through
the driver or the store. It offers the ring (`algorithm="ring"`) and a direct path for
small buffers (`"direct"`; by default the ring above 64 KiB, direct below). The other
algorithms still run on a shm group's buffers through the store, so both transports can be
timed on the same ranks and buffers (`allreduce(..., transport="object_store")`). Shared
memory does not reach across machines: a group whose ranks are on several nodes falls back
to the object store, with a warning.

Failure. If a participant dies, every task that needs what it would have sent fails too, so
the call raises `ParticipantLost` naming the rank, within `timeout_s`; nothing waits for a
message that will never come (gloo is initialised with the same timeout). The group's
buffers are then in an unknown state: stop it and make a new one.
"""

from __future__ import annotations

import socket
import uuid
import warnings
from collections.abc import Sequence
from datetime import timedelta

import numpy as np
import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayError

from .cluster import actor_cpus
from .partition import chunk_bounds
from .shm_ring import ShmRing

OPS = {"sum": np.add, "mean": np.add, "max": np.maximum, "min": np.minimum}
ALGORITHMS = ("naive", "tree", "ring", "gloo", "nccl", "direct")
TRANSPORTS = ("object_store", "shm")
DTYPES = (np.float32, np.float64, np.int32, np.int64)


class ParticipantLost(RuntimeError):
    """A participant died during a collective; `ranks` names the lost ones."""

    def __init__(self, ranks: list[int], operation: str):
        self.ranks = ranks
        super().__init__(f"{operation} failed: participant rank {', '.join(map(str, ranks))} died")


def gpus_per_rank(device: str) -> int:
    """The GPUs a rank that computes on `device` asks Ray for: one of its own on "cuda" (NCCL
    does not share a GPU between ranks), none on the CPU. Ray makes the GPU it assigned a
    rank that rank's cuda:0, so any other index is refused."""
    import torch

    kind = torch.device(device)
    if kind.type == "cuda" and kind.index not in (None, 0):
        raise ValueError(f"device {device!r}: each rank sees the one GPU Ray assigned it as cuda:0; pass 'cuda'")
    return int(kind.type == "cuda")


class Participant:
    """One rank: a buffer, and the steps the collectives are planned from. A step that
    sends returns the chunk (a view of the buffer: Ray copies it into the store as the
    task returns, so later changes to the buffer do not reach what was sent)."""

    def __init__(self, rank: int, size: int):
        self.rank, self.size = rank, size
        self.flat, self.shape, self.as_torch = np.zeros(0, np.float32), (0,), False
        self.ring: ShmRing | None = None

    def set_buffer(self, buffer) -> None:
        self.as_torch = not isinstance(buffer, (np.ndarray, np.generic))  # numpy's, or a torch tensor
        array = buffer.numpy(force=True) if self.as_torch else np.asarray(buffer)
        # The argument arrives read-only from the object store; the rank owns a copy (in
        # its shared-memory ring, where it has one).
        self.shape = array.shape
        if self.ring is not None and array.nbytes <= self.ring.capacity:
            self.flat = self.ring.buffer(array.dtype, array.size)
            np.copyto(self.flat, array.reshape(-1))
        else:
            self.flat = np.array(array, copy=True).reshape(-1)

    def get_buffer(self):
        return self._as_given(self.flat.reshape(self.shape))

    def get_chunk(self):
        lo, hi = chunk_bounds(len(self.flat), self.size)[self.rank]
        return self._as_given(self.flat[lo:hi])

    def _as_given(self, array: np.ndarray):
        """`array` as the kind of buffer this rank was given."""
        if not self.as_torch:
            return array
        import torch  # (imported already: unpickling the tensor this rank was given did)

        return torch.from_numpy(array)

    def ping(self) -> int:
        return self.rank

    def node_id(self) -> str:
        return ray.get_runtime_context().get_node_id()

    def shm_open(self, group: str, rank: int, size: int, capacity: int, timeout_s: float) -> None:
        """Make this rank's ShmRing of `capacity` bytes (any older one closed); then every
        rank calls `shm_connect` at once."""
        assert (rank, size) == (self.rank, self.size), \
            f"the group takes this actor as rank {rank} of {size}, but it is rank {self.rank} of {self.size}"
        self.shm_close()
        self.ring = ShmRing(group, rank, size, capacity, timeout_s)

    def shm_connect(self) -> None:
        self.ring.connect()

    def shm_allreduce(self, op: str, algorithm: str | None) -> None:
        """The buffer ← op over all ranks' buffers, through the ring's shared memory. A
        buffer set while the ring was smaller, or computed into a new array (a gradient),
        is copied into the ring first."""
        try:
            view = self.ring.buffer(self.flat.dtype, len(self.flat))
        except ValueError as error:  # larger than the ring: the other ranks must not wait for this one
            self.ring.abort(str(error))
            raise
        if not np.may_share_memory(view, self.flat):
            np.copyto(view, self.flat)
            self.flat = view
        self.ring.allreduce(op, self.flat.dtype, len(self.flat), algorithm)

    def shm_close(self) -> None:
        if self.ring is not None:
            self.flat = np.array(self.flat, copy=True)  # no view into the ring may outlive it
            self.ring.close()
            self.ring = None

    def send(self, lo: int, hi: int) -> np.ndarray:
        return self.flat[lo:hi]

    def reduce(self, lo: int, hi: int, op: str, finish: bool, *incoming: np.ndarray) -> np.ndarray:
        """buffer[lo:hi] ← op(buffer[lo:hi], each incoming); then send it on."""
        mine = self.flat[lo:hi]
        for message in incoming:
            OPS[op](mine, message, out=mine)
        if finish and op == "mean":
            mine /= self.size
        return mine

    def receive(self, bounds: list[tuple[int, int]], *messages: np.ndarray) -> None:
        """buffer[lo:hi] ← message, for each (lo, hi) and message in turn."""
        for (lo, hi), message in zip(bounds, messages):
            self.flat[lo:hi] = message

    def dist_address(self) -> tuple[str, int]:
        with socket.socket() as s:  # a free port on this node, for the rendezvous
            s.bind(("", 0))
            return ray.util.get_node_ip_address(), s.getsockname()[1]

    def gpus(self) -> int:
        """The GPUs Ray assigned this rank (with `num_gpus`)."""
        return len(ray.get_gpu_ids())

    def import_torch(self) -> None:
        """Import torch.distributed, which takes seconds (tens on a loaded machine): a group
        has its ranks do it before they join, so that joining is timed alone."""
        import torch.distributed  # noqa: F401

    def dist_init(self, address: str, port: int, timeout_s: float) -> None:
        """Join the torch.distributed group: gloo for host tensors, and NCCL for GPU tensors
        where Ray assigned this rank a GPU (NCCL needs it on every rank: `start_dist` checks,
        and so does an optimizer that puts its ranks on GPUs). A group this rank joined
        before (with a peer since replaced) is left first."""
        import torch
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
        backend = "gloo"
        if self.gpus():
            torch.cuda.set_device(0)  # Ray makes the GPUs it assigned the first ones visible
            backend = "cpu:gloo,cuda:nccl"
        dist.init_process_group(backend, init_method=f"tcp://{address}:{port}", rank=self.rank,
                                world_size=self.size, timeout=timedelta(seconds=timeout_s))

    def dist_allreduce(self, op: str, device: str | None = None) -> None:
        """The buffer (host memory or a tensor on a GPU) ← op over all ranks, in place, by
        torch.distributed: gloo in host memory, NCCL on a GPU. With `device`, a host buffer is
        reduced on a copy there (`"cuda"`: NCCL between the ranks' GPUs)."""
        import torch
        import torch.distributed as dist

        tensor = torch.as_tensor(self.flat)  # a numpy buffer's own memory: reduced in place
        work = tensor if device is None else tensor.to(device)
        ops = {"sum": dist.ReduceOp.SUM, "mean": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}
        dist.all_reduce(work, op=ops[op])
        if op == "mean":
            work /= self.size
        if work is not tensor:
            tensor.copy_(work)


class CollectiveGroup:
    """n participants, and the driver-side plans of each collective."""

    def __init__(self, size: int, num_cpus_per_participant: float | None = None,
                 actor_options: dict | Sequence[dict] | None = None, timeout_s: float = 60.0,
                 start_timeout_s: float = 300.0, transport: str = "object_store"):
        """Returns once every participant's process is up: `timeout_s` then bounds each
        collective alone, not also the start of a process that imports torch (seconds, and
        tens of seconds on a loaded machine), which has its own `start_timeout_s`.
        `transport`: "object_store" or "shm" (see the module)."""
        assert size >= 1, "a group needs at least one participant"
        if transport not in TRANSPORTS:
            raise ValueError(f"unknown transport {transport!r}; use one of {TRANSPORTS}")
        per_rank = actor_options if isinstance(actor_options, Sequence) else [actor_options or {}] * size
        num_cpus_per_participant = actor_cpus() if num_cpus_per_participant is None else num_cpus_per_participant
        cls = ray.remote(num_cpus=num_cpus_per_participant)(Participant)
        self.size, self.timeout_s, self.start_timeout_s = size, timeout_s, start_timeout_s
        self.ranks = [cls.options(**per_rank[r]).remote(r, size) for r in range(size)]
        self.length, self.dtype, self.dist_ready, self.gpus_checked = 0, np.dtype(np.float32), False, False
        started = {p.__ray_ready__.remote(): r for r, p in enumerate(self.ranks)}
        _, waiting = ray.wait(list(started), num_returns=size, timeout=start_timeout_s)
        if waiting:
            self.stop()
            raise TimeoutError(f"participant ranks {sorted(started[ref] for ref in waiting)} did not start within "
                               f"{start_timeout_s:.0f} s (Ray leaves an actor it cannot place for lack of "
                               f"resources waiting; each asks for {num_cpus_per_participant} CPU)")
        try:
            ray.get(list(started))
            self._choose_transport(transport)
        except Exception:  # nothing of a group that could not start is left running
            self.stop()
            raise

    @classmethod
    def of(cls, participants: Sequence, length: int, dtype=np.float32, timeout_s: float = 60.0,
           transport: str = "object_store", start_timeout_s: float = 300.0) -> "CollectiveGroup":
        """A group over actors that already exist and have Participant's methods (rollout
        workers that are also participants, say), rank r being participants[r], each with a
        buffer of `length` entries that the actor fills itself."""
        group = cls.__new__(cls)
        group.size, group.timeout_s, group.ranks = len(participants), timeout_s, list(participants)
        group.start_timeout_s = start_timeout_s
        group.length, group.dtype, group.dist_ready, group.gpus_checked = length, np.dtype(dtype), False, False
        group._choose_transport(transport)
        if group.transport == "shm":
            group._open_rings(length * group.dtype.itemsize)
        return group

    def _choose_transport(self, transport: str) -> None:
        if transport not in TRANSPORTS:
            raise ValueError(f"unknown transport {transport!r}; use one of {TRANSPORTS}")
        self.transport, self.ring_capacity = transport, 0
        if transport == "shm":
            nodes = set(self._wait([p.node_id.remote() for p in self.ranks], "node_id"))
            if len(nodes) > 1:
                warnings.warn(f"the group's {self.size} ranks are on {len(nodes)} nodes, and shared memory does not "
                              f"reach across machines: this group uses the object store instead", stacklevel=3)
                self.transport = "object_store"
                self._wait([p.shm_close.remote() for p in self.ranks], "shm_close")  # rings of an earlier group

    def _open_rings(self, capacity: int) -> None:
        """Every rank's ShmRing anew, of `capacity` bytes (a new name: the old rings close)."""
        name = uuid.uuid4().hex[:12]
        try:
            self._wait([p.shm_open.remote(name, r, self.size, capacity, self.timeout_s)
                        for r, p in enumerate(self.ranks)], "shm_open")
            self._wait([p.shm_connect.remote() for p in self.ranks], "shm_connect")
        except Exception:
            # A rank that made its file but never connected would leave it in /dev/shm.
            ray.wait([p.shm_close.remote() for p in self.ranks], num_returns=self.size, timeout=10)
            raise
        self.ring_capacity = capacity

    def set_buffers(self, buffers: Sequence) -> None:
        """Give rank r buffers[r] (a copy: the caller's arrays are never modified)."""
        assert len(buffers) == self.size, f"{self.size} participants, {len(buffers)} buffers"
        shapes = {tuple(b.shape) for b in buffers}
        dtypes = {np.dtype(str(b.dtype).removeprefix("torch.")) for b in buffers}
        if len(shapes) != 1 or len(dtypes) != 1:
            raise ValueError(f"buffers must share one shape and dtype, got {shapes} and {dtypes}")
        self.dtype = dtypes.pop()
        if self.dtype not in DTYPES:
            raise TypeError(f"dtype {self.dtype} not supported; use one of {[np.dtype(d).name for d in DTYPES]}")
        self.length = int(np.prod(shapes.pop()))
        needed = max(self.length * self.dtype.itemsize, 1)  # empty buffers still need rings to meet in
        if self.transport == "shm" and needed > self.ring_capacity:
            self._open_rings(needed)
        self._wait([p.set_buffer.remote(b) for p, b in zip(self.ranks, buffers)], "set_buffers")

    def buffers(self) -> list:
        return self._wait([p.get_buffer.remote() for p in self.ranks], "buffers")

    def chunks(self) -> list:
        """Each rank's own chunk of its buffer (after reduce_scatter: the reduced chunk)."""
        return self._wait([p.get_chunk.remote() for p in self.ranks], "chunks")

    def allreduce(self, op: str = "sum", algorithm: str | None = None, segments: int = 1, wait: bool = True,
                  transport: str | None = None) -> list | None:
        """Every rank's buffer becomes op over all ranks' buffers, by `algorithm` (by default
        the ring; on shared memory the ring or the direct path by size) over `transport` (by
        default the group's). With wait=False the plan is only submitted and its last
        tasks' references returned: a caller can queue more work on the ranks behind it
        (each actor runs its tasks in the order submitted)."""
        transport = transport or self.transport
        self._check(op, algorithm or "ring", transport)
        if transport == "shm" and algorithm in (None, "ring", "direct"):
            done = [p.shm_allreduce.remote(op, algorithm) for p in self.ranks]
        elif algorithm in ("gloo", "nccl"):
            self.start_dist(gpus=algorithm == "nccl")
            done = [p.dist_allreduce.remote(op, "cuda" if algorithm == "nccl" else None) for p in self.ranks]
        elif algorithm in (None, "ring"):
            done = self._allgather(self._reduce_scatter(op, segments))
        else:
            result = self._naive_reduce(op) if algorithm == "naive" else self._tree_reduce(op)
            everyone = (0, self.length)
            done = [result] + [self.ranks[r].receive.remote([everyone], result) for r in range(1, self.size)]
        if not wait:
            return done
        self._wait(done, f"allreduce ({algorithm})")

    def reduce_scatter(self, op: str = "sum", segments: int = 1) -> None:
        """Rank i ends with chunk i of the reduction (`chunk_bounds(length, n)[i]`)."""
        self._check(op, "ring", "object_store")
        self._wait([ref for pieces in self._reduce_scatter(op, segments) for ref, _ in pieces], "reduce_scatter")

    def allgather(self) -> None:
        """Every rank's buffer becomes the concatenation of each rank i's chunk i."""
        sent = [(self.ranks[r].send.remote(*bounds), bounds) for r, bounds in enumerate(chunk_bounds(self.length, self.size))]
        self._wait(self._allgather([[s] for s in sent]), "allgather")

    def broadcast(self, root: int = 0) -> None:
        """Every rank's buffer becomes rank `root`'s."""
        everyone = (0, self.length)
        sent = self.ranks[root].send.remote(*everyone)
        self._wait([sent] + [p.receive.remote([everyone], sent) for r, p in enumerate(self.ranks) if r != root], "broadcast")

    def stop(self) -> None:
        for p in self.ranks:
            ray.kill(p)
        self.ranks = []

    # The plans. Each returns references to its last tasks; _wait turns failures into errors.

    def _naive_reduce(self, op: str):
        everyone = (0, self.length)
        sent = [self.ranks[r].send.remote(*everyone) for r in range(1, self.size)]
        return self.ranks[0].reduce.remote(*everyone, op, True, *sent)

    def _tree_reduce(self, op: str):
        everyone, up = (0, self.length), {}
        for r in reversed(range(self.size)):  # children (2r+1, 2r+2) before their parent
            children = [up[c] for c in (2 * r + 1, 2 * r + 2) if c < self.size]
            up[r] = self.ranks[r].reduce.remote(*everyone, op, r == 0, *children)
        return up[0]

    def _reduce_scatter(self, op: str, segments: int) -> list[list[tuple]]:
        """The ring's first half; for each rank, (reference, bounds) of its reduced pieces.

        With segments > 1 each chunk is cut into that many pieces, each going round the ring
        on its own, so a rank can start on piece k+1 while its neighbour reduces piece k.
        """
        n, chunks = self.size, chunk_bounds(self.length, self.size)
        pieces = [[(lo + a, lo + b) for a, b in chunk_bounds(hi - lo, segments)] for lo, hi in chunks]
        if n == 1:
            return [[(self.ranks[0].reduce.remote(*p, op, True), p) for p in pieces[0]]]
        # Round 0: rank i sends its own copy of chunk i−1.
        sent = [[self.ranks[i].send.remote(*p) for p in pieces[(i - 1) % n]] for i in range(n)]
        for s in range(n - 1):
            received = []
            for j in range(n):  # rank j reduces what rank j−1 sent into chunk (j−s−2) mod n
                c, last = (j - s - 2) % n, s == n - 2
                received.append([self.ranks[j].reduce.remote(*p, op, last, m) for p, m in zip(pieces[c], sent[(j - 1) % n])])
            sent = received
        return [list(zip(sent[j], pieces[j])) for j in range(n)]

    def _allgather(self, held: list[list[tuple]]) -> list:
        """The ring's second half: each rank receives the other chunks in ring order (chunk
        (i−s−1) mod n in round s), each the one object its owner put. One task per rank: the
        chunks are ready together, and a task costs about a millisecond here."""
        n, done = self.size, []
        for i in range(n):
            incoming = [piece for s in range(n - 1) for piece in held[(i - s - 1) % n]]
            if incoming:
                done.append(self.ranks[i].receive.remote([b for _, b in incoming], *[ref for ref, _ in incoming]))
        return done + [ref for pieces in held for ref, _ in pieces]

    def start_dist(self, gpus: bool = False) -> None:
        """Every rank joins one torch.distributed group (once); with `gpus`, first check
        that every rank sees a GPU, which NCCL needs."""
        if gpus and not self.gpus_checked:
            assigned = self._wait([p.gpus.remote() for p in self.ranks], "gpus")
            if not all(assigned):
                raise ValueError(f"NCCL needs a GPU on every rank; ranks {[r for r, g in enumerate(assigned) if not g]} "
                                 f"have none (give the participants num_gpus in actor_options)")
            self.gpus_checked = True
        if not self.dist_ready:
            # Importing torch belongs to starting (start_timeout_s): in a CI run three ranks
            # importing it at once took longer than the 10 s a short timeout_s allows.
            self._wait([p.import_torch.remote() for p in self.ranks], "import torch", self.start_timeout_s)
            address, port = ray.get(self.ranks[0].dist_address.remote(), timeout=self.timeout_s)
            self._wait([p.dist_init.remote(address, port, self.timeout_s) for p in self.ranks], "torch.distributed init")
            self.dist_ready = True

    def _check(self, op: str, algorithm: str, transport: str) -> None:
        if op not in OPS:
            raise ValueError(f"unknown op {op!r}; use one of {sorted(OPS)}")
        if algorithm not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {algorithm!r}; use one of {ALGORITHMS}")
        if transport not in TRANSPORTS:
            raise ValueError(f"unknown transport {transport!r}; use one of {TRANSPORTS}")
        if transport == "shm" and self.transport != "shm":
            raise ValueError("this group has no shared-memory buffers: it was made with transport='object_store', "
                             "or its ranks are on several nodes")
        if algorithm == "direct" and transport != "shm":
            raise ValueError("the direct algorithm runs on the shared-memory transport only")
        if op == "mean" and not np.issubdtype(self.dtype, np.floating):
            raise TypeError(f"mean of {self.dtype} buffers is not {self.dtype}; use sum and divide")

    def _wait(self, refs: list, operation: str, timeout_s: float | None = None) -> list:
        if timeout_s is None:
            timeout_s = self.timeout_s + 5  # gloo's own timeout fires first
        try:
            return ray.get(refs, timeout=timeout_s)
        except (RayError, RuntimeError) as error:
            lost, silent = self._health()
            if lost:
                raise ParticipantLost(lost, operation) from error
            if silent or isinstance(error, GetTimeoutError):  # (a shared-memory rank gives up on a silent one first)
                raise TimeoutError(f"{operation} did not finish within {timeout_s:.0f} s; "
                                   f"not answering: ranks {silent or 'none'}") from error
            raise

    def _health(self) -> tuple[list[int], list[int]]:
        """The ranks whose actor died, and those alive but not answering within 10 s."""
        lost, silent = [], []
        for rank, p in enumerate(self.ranks):
            try:
                ray.get(p.ping.remote(), timeout=10)
            except RayActorError:
                lost.append(rank)
            except GetTimeoutError:
                silent.append(rank)
        return lost, silent
