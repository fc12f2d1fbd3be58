"""Parameter servers: workers compute gradients, servers hold the parameters and update them.

The pattern of Li et al. (OSDI 2014) and of the RLlib paper's asynchronous-gradients
optimizer. A `ParameterServer` actor holds one flat float32 parameter vector (or one shard of
it), the optimizer's state (SGD or Adam, applied on the server), and a version counter that
counts the updates applied.

- Synchronous: `step(*gradients)` takes one gradient from each of N workers (Ray starts the
  call only once all N exist), applies their mean, and returns the new parameters; every
  worker then pulls that same version, by reference.
- Asynchronous: `push(gradient, version)` applies a gradient as soon as it arrives. The
  gradient says which version it was computed on, so its staleness (server version −
  gradient version) is known; with `max_staleness` set, a staler gradient is dropped and
  counted instead of applied.
- Sharded: `ShardedServer` splits the vector into K contiguous shards (`chunk_bounds`,
  computed once, for any length and K) held by K actors, which update in parallel.

Data path: a worker's gradient is one object in Ray's store (one put, when its task
returns). Each shard reads only its slice of it, in place: on one node a zero-copy view.
(On a cluster Ray would copy the whole gradient to each shard's node; splitting it at the
worker would avoid that at the price of K puts per message.) The server updates its
parameters in place, with no temporaries of the vector's size: SGD subtracts each gradient
in one fused pass, Adam accumulates into a preallocated buffer first. The copies that
remain are the put of each message (gradient, new shard) and the worker's copy of the
pulled shards into its own parameters.

Checkpoints and failures: every `checkpoint_every` updates a server writes its parameters,
optimizer state and version to a file of that version, atomically (a temporary file, fsync,
rename), keeping its last two. Every shard receives the same calls in the same order, so all
of them checkpoint at the same versions. If a shard dies, `ShardedServer` starts a new one
and rolls *every* shard back to the newest version that all of them saved, then sends the
call again: θ is never a mix of versions, and at most `checkpoint_every − 1` updates are
lost, of every shard alike (besides pushes sent without waiting). Each call carries a
number, saved with the checkpoint, and a server ignores a number it has already seen: a
shard that died after checkpointing a call but before answering it does not apply that
gradient twice. A worker whose gradient does not arrive (its actor died) is left out of the
synchronous step's mean, which goes on with the others.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import ray
import torch
from ray.exceptions import GetTimeoutError, RayActorError, RayError

from .cluster import actor_cpus
from .partition import chunk_bounds


@dataclass(frozen=True)
class Optimizer:
    """The update rule the server applies (Adam as torch.optim.Adam computes it)."""

    kind: str = "sgd"  # "sgd" or "adam"
    lr: float = 0.01  # step size α
    betas: tuple[float, float] = (0.9, 0.999)  # Adam's moment decay rates β1, β2
    eps: float = 1e-8  # Adam's ε


class ParameterServer:
    """One shard of the parameters, [lo, hi) of the whole vector, and its optimizer state."""

    def __init__(self, params: np.ndarray | None = None, optimizer: Optimizer = Optimizer(), lo: int = 0,
                 max_staleness: int | None = None, checkpoint: str | None = None, checkpoint_every: int = 0,
                 restore: int | None = None):
        """`checkpoint` is the prefix of this shard's checkpoint files (one per saved version).
        With `params` None the server is a replacement: it starts from its checkpoint of
        version `restore`."""
        assert optimizer.kind in ("sgd", "adam"), f"unknown optimizer {optimizer.kind!r}"
        self.optimizer, self.lo, self.max_staleness = optimizer, lo, max_staleness
        self.checkpoint, self.checkpoint_every = checkpoint, checkpoint_every
        if params is None:
            assert restore is not None, "a replacement server needs the version to restore"
            self.rollback(restore)
        else:
            self.params = np.array(params, np.float32, copy=True)
            self.m, self.v = np.zeros_like(self.params), np.zeros_like(self.params)
            self.version = 0
            self.last_call = 0  # the number of the last call from ShardedServer, for retries
            self.hi = self.lo + len(self.params)
            self.acc, self.tmp = np.empty_like(self.params), np.empty_like(self.params)
        self.staleness: list[int] = []
        self.dropped = 0

    def pull(self) -> np.ndarray:
        return self.params  # Ray copies it into the store once; readers share that copy

    def get_version(self) -> int:
        return self.version

    @ray.method(num_returns=2)
    def step(self, *gradients: np.ndarray, call: int | None = None) -> tuple[np.ndarray, int]:
        """Synchronous: apply the mean of one gradient per worker; return the new parameters
        and their version (a second, small object, so a caller can wait on it cheaply).
        A `call` number already seen is a retry of an update this server holds: not applied."""
        if self._seen(call):
            return self.params, self.version
        lo, hi = self.lo, self.hi
        if self.optimizer.kind == "sgd":  # θ − (α/N)·Σg is N fused passes, with no buffer at all
            for g in gradients:
                self._descend(g[lo:hi], self.optimizer.lr / len(gradients))
            self._advance()
            return self.params, self.version
        if len(gradients) == 1:
            np.copyto(self.acc, gradients[0][lo:hi])
        else:  # the first two summed in one pass, straight from the store into the buffer
            np.add(gradients[0][lo:hi], gradients[1][lo:hi], out=self.acc)
        for g in gradients[2:]:
            self.acc += g[lo:hi]
        self._adam(self.acc, scale=1.0 / len(gradients))
        return self.params, self.version

    def push(self, gradient: np.ndarray, version: int, call: int | None = None) -> bool:
        """Asynchronous: apply a gradient computed on `version` now; False if dropped as stale.
        A `call` number already seen is a retry of an update this server holds: not applied."""
        if self._seen(call):
            return True
        staleness = self.version - version
        if self.max_staleness is not None and staleness > self.max_staleness:
            self.dropped += 1
            return False
        self.staleness.append(staleness)
        if self.optimizer.kind == "sgd":
            self._descend(gradient[self.lo:self.hi], self.optimizer.lr)
            self._advance()
        else:
            np.copyto(self.acc, gradient[self.lo:self.hi])
            self._adam(self.acc)
        return True

    def stats(self) -> dict:
        return {"version": self.version, "staleness": list(self.staleness), "dropped": self.dropped}

    def _seen(self, call: int | None) -> bool:
        """Whether call number `call` reached this server before (and is in its state);
        records it otherwise. Calls arrive in order, so one number remembers them all."""
        if call is None:
            return False
        if call <= self.last_call:
            return True
        self.last_call = call
        return False

    def _descend(self, g: np.ndarray, step: float) -> None:
        """SGD: θ ← θ − step · g in one pass (read θ and g, write θ), which numpy can only
        do in two (scale, then subtract). torch's fused add reads the same memory in place;
        the gradient is a read-only view into Ray's store, which torch warns about though
        nothing here writes to it."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            torch.from_numpy(self.params).add_(torch.from_numpy(g), alpha=-step)

    def _adam(self, g: np.ndarray, scale: float = 1.0) -> None:
        """Adam on scale · g, in place; g is overwritten. Each line is one pass over the
        shard, and at 10^7 parameters passes are what an update costs."""
        opt = self.optimizer
        if scale != 1.0:
            g *= scale
        b1, b2 = opt.betas
        t = self.version + 1
        np.multiply(g, g, out=self.tmp)  # g² first: g itself is scaled in place below
        self.tmp *= 1 - b2
        self.v *= b2
        self.v += self.tmp
        g *= 1 - b1
        self.m *= b1
        self.m += g
        # torch.optim.Adam: θ ← θ − α/(1−β1^t) · m / (√v / √(1−β2^t) + ε)
        np.sqrt(self.v, out=self.tmp)
        self.tmp *= 1 / np.sqrt(1 - b2**t)
        self.tmp += opt.eps
        np.divide(self.m, self.tmp, out=self.tmp)
        self.tmp *= opt.lr / (1 - b1**t)
        self.params -= self.tmp
        self._advance()

    def _advance(self) -> None:
        """One more update applied: count it, and checkpoint every `checkpoint_every`,
        keeping this version's file and the one before (see `ShardedServer`)."""
        self.version += 1
        if self.checkpoint_every and self.version % self.checkpoint_every == 0:
            self.save(checkpoint_file(self.checkpoint, self.version))
            for old in saved_versions(self.checkpoint):
                if old < self.version - self.checkpoint_every:
                    os.remove(checkpoint_file(self.checkpoint, old))

    def rollback(self, version: int) -> None:
        """Continue from this shard's checkpoint of `version`, forgetting the files of later
        versions: they belong to updates that are now undone, and a later rollback must not
        mix them with the ones that replace them."""
        self.restore(checkpoint_file(self.checkpoint, version))
        for later in saved_versions(self.checkpoint):
            if later > version:
                os.remove(checkpoint_file(self.checkpoint, later))

    def get_state(self) -> dict:
        return {"params": self.params, "m": self.m, "v": self.v, "version": self.version, "lo": self.lo,
                "last_call": self.last_call}

    def set_state(self, state: dict) -> None:
        self.params, self.m, self.v = (np.array(state[k], np.float32, copy=True) for k in ("params", "m", "v"))
        self.version, self.lo, self.last_call = int(state["version"]), int(state["lo"]), int(state["last_call"])
        self.hi = self.lo + len(self.params)
        self.acc, self.tmp = np.empty_like(self.params), np.empty_like(self.params)

    def save(self, path: str) -> None:
        """Parameters, optimizer state and version, atomically: a reader sees the old file or the new."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            np.savez(f, **self.get_state())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def restore(self, path: str) -> None:
        with np.load(path) as saved:
            self.set_state(dict(saved))


def checkpoint_file(prefix: str, version: int) -> str:
    """The file holding a shard's checkpoint of `version`."""
    return f"{prefix}.v{version}.npz"


def saved_versions(prefix: str) -> set[int]:
    """The versions a shard has checkpoint files of."""
    path = Path(prefix)
    return {int(f.name[len(path.name) + 2:-4]) for f in path.parent.glob(f"{path.name}.v*.npz")}


class ShardedServer:
    """K ParameterServer actors, one per contiguous shard, driven as one server."""

    def __init__(self, params: np.ndarray, shards: int = 1, optimizer: Optimizer = Optimizer(),
                 max_staleness: int | None = None, checkpoint_dir: str | Path | None = None,
                 checkpoint_every: int = 0, num_cpus: float | None = None,
                 actor_options: dict | Sequence[dict] | None = None, timeout_s: float = 60.0,
                 server_class: type = ParameterServer):
        """`server_class`: ParameterServer or a subclass (a different update rule; tests use
        one that dies at a chosen moment)."""
        assert checkpoint_dir or not checkpoint_every, "checkpoints need a checkpoint_dir"
        self.length, self.timeout_s = len(params), timeout_s
        self.bounds = chunk_bounds(self.length, shards)  # computed once
        self.options = actor_options if isinstance(actor_options, Sequence) else [actor_options or {}] * shards
        self.actor = ray.remote(num_cpus=actor_cpus() if num_cpus is None else num_cpus)(server_class)
        self.prefixes = [str(Path(checkpoint_dir) / f"shard-{k}") if checkpoint_dir else None for k in range(shards)]
        self.settings = dict(optimizer=optimizer, max_staleness=max_staleness, checkpoint_every=checkpoint_every)
        self.servers = [
            self.actor.options(**self.options[k]).remote(params[lo:hi], lo=lo, checkpoint=self.prefixes[k], **self.settings)
            for k, (lo, hi) in enumerate(self.bounds)
        ]
        if checkpoint_every:  # version 0 on disk, so a server that dies early has somewhere to restart
            ray.get([s.save.remote(checkpoint_file(p, 0)) for s, p in zip(self.servers, self.prefixes)])
        self.calls = 0  # calls numbered, so that a server ignores a retry of one it holds
        self.restarts = 0

    def pull(self) -> list:
        """References to the K shards of the current parameters."""
        return [s.pull.remote() for s in self.servers]

    def sync_step(self, gradients: Sequence) -> tuple[list, list[int]]:
        """One synchronous update from one gradient reference per worker.

        A gradient that does not arrive within the timeout, or whose worker died, is left
        out of the mean. Returns references to the new shards and the indices of the
        workers left out.
        """
        # fetch_local=False: the driver only needs to know they exist, not their bytes.
        ready, _ = ray.wait(list(gradients), num_returns=len(gradients), timeout=self.timeout_s, fetch_local=False)
        arrived = set(ready)
        lost = [i for i, g in enumerate(gradients) if g not in arrived]
        while True:
            good = [g for i, g in enumerate(gradients) if i not in lost]
            if not good:
                raise RuntimeError(f"no gradient arrived: workers {lost} lost")
            try:
                results = self._call_all(lambda s, call: s.step.remote(*good, call=call))
                return [params for params, _ in results], lost
            except RayError:
                # A gradient is an error (its worker died): find which, only on this rare path.
                failed = [i for i, g in enumerate(gradients) if i not in lost and _is_error(g, self.timeout_s)]
                if not failed:
                    raise
                lost = sorted(lost + failed)

    def push(self, gradient, version: int, wait: bool = True) -> list:
        """Asynchronous push of one gradient (a reference) computed on `version`. With
        wait=False the call returns at once (a pull sent after it still sees it: each
        server runs its calls in order); a server's death then surfaces at a later call."""
        if not wait:
            self.calls += 1
            return [s.push.remote(gradient, version, call=self.calls) for s in self.servers]
        return self._call_all(lambda s, call: s.push.remote(gradient, version, call=call))

    def get_state(self) -> list[dict]:
        """Each shard's parameters, optimizer moments and version."""
        return ray.get([s.get_state.remote() for s in self.servers])

    def set_state(self, states: list[dict]) -> None:
        ray.get([s.set_state.remote(state) for s, state in zip(self.servers, states, strict=True)])
        self.calls = max(int(state["last_call"]) for state in states)  # the next call is new to every shard

    def versions(self) -> list[int]:
        return ray.get([s.get_version.remote() for s in self.servers])

    def stats(self) -> list[dict]:
        return ray.get([s.stats.remote() for s in self.servers])

    def stop(self) -> None:
        for s in self.servers:
            ray.kill(s)
        self.servers = []

    def _call_all(self, call) -> list:
        """`call(server, number)` on every shard, waited for. If a shard's actor died, every
        shard goes back to one common checkpoint and the call is sent again, with the same
        number. Returns what each call returned (references)."""
        self.calls += 1
        results = [call(s, self.calls) for s in self.servers]
        while True:
            try:
                for result in results:
                    ray.get(_small(result), timeout=self.timeout_s)
                return results
            except RayActorError:
                dead = [k for k in range(len(self.servers)) if not self._alive(k)]
                if not dead or not self.settings["checkpoint_every"]:
                    raise  # an argument's error (a dead worker), or no checkpoint to restart from
                self._roll_back(dead)
                results = [call(s, self.calls) for s in self.servers]

    def _roll_back(self, dead: list[int]) -> None:
        """Replace the dead shards and bring every shard to the newest version all of them
        saved. The driver waits for each call (pushes sent with wait=False aside), so no
        shard is more than one call ahead of another, and the two files each keeps always
        hold a version in common."""
        common = set.intersection(*(saved_versions(p) for p in self.prefixes))
        if not common:
            raise RuntimeError(f"shards {dead} died and the shards have no checkpoint of one version in common")
        version = max(common)
        for k in dead:
            self.servers[k] = self.actor.options(**self.options[k]).remote(
                None, lo=self.bounds[k][0], checkpoint=self.prefixes[k], restore=version, **self.settings)
            self.restarts += 1
        ray.get([s.rollback.remote(version) for k, s in enumerate(self.servers) if k not in dead])

    def _alive(self, k: int) -> bool:
        try:
            ray.get(self.servers[k].get_version.remote(), timeout=10)
            return True
        except RayActorError:
            return False


def _small(result):
    """The part of a call's result that is cheap to fetch: step's version, or push's flag."""
    return result[1] if isinstance(result, (list, tuple)) else result


def _is_error(ref, timeout_s: float) -> bool:
    """Whether a gradient is an error (its worker died) rather than data. A gradient that
    exists may be stored on another node: ray.get must fetch it first, and a short timeout
    would take that fetch for a failure, so readiness is asked of ray.wait, which fetches
    nothing, and only a ready object is read."""
    ready, _ = ray.wait([ref], timeout=0, fetch_local=False)
    if not ready:
        return False
    try:
        ray.get(ref, timeout=timeout_s)
        return False
    except GetTimeoutError:
        return False
    except RayError:
        return True


def assemble(shards: Sequence[np.ndarray], out: np.ndarray | None = None) -> np.ndarray:
    """The K pulled shards as one vector (one copy, into `out` when given)."""
    return np.concatenate(shards, out=out)
