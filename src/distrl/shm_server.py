"""A parameter server on one node's shared memory: no update passes through Ray's object
store or its scheduler.

`distrl.parameter_server` moves every message through the store: a worker's gradient is a
fresh object (one page fault per 4 KiB page as it is written), the new parameters another,
and every update is tasks that the driver submits. Here, as in `distrl.shm_ring`, the
buffers are mapped once and reused, and the processes signal each other directly:

- the server's buffer holds θ itself: the server's update rules (`ParameterServer`'s, the
  same code) write it in place;
- worker w's buffer holds its gradient, written there by the worker and read in place by
  the server.

Synchronous (`ShmServer.sync`): the server announces θ to every worker; each copies θ
into its own parameters as it computes, writes its gradient into its buffer and says so;
once all have, the server applies their mean and announces the new θ. A worker reads θ
before it says its gradient is ready, and writes its next gradient only after the next
announcement, which comes after the server has read them all, so neither side ever waits
for an acknowledgement of its own.

Asynchronous (`ShmServer.run_async`): the server serves one push at a time, taking the
workers whose gradients are ready in turn. It applies the gradient, then copies the new θ
into that worker's buffer (the gradient there is used up) and tells that worker: a worker
never reads the server's θ while another push changes it. The server knows which version
it gave each worker, so a gradient's staleness is counted there, as `push` counts it.

Each of `sync(updates)` and `run_async(pushes)` is one task per process, the loop running
inside them: the driver starts the round and waits for its end, and is in no update.

What this path does not do that the object store's does: shard the server (K = 1 here),
take a worker's death in its stride (a dead worker fails the whole round, within
`shm_ring.PROBE_S`, instead of being left out of the mean), or reach across machines:
a server and workers on several nodes fall back to the object store, with a warning.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Sequence

import numpy as np
import ray
from ray.exceptions import RayError

from .cluster import actor_cpus
from .parameter_server import Optimizer, ParameterServer
from .shm_ring import READY, RingBroken, ShmRing


class ServerChannel(ShmRing):
    """Rank 0 the server, ranks 1..workers the workers, each with a buffer of `length`
    float32s. It reuses ShmRing's buffers, signals and failure detection (a dead peer
    fails a wait within PROBE_S, a silent one after `timeout_s`, and either aborts the
    others) and adds the two point-to-point steps a parameter server needs. Each READY's
    step number counts that sender's messages to this rank: a worker's pushes, or the
    parameters the server has announced to that worker."""

    def __init__(self, group: str, rank: int, workers: int, length: int, timeout_s: float = 60.0):
        super().__init__(group, rank, workers + 1, length * 4, timeout_s)
        self.length, self.workers = length, list(range(1, workers + 1))
        self.sent = [0] * (workers + 1)  # READYs this rank has sent to each rank
        self.taken = [0] * (workers + 1)  # READYs this rank has acted on, from each rank
        self.turn = 0  # the worker served last (asynchronous), so the others go first next

    def array(self, rank: int | None = None) -> np.ndarray:
        """Rank `rank`'s buffer (this rank's if None): θ on the server, a gradient on a worker."""
        return self.buffer(np.float32, self.length, rank)

    def tell(self, rank: int) -> None:
        """READY to `rank`: my buffer (θ announced, a gradient pushed) is in place."""
        self._guarded(self._tell, rank)

    def await_from(self, ranks: Sequence[int]) -> None:
        """Wait until each of `ranks` has sent one more READY than this rank has acted on."""
        self._guarded(self._await, list(ranks))

    def next_push(self) -> int:
        """Wait for a worker whose next push has come, taking them in turn; act on it."""
        return self._guarded(self._next_push)

    def _tell(self, rank: int) -> None:
        self.sent[rank] += 1
        self._send(rank, READY, self.sent[rank])

    def _await(self, ranks: list[int]) -> None:
        def missing() -> list[int]:
            return [r for r in ranks if self.ready[r] <= self.taken[r]]

        self._wait(lambda: not missing(), None, f"not all of ranks {ranks} sent", missing)
        for r in ranks:
            self.taken[r] += 1

    def _next_push(self) -> int:
        n = len(self.workers)
        order = [(self.turn + k) % n + 1 for k in range(n)]  # the one after the last served first

        def arrived() -> list[int]:
            return [w for w in order if self.ready[w] > self.taken[w]]

        self._wait(lambda: bool(arrived()), None, "no worker pushed", lambda: self.workers)
        self.turn = worker = arrived()[0]
        self.taken[worker] += 1
        return worker

    def _guarded(self, step, *args):
        """Run a step; on any failure, abort the other ranks at once (they would wait for
        this one until `timeout_s`) and mark this channel broken."""
        if self.broken:
            raise RingBroken(f"rank {self.rank}: an earlier step failed ({self.broken}); make a new channel")
        try:
            return step(*args)
        except BaseException as error:
            self.abort(str(error) or type(error).__name__)
            if isinstance(error, OSError) and not isinstance(error, RingBroken):
                raise RingBroken(f"rank {self.rank}: {error}") from error
            raise


class ShmParameterServer(ParameterServer):
    """A ParameterServer whose θ lives in a ServerChannel's shared buffer (rank 0)."""

    channel: ServerChannel | None = None

    def shm_open(self, group: str, workers: int, timeout_s: float) -> None:
        self.shm_close()
        self.channel = ServerChannel(group, 0, workers, len(self.params), timeout_s)
        self._share()

    def shm_connect(self) -> None:
        self.channel.connect()

    def _share(self) -> None:
        """θ moves into the channel's buffer, where the update rules keep writing it."""
        shared = self.channel.array()
        np.copyto(shared, self.params)
        self.params = shared

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        if self.channel is not None:
            self._share()

    def serve_sync(self, updates: int) -> int:
        """Announce θ, then `updates` times: every worker's gradient, their mean applied, the
        new θ announced. Returns the version."""
        channel = self._open_channel()
        for w in channel.workers:
            channel.tell(w)
        for _ in range(updates):
            channel.await_from(channel.workers)
            self._apply(self.step, *(channel.array(w) for w in channel.workers))
            for w in channel.workers:
                channel.tell(w)
        return self.version

    def serve_async(self, pushes_per_worker: int) -> int:
        """Give every worker θ, then serve `pushes_per_worker` pushes of each, as they come:
        apply it, and give that worker the new θ (unless it has made its last push)."""
        channel = self._open_channel()
        if pushes_per_worker < 1:  # θ given now would be owed to a later round
            return self.version
        left = dict.fromkeys(channel.workers, pushes_per_worker)
        given = {w: self._give(w) for w in channel.workers}  # the version each worker computes on
        for _ in range(pushes_per_worker * len(channel.workers)):
            w = channel.next_push()
            self._apply(self.push, channel.array(w), given[w])
            left[w] -= 1
            if left[w]:
                given[w] = self._give(w)
        return self.version

    def _give(self, worker: int) -> int:
        np.copyto(self.channel.array(worker), self.params)
        self.channel.tell(worker)
        return self.version

    def _apply(self, update, *args) -> None:
        """An update rule's failure must fail the workers too, not leave them waiting."""
        try:
            update(*args)
        except BaseException as error:
            self.channel.abort(f"the server's update failed: {error}")
            raise

    def _open_channel(self) -> ServerChannel:
        if self.channel is None:
            raise RuntimeError("no shared-memory channel: shm_open and shm_connect first")
        return self.channel

    def shm_close(self) -> None:
        if self.channel is not None:
            self.params = np.array(self.params, copy=True)  # no view into the channel may outlive it
            self.channel.close()
            self.channel = None


class ServerClient:
    """What a worker actor adds to feed a ShmServer. The actor defines
    `gradient_at(params) -> g`, a float32 vector as long as θ; it must copy what it
    keeps of `params`, a view of shared memory that the server will overwrite."""

    channel: ServerChannel | None = None

    def shm_open(self, group: str, rank: int, workers: int, length: int, timeout_s: float) -> None:
        self.shm_close()
        self.channel = ServerChannel(group, rank, workers, length, timeout_s)

    def shm_connect(self) -> None:
        self.channel.connect()

    def work_sync(self, updates: int) -> None:
        """`updates` rounds of: read the announced θ, write the gradient, push."""
        channel = self.channel
        theta, mine = channel.array(0), channel.array()
        channel.await_from([0])
        for _ in range(updates):
            self._compute_into(mine, theta)
            channel.tell(0)
            channel.await_from([0])

    def work_async(self, pushes: int) -> None:
        """`pushes` rounds of: wait for θ in my buffer, write my gradient over it, push."""
        channel = self.channel
        mine = channel.array()
        for _ in range(pushes):  # none: nothing to wait for (serve_async(0) gives nothing)
            channel.await_from([0])
            self._compute_into(mine, mine)
            channel.tell(0)

    def _compute_into(self, out: np.ndarray, params: np.ndarray) -> None:
        try:
            np.copyto(out, self.gradient_at(params))
        except BaseException as error:
            self.channel.abort(f"rank {self.channel.rank}'s gradient failed: {error}")
            raise

    def shm_close(self) -> None:
        if self.channel is not None:
            self.channel.close()
            self.channel = None


def _node(actor) -> str:
    return ray.get_runtime_context().get_node_id()


class ShmServer:
    """One ShmParameterServer process and N worker actors (ServerClient's methods and a
    `gradient_at`), driven round by round. On several nodes: the same updates
    through the object store."""

    def __init__(self, params: np.ndarray, workers: Sequence, optimizer: Optimizer = Optimizer(),
                 max_staleness: int | None = None, num_cpus: float | None = None, timeout_s: float = 60.0,
                 actor_options: dict | None = None):
        self.workers, self.timeout_s, self.length = list(workers), timeout_s, len(params)
        actor = ray.remote(num_cpus=actor_cpus() if num_cpus is None else num_cpus)(ShmParameterServer)
        self.server = actor.options(**(actor_options or {})).remote(params, optimizer=optimizer, max_staleness=max_staleness)
        try:
            nodes = set(ray.get([a.__ray_call__.remote(_node) for a in [self.server, *self.workers]], timeout=timeout_s))
            self.transport = "shm"
            if len(nodes) > 1:
                warnings.warn(f"the server and its {len(self.workers)} workers are on {len(nodes)} nodes, and shared "
                              f"memory does not reach across machines: updates go through the object store instead",
                              stacklevel=2)
                self.transport = "object_store"
            else:
                self._open()
        except BaseException:
            self.stop()
            raise

    def _open(self) -> None:
        name, n = uuid.uuid4().hex[:12], len(self.workers)
        ranks = [self.server, *self.workers]
        try:
            ray.get([self.server.shm_open.remote(name, n, self.timeout_s)] +
                    [w.shm_open.remote(name, r, n, self.length, self.timeout_s) for r, w in enumerate(self.workers, 1)],
                    timeout=self.timeout_s)
            ray.get([a.shm_connect.remote() for a in ranks], timeout=2 * self.timeout_s)
        except BaseException:
            # A rank that made its file but never connected would leave it in /dev/shm.
            ray.wait([a.shm_close.remote() for a in ranks], num_returns=len(ranks), timeout=10)
            raise

    def sync(self, updates: int) -> None:
        """`updates` synchronous updates, each the mean of one gradient per worker."""
        if self.transport == "shm":
            self._round([self.server.serve_sync.remote(updates)] + [w.work_sync.remote(updates) for w in self.workers])
            return
        weights = self.server.pull.remote()
        for _ in range(updates):
            weights, version = self.server.step.remote(*[w.gradient_at.remote(weights) for w in self.workers])
            ray.get(version, timeout=self.timeout_s)

    def run_async(self, pushes_per_worker: int) -> None:
        """`pushes_per_worker` asynchronous pushes of every worker, each applied on arrival."""
        if pushes_per_worker < 0:
            raise ValueError(f"pushes_per_worker must be at least 0, not {pushes_per_worker}")
        if pushes_per_worker == 0:
            return
        if self.transport == "shm":
            self._round([self.server.serve_async.remote(pushes_per_worker)] +
                        [w.work_async.remote(pushes_per_worker) for w in self.workers])
            return
        left = dict.fromkeys(range(len(self.workers)), pushes_per_worker)
        pending, pushed = {}, []
        for i, w in enumerate(self.workers):
            pending[w.gradient_at.remote(self.server.pull.remote())] = i, self._version()
        while pending:
            ready, _ = ray.wait(list(pending), timeout=self.timeout_s, fetch_local=False)
            if not ready:
                raise TimeoutError(f"no worker's gradient came within {self.timeout_s:g} s")
            i, version = pending.pop(ready[0])
            pushed.append(self.server.push.remote(ready[0], version))
            left[i] -= 1
            if left[i]:  # the server runs its calls in order: this pull sees that push
                pending[self.workers[i].gradient_at.remote(self.server.pull.remote())] = i, self._version()
        ray.get(pushed, timeout=self.timeout_s)  # every push applied, or a worker's error raised

    def _version(self) -> int:
        return ray.get(self.server.get_version.remote(), timeout=self.timeout_s)

    def _round(self, tasks: list) -> None:
        """Wait for one round's tasks; the server's comes first, and fails within PROBE_S of
        a worker's death (and a worker's within PROBE_S of the server's)."""
        try:
            ray.get(tasks)  # no timeout of its own: every wait inside has one
        except RayError as error:
            raise RuntimeError(f"a shared-memory round failed: {error}; stop this ShmServer and make a new one") from error

    def pull(self) -> np.ndarray:
        return ray.get(self.server.pull.remote(), timeout=self.timeout_s)

    def stats(self) -> dict:
        return ray.get(self.server.stats.remote(), timeout=self.timeout_s)

    def stop(self) -> None:
        """Close every channel (the workers stay: they are the caller's) and end the server."""
        ray.wait([w.shm_close.remote() for w in self.workers], num_returns=len(self.workers), timeout=10)
        ray.kill(self.server)
