"""A real Ray cluster of two nodes on this machine, started the way the README tells a user
to start one: `ray start --head` on a free port, then a second node joined with
`ray start --address`. Both run with `--block` in process groups of their own, so stopping
them stops exactly this cluster; `ray stop` would stop every Ray on the machine, the test
session's own among them."""

from __future__ import annotations

import os
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
    """`with RayStartCluster() as address:` a head and one more node, each offering
    CPUS_PER_NODE CPUs; every process either started is gone when the block ends, whether
    or not the block failed."""

    def __init__(self, timeout_s: float = 120.0):
        self.timeout_s = timeout_s
        self.nodes: list[subprocess.Popen] = []
        self.log = tempfile.TemporaryFile("w+")

    def __enter__(self) -> str:
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
        return self.address

    def _start(self, command: list[str]) -> None:
        env = {**os.environ, "RAY_ADDRESS": ""}  # (a RAY_ADDRESS of the caller's would make the head a worker)
        self.nodes.append(subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, env=env,
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
                                 env={**os.environ, "RAY_ADDRESS": ""}, timeout=self.timeout_s)
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
        """The second node first, then the head: SIGTERM (`ray start --block` then stops its
        node's processes), and after a grace period SIGKILL for anything left, by process
        group and by pid (Ray's workers may have left the group)."""
        started = self.processes()
        for node in reversed(self.nodes):
            if node.poll() is None:
                os.killpg(node.pid, signal.SIGTERM)
                try:
                    node.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    pass
        _, alive = psutil.wait_procs(started, timeout=10)
        for process in alive:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(alive, timeout=10)
        for node in self.nodes:
            if node.poll() is None:
                node.kill()
            node.wait()
        self.nodes = []
        self.log.close()
