"""All-reduce on one node without the object store: buffers in shared memory, allocated
once and reused, and ranks that signal each other directly.

Why. Through Ray, every message of `collective`'s ring is a fresh object (one page fault
per 4 KiB page as it is written) and every step a task that passes through the driver,
about a millisecond here whatever its size. Collective libraries on one node (MPI's
shared-memory transport, gloo, NCCL) do neither: each rank's buffers are mapped once, and
ranks tell each other directly when data is ready. This module is that path; Ray still
places and supervises the actors that hold a `ShmRing`. It is written here from the
operating system's primitives because the two ready-made candidates fall short
(`bench/transport.py`): Ray's compiled graphs reuse shared-memory channels, but a chain
driver → a → b → driver of 4 KiB took 0.40 ms (a ring at n = 4 makes six such hops a
call), every message is copied into its channel, and tearing a graph down took 30 s; and a
torch tensor in shared memory reaches a Ray actor as a copy (Ray pickles it), so sharing
it would take a side channel of its own anyway.

Memory. Rank r's buffer is a file in /dev/shm that r creates and maps, and that every other
rank maps too: a rank reads the others' data in place, so a step moves no bytes that the
arithmetic does not need (no inbox, no copy in or out). Once all have mapped it, the file's
name is removed, so the memory lives exactly as long as the mappings: a rank killed by
SIGKILL after `connect` leaves nothing behind in /dev/shm. (One killed between its
constructor and `connect`, or whose `connect` is never called, leaves its file,
`distrl-ring-<group>-<rank>`, until someone removes it: the window the name must exist.)

Signals. Each rank binds a Unix datagram socket in Linux's abstract namespace (no file; it
goes away with its process). A message is a kind, its sender and a step number:

- READY e: my event e is in place (e = 0: my input; on the ring, e = k + 1: the chunk I
  wrote in step k), and you may read it;
- DONE: I have read all I need of yours in this call;
- ABORT: I failed this call; fail it too, now, instead of waiting for a message that will
  not come;
- MAPPED, once, when connecting: I have mapped your buffer (so its name can go).

Every PROBE_S while it waits, a rank also connects a second socket to the addresses of the
ranks it waits for: the operating system refuses the connection once a rank's process is
gone, and sends nothing otherwise.

The ring, for large buffers. The buffer is cut into n chunks (`chunk_bounds`).
Reduce-scatter, steps k = 0..n−2: rank r reduces chunk (r − k − 1) mod n of its left
neighbour into its own (after the last, r holds chunk r + 1 fully reduced, divided by n for
a mean). All-gather, steps k = n−1 .. 2n−3, t = k − n + 1: rank r copies chunk (r − t) mod n
from its left neighbour. In step k rank r reads its left neighbour's event k, so it waits
for READY k. The chunk r writes in step k was last written n steps earlier, and its right
neighbour reads that older value in step k + 1 − n; no wait is needed for it, because the
READYs already order it: r is at step k only after r − 1 finished step k − 1, which came
after r − 2 finished step k − 2, and so on round the ring to r + 1 = r − (n − 1), which
finished step k + 1 − n. A call ends once the right neighbour is DONE, so that the caller
may write the buffer again as soon as `allreduce` returns. Each rank reads and writes
5(n − 1)/n of the buffer (per chunk step: a reduction reads two chunks and writes one, a
copy reads one and writes one).

The direct path, for small buffers. The ring's 2(n − 1) steps are 2(n − 1) waits for a
neighbour, and when ranks outnumber cores each wait is a wake-up. Up to DIRECT_MAX_BYTES a
rank instead announces its input to all (READY 0), reduces every rank's buffer itself, in
rank order (so all ranks end with the same bytes), into a scratch array, tells all it is
DONE reading, and writes the result into its buffer once all are DONE: two waits, whatever
n is, for n times the reading.

Step numbers count on across calls (each call has a block of 2n − 1), so a rank's message
for the next call, which may arrive while another is finishing the last one, is told apart
without a reset. The first READY of a call also carries the call's length, dtype and
algorithm, and a mismatch between ranks fails the call with both named.

A socket holds only a few unread datagrams (`net.unix.max_dgram_qlen`, 10 here), and more
than that can be owed to a rank that is late (n − 1 READYs on the direct path, up to about
n on the ring). A send that finds the queue full reads this rank's own messages meanwhile
and tries again, until `timeout_s`.

Failure. A rank whose peer's process has died learns it when a send or a probe is
refused: within PROBE_S. A peer that is alive but never takes part is given up after
`timeout_s`. Either way (or on any other error inside a call) the rank sends ABORT to every
rank, which raise `RingBroken` in turn, so the whole group fails within the bound. The buffers are then
in an unknown state, and every later call raises at once: close the ring and make a new
one. (A process that Ray has been asked to kill can live on for seconds after Ray reports
the actor dead: its peers learn it when the process is gone.)
"""

from __future__ import annotations

import mmap
import os
import select
import socket
import struct
import time

import numpy as np

from .partition import chunk_bounds

OPS = {"sum": np.add, "mean": np.add, "max": np.maximum, "min": np.minimum}
READY, DONE, ABORT, MAPPED = 1, 2, 3, 4
PROBE_S = 0.05  # how often a waiting rank checks that the ranks it waits for are alive
ABORT_RETRY_S = 5.0  # the longest `abort` keeps offering its ABORT to a rank whose queue is full
MESSAGE = struct.Struct("<BHqq")  # kind, sender's rank, step number, the call's signature (first READY only)
ALGORITHMS = ("ring", "direct")
# At or below this many bytes a call takes the direct path (two waits) instead of the ring's
# 2(n − 1) steps. Measured here at n = 4 (bench/transport.py): 4 KiB 0.25 ms direct against
# 0.33 on the ring, 64 KiB 0.30 against 0.44, 1 MiB 1.51 against 0.52.
DIRECT_MAX_BYTES = 64 * 1024
# Before blocking on its socket, a waiting rank looks this many times, yielding its core in
# between: the neighbour's message often comes within microseconds, and a blocked rank's
# wake-up costs more. Measured here (4 KiB, plain processes, two runs): 18 µs at n = 2
# against 65-73 µs with no looking, and 119-199 µs at n = 4 against about 295.
SPIN_YIELDS = 50


class RingBroken(RuntimeError):
    """An all-reduce could not finish: a rank died, stopped answering, aborted, or called
    with another length, dtype or algorithm."""


class ShmRing:
    """Rank `rank` of `size` ranks on one node, named `group` (unique among the groups that
    live at the same time), each with a shared buffer of `capacity` bytes.

    Every rank constructs its `ShmRing`, then all call `connect` at the same time (each in
    its own process, as MPI programs do), then `allreduce` together as often as needed. The
    data to reduce goes into `buffer(dtype, length)`, where the result comes back."""

    def __init__(self, group: str, rank: int, size: int, capacity: int, timeout_s: float = 60.0):
        assert 0 <= rank < size, f"rank {rank} outside a group of {size}"
        self.group, self.rank, self.size, self.capacity, self.timeout_s = group, rank, size, capacity, timeout_s
        self.calls, self.broken = 0, ""
        self.ready, self.done = [-1] * size, [-1] * size  # the highest step number each rank has sent
        self.mapped_by: set[int] = set()
        self.signatures: dict[tuple[int, int], int] = {}  # (sender, READY step) -> its call's signature
        self.addresses = [b"\0" + self._name(r).encode() for r in range(size)]
        self.message = bytearray(MESSAGE.size)
        # The socket first: a rank that finds this one's file may send to it at once.
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.addresses[rank])
        self.sock.setblocking(False)  # waits are the spin and the poll in `_wait`
        self.poll = select.poll()
        self.poll.register(self.sock, select.POLLIN)
        self.prober = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.path = f"/dev/shm/{self._name(rank)}"
        self.maps: list[mmap.mmap | None] = [None] * size
        # Made whole under a private name, then renamed: a rank that finds the file finds
        # it at its full size.
        making = f"{self.path}.{os.getpid()}"
        try:
            self.maps[rank] = self._map(making, create=True)
            os.rename(making, self.path)
        except BaseException:
            self.sock.close()
            self.prober.close()
            if os.path.exists(making):
                os.unlink(making)
            raise
        self.scratch = np.empty(0, np.uint8)  # the direct path's result, before it is written back

    def _name(self, rank: int) -> str:
        return f"distrl-ring-{self.group}-{rank}"

    def _map(self, path: str, create: bool) -> mmap.mmap:
        fd = os.open(path, os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0), 0o600)
        try:
            if create:
                os.ftruncate(fd, max(self.capacity, 1))  # mmap refuses a length of 0
            return mmap.mmap(fd, max(self.capacity, 1))
        finally:
            os.close(fd)

    def connect(self) -> None:
        """Map every other rank's buffer, and remove this rank's file name once all of them
        have mapped it. All ranks call it at once; RingBroken after `timeout_s`."""
        deadline = time.monotonic() + self.timeout_s
        try:
            for r in range(self.size):
                while self.maps[r] is None:
                    try:
                        self.maps[r] = self._map(f"/dev/shm/{self._name(r)}", create=False)
                    except FileNotFoundError:
                        self._check_deadline(deadline, f"rank {r}'s buffer did not appear")
                        time.sleep(0.001)
                if r != self.rank:
                    self._send(r, MAPPED, 0)
            others = set(range(self.size)) - {self.rank}
            self._wait(lambda: self.mapped_by >= others, deadline, "not every rank mapped this buffer",
                       lambda: others - self.mapped_by)
        finally:
            os.unlink(self.path)  # mapped by all, or failed: either way no name is left behind

    def buffer(self, dtype=np.float32, length: int | None = None, rank: int | None = None) -> np.ndarray:
        """This rank's shared buffer (or `rank`'s, as mapped here) as `length` entries of
        `dtype` (as many as fit if None): write the input here; the result is here after
        `allreduce`."""
        dtype = np.dtype(dtype)
        fits = self.capacity // dtype.itemsize
        length = fits if length is None else length
        if length > fits:
            raise ValueError(f"{length} × {dtype.name} is {length * dtype.itemsize} bytes; the ring holds {self.capacity}")
        return np.frombuffer(self.maps[self.rank if rank is None else rank], dtype, count=length)

    def allreduce(self, op: str = "sum", dtype=np.float32, length: int | None = None, algorithm: str | None = None) -> None:
        """buffer(dtype, length) ← op over every rank's buffer(dtype, length), on every rank;
        by the ring, or by the direct path (`algorithm`; by default direct up to
        DIRECT_MAX_BYTES). Every rank must pass the same arguments."""
        if op not in OPS:
            raise ValueError(f"unknown op {op!r}; use one of {sorted(OPS)}")
        if algorithm not in (None, *ALGORITHMS):
            raise ValueError(f"unknown algorithm {algorithm!r}; use 'ring' or 'direct'")
        if self.broken:
            raise RingBroken(f"rank {self.rank}: an earlier call failed ({self.broken}); close this ring and make a new one")
        mine = self.buffer(dtype, length)
        if op == "mean" and not np.issubdtype(mine.dtype, np.floating):
            raise TypeError(f"mean of {mine.dtype} buffers is not {mine.dtype}; use sum and divide")
        n = self.size
        first = self.calls * (2 * n - 1)  # this call's first step number (a call has at most 2n − 1)
        self.calls += 1
        if n == 1:
            return
        if algorithm is None:
            algorithm = "direct" if mine.nbytes <= DIRECT_MAX_BYTES else "ring"
        signature = (len(mine) << 8 | ord(mine.dtype.char)) << 1 | ALGORITHMS.index(algorithm)
        try:
            (self._direct if algorithm == "direct" else self._ring)(op, mine, first, signature)
        except BaseException as error:  # whatever stopped this rank, the others must not wait for it
            self.abort(str(error) or type(error).__name__)
            if isinstance(error, OSError):
                raise RingBroken(f"rank {self.rank}: {error}") from error
            raise

    def _ring(self, op: str, mine: np.ndarray, first: int, signature: int) -> None:
        n, left, right = self.size, (self.rank - 1) % self.size, (self.rank + 1) % self.size
        theirs = self.buffer(mine.dtype, len(mine), rank=left)
        chunks = chunk_bounds(len(mine), n)
        self._send(right, READY, first, signature)
        for k in range(2 * n - 2):
            self._wait(lambda: self.ready[left] >= first + k, None, f"step {k}: rank {left}'s data never came",
                       lambda: [left])
            if k == 0:
                self._check_signature(left, first, signature)
            if k < n - 1:
                lo, hi = chunks[(self.rank - k - 1) % n]
                OPS[op](mine[lo:hi], theirs[lo:hi], out=mine[lo:hi])
                if op == "mean" and k == n - 2:
                    mine[lo:hi] /= n
            else:
                lo, hi = chunks[(self.rank - (k - n + 1)) % n]
                np.copyto(mine[lo:hi], theirs[lo:hi])
            if k < 2 * n - 3:  # nobody reads the last step's output from here
                self._send(right, READY, first + k + 1)
        self._send(left, DONE, first)
        self._wait(lambda: self.done[right] >= first, None, f"rank {right} did not finish reading", lambda: [right])

    def _direct(self, op: str, mine: np.ndarray, first: int, signature: int) -> None:
        """Every rank reads every buffer and reduces them itself, all in the same order (so
        every rank ends with the same bytes); it writes the result back only once every
        other rank is DONE reading its input."""
        others = [r for r in range(self.size) if r != self.rank]
        for r in others:
            self._send(r, READY, first, signature)
        self._wait(lambda: all(self.ready[r] >= first for r in others), None, "not every rank's data came",
                   lambda: [r for r in others if self.ready[r] < first])
        for r in others:
            self._check_signature(r, first, signature)
        if self.scratch.nbytes < mine.nbytes:
            self.scratch = np.empty(mine.nbytes, np.uint8)
        result = self.scratch[:mine.nbytes].view(mine.dtype)
        np.copyto(result, self.buffer(mine.dtype, len(mine), rank=0))
        for r in range(1, self.size):
            OPS[op](result, self.buffer(mine.dtype, len(mine), rank=r), out=result)
        if op == "mean":
            result /= self.size
        for r in others:
            self._send(r, DONE, first)
        self._wait(lambda: all(self.done[r] >= first for r in others), None, "not every rank finished reading",
                   lambda: [r for r in others if self.done[r] < first])
        np.copyto(mine, result)

    def close(self) -> None:
        """Unmap the buffers and close the socket. A view from `buffer` that is still alive
        keeps its mapping (and the memory) until it goes."""
        self.sock.close()
        self.prober.close()
        if os.path.exists(self.path):  # never connected: the name is still ours to remove
            os.unlink(self.path)
        for mapping in self.maps:
            if mapping is not None:
                try:
                    mapping.close()
                except BufferError:
                    pass  # exported to a live view: unmapped when the view is freed

    # Messages.

    def _send(self, rank: int, kind: int, step: int, signature: int = 0) -> None:
        message, deadline = MESSAGE.pack(kind, self.rank, step, signature), time.monotonic() + self.timeout_s
        while True:
            try:
                self.sock.sendto(message, self.addresses[rank])
                return
            except (ConnectionRefusedError, FileNotFoundError) as error:
                raise RingBroken(f"rank {self.rank}: rank {rank} is gone ({error})") from error
            except BlockingIOError:  # its queue is full: read ours meanwhile, then again
                self._check_deadline(deadline, f"rank {rank} did not read its messages")
                self._receive(0.001)

    def _wait(self, condition, deadline: float | None, what: str, awaited) -> None:
        """Read messages until `condition()` holds; RingBroken after `timeout_s` without it,
        or as soon as one of the ranks `awaited()` names is found gone."""
        deadline = time.monotonic() + self.timeout_s if deadline is None else deadline
        probe = time.monotonic() + PROBE_S
        while not condition():
            self._receive(min(self._check_deadline(deadline, what), PROBE_S), what)
            if time.monotonic() >= probe:
                for rank in awaited():
                    try:
                        self.prober.connect(self.addresses[rank])
                    except (ConnectionRefusedError, FileNotFoundError) as error:
                        raise RingBroken(f"rank {self.rank}: rank {rank} is gone ({what})") from error
                probe = time.monotonic() + PROBE_S

    def _receive(self, timeout_s: float, what: str = "") -> None:
        """Take in one message, if one comes within `timeout_s`."""
        for _ in range(SPIN_YIELDS):
            try:
                self.sock.recv_into(self.message)
                break
            except BlockingIOError:
                os.sched_yield()
        else:
            if not self.poll.poll(timeout_s * 1000):
                return
            self.sock.recv_into(self.message)
        kind, sender, step, signature = MESSAGE.unpack(self.message)
        if kind == READY:
            self.ready[sender] = max(self.ready[sender], step)
            if signature:
                self.signatures[sender, step] = signature
        elif kind == DONE:
            self.done[sender] = max(self.done[sender], step)
        elif kind == MAPPED:
            self.mapped_by.add(sender)
        else:
            raise RingBroken(f"rank {self.rank}: rank {sender} aborted the call" + (f" (waiting here: {what})" if what else ""))

    def _check_deadline(self, deadline: float, what: str) -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RingBroken(f"rank {self.rank}: {what} within {self.timeout_s:g} s")
        return remaining

    def _check_signature(self, sender: int, step: int, signature: int) -> None:
        theirs = self.signatures.pop((sender, step), signature)
        if theirs != signature:
            def described(s: int) -> str:
                return f"{s >> 9} × {np.dtype(chr(s >> 1 & 255)).name} by {ALGORITHMS[s & 1]}"

            raise RingBroken(f"rank {self.rank} called allreduce with {described(signature)}, "
                             f"rank {sender} with {described(theirs)}")

    def abort(self, reason: str) -> None:
        """Fail the call the other ranks are in, or their next one, at once: for a caller
        that cannot join a call (its own data is wrong, say). This ring is then broken. A
        rank whose queue is full gets its ABORT when it next reads, which it does as soon as
        it waits: the ABORT is sent again until then, for up to ABORT_RETRY_S, which is as
        long as this call can take; a rank that reads nothing for longer is left to fail by
        its own timeout."""
        self.broken = reason
        message = MESSAGE.pack(ABORT, self.rank, 0, 0)
        deadline = time.monotonic() + min(self.timeout_s, ABORT_RETRY_S)
        pending = [r for r in range(self.size) if r != self.rank]
        while True:
            for r in list(pending):
                try:
                    self.sock.sendto(message, self.addresses[r])
                except BlockingIOError:
                    continue  # its queue is full: again below
                except OSError:
                    pass  # that rank is gone already
                pending.remove(r)
            if not pending or time.monotonic() >= deadline:
                return
            try:  # meanwhile empty our own queue, so that a rank sending to this one goes on
                while True:
                    self.sock.recv_into(self.message)  # (what it says no longer matters: broken)
            except BlockingIOError:
                time.sleep(0.001)
