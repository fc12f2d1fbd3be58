"""A real Ray cluster of two nodes on this machine, started the way the README tells a user
to start one: `ray start --head` on a free port, then a second node joined with
`ray start --address`. Both run with `--block` in process groups of their own, so stopping
them stops exactly this cluster; `ray stop` would stop every Ray on the machine, the test
session's own among them. As Ray 2.60 secures a cluster when it finds a token, this one
has a token of its own, in a file the nodes and every client are pointed to
(RAY_AUTH_MODE=token, RAY_AUTH_TOKEN_PATH): the user's ~/.ray is neither read nor written."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

RAY = str(Path(sys.executable).with_name("ray"))
CPUS_PER_NODE = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RayStartCluster:
    """`with RayStartCluster() as env:` a head and one more node, each offering
    CPUS_PER_NODE CPUs; `env` holds the variables a client needs (RAY_ADDRESS and the
    token's). Every process either node started is gone when the block ends, whether or
    not the block failed."""

    def __init__(self, timeout_s: float = 120.0):
        self.timeout_s = timeout_s
        self.nodes: list[subprocess.Popen] = []
        self.folder = tempfile.TemporaryDirectory(prefix="ray-cli-cluster-")
        self.log = tempfile.TemporaryFile("w+")
        token = Path(self.folder.name) / "auth_token"
        token.write_text(secrets.token_hex(32), encoding="utf-8")
        self.auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}

    def __enter__(self) -> dict[str, str]:
        port = free_port()
        self.address = f"127.0.0.1:{port}"
        common = ["--block", f"--num-cpus={CPUS_PER_NODE}", "--num-gpus=0", "--object-store-memory=500000000",
                  "--disable-usage-stats"]
        try:
            self._start([RAY, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
                         "--include-dashboard=false", *common])
            self._wait_for_nodes(1)
            self._start([RAY, "start", f"--address={self.address}", "--node-ip-address=127.0.0.1", *common])
            self._wait_for_nodes(2)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return {"RAY_ADDRESS": self.address, **self.auth}

    def _env(self) -> dict[str, str]:
        return {**os.environ, "RAY_ADDRESS": "", **self.auth}  # (the caller's RAY_ADDRESS would make the head a worker)

    def _start(self, command: list[str]) -> None:
        self.nodes.append(subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, env=self._env(),
                                           start_new_session=True))

    def _wait_for_nodes(self, count: int) -> None:
        """Until `count` nodes are alive, asked of the cluster by a client of its own."""
        probe = ("import ray, sys; ray.init(address=sys.argv[1], log_to_driver=False); "
                 "print(sum(n['Alive'] for n in ray.nodes()))")
        deadline = time.monotonic() + self.timeout_s
        while True:
            for node in self.nodes:
                if node.poll() is not None:
                    raise RuntimeError(f"`{' '.join(node.args[:3])}` exited ({node.returncode}):\n{self.output()}")
            run = subprocess.run([sys.executable, "-c", probe, self.address], capture_output=True, text=True,
                                 env=self._env(), timeout=self.timeout_s)
            if run.returncode == 0 and run.stdout.strip().splitlines()[-1:] == [str(count)]:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{count} Ray nodes not alive within {self.timeout_s:.0f} s:\n"
                                   f"{run.stderr[-2000:]}\n{self.output()}")
            time.sleep(1.0)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()[-4000:]

    def processes(self) -> list[psutil.Process]:
        """Every live process either node started: the `ray start`s and all their descendants."""
        found = []
        for node in self.nodes:
            try:
                parent = psutil.Process(node.pid)
                found += [parent, *parent.children(recursive=True)]
            except psutil.NoSuchProcess:
                pass
        return found

    def __exit__(self, *exc) -> None:
        """SIGTERM to both nodes' process groups (`ray start --block` then stops its node's
        processes), and after a grace period SIGKILL for whatever is left, by pid too (Ray's
        workers may have left the group). The head's `ray start` lingers for 30 s after its
        own GCS is gone, hence the short grace."""
        started = self.processes()
        for node in reversed(self.nodes):
            if node.poll() is None:
                os.killpg(node.pid, signal.SIGTERM)
        _, alive = psutil.wait_procs(started, timeout=5)
        for process in alive:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(alive, timeout=10)
        for node in self.nodes:
            node.wait()
        self.nodes = []
        self.log.close()
        self.folder.cleanup()
