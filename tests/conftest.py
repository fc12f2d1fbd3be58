"""Fixture projects built in temporary folders."""

from __future__ import annotations

import json
import multiprocessing
import os
import select
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from studylog.project import Project

# The browser tests' session fixtures: site, browser, watched.
pytest_plugins = ["browser_fixtures"]


class ProjectMaker:
    """Writes a small studylog project: logs, labs, site settings, hand-written pages."""

    def __init__(self, root: Path):
        self.root = root
        for folder in ("logs", "labs", "site_src"):
            (root / folder).mkdir(parents=True, exist_ok=True)
        (root / "site_src" / "index.md").write_text("# Fixture log\n\nWelcome.\n", encoding="utf-8")
        (root / "mkdocs.yml").write_text("site_name: Fixture\n", encoding="utf-8")

    @property
    def project(self) -> Project:
        return Project.at(self.root)

    def log(self, name: str, front: str, body: str = "Some text.\n") -> Path:
        path = self.root / "logs" / name
        path.write_text(f"---\n{textwrap.dedent(front).strip()}\n---\n\n{body}", encoding="utf-8")
        return path

    def raw_log(self, name: str, content: bytes | str) -> Path:
        path = self.root / "logs" / name
        if isinstance(content, str):
            content = content.encode("utf-8")
        path.write_bytes(content)
        return path

    def lab(self, name: str, source: str | None = None, **options) -> Path:
        path = self.root / "labs" / f"{name}.py"
        path.write_text(source if source is not None else lab_source(**options), encoding="utf-8")
        return path


def lab_source(
    title: str = "A lab",
    summary: str = "Checks the plumbing.",
    parameters: str = "n = 3  # how many",
    profiles: str = "quick:\n  n: 2\nfull:\n  n: 5",
    body: str = "print(sum(range(n)))",
) -> str:
    """A lab in Jupytext percent format with the studylog header."""
    profile_lines = "\n".join("#       " + line for line in profiles.splitlines())
    return (
        "# ---\n# jupyter:\n#   kernelspec:\n#     display_name: Python 3\n#     language: python\n"
        f"#     name: python3\n#   studylog:\n#     title: {title}\n#     summary: {summary}\n"
        f"#     profiles:\n{profile_lines}\n# ---\n\n"
        f"# %% [markdown]\n# # {title}\n\n# %% tags=[\"parameters\"]\n{parameters}\n\n# %%\n{body}\n"
    )


@pytest.fixture
def maker(tmp_path: Path) -> ProjectMaker:
    return ProjectMaker(tmp_path / "proj")


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole test session, shut down at the end."""
    from distrl import cluster

    cluster.init(num_cpus=2)
    yield
    cluster.shutdown()


# A simulated two-node Ray cluster (two raylets on this machine) whose nodes offer the custom
# resources `head` and `second`; it lives in a process of its own until its stdin closes.
TWO_NODE_CLUSTER = """
import sys
from ray.cluster_utils import Cluster

cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "resources": {"head": 1}})
cluster.add_node(num_cpus=1, resources={"second": 1})
cluster.wait_for_nodes()
print(cluster.address, flush=True)
sys.stdin.read()
cluster.shutdown()
"""

# One driver for every body that runs on the two nodes: connecting and importing torch and
# distrl cost 2.7 s a driver here. Each body runs in a namespace of its own, cleared after
# it; the driver answers once what the body started has ended (every resource free again),
# so no test finds another's actors in its way.
TWO_NODE_DRIVER = """
import contextlib, gc, io, json, sys, time, traceback
import ray

ray.init(address=sys.argv[1], log_to_driver=False)
for line in sys.stdin:
    output, namespace = io.StringIO(), {"ray": ray, "__name__": "__main__"}
    try:
        with contextlib.redirect_stdout(output):
            exec(compile(json.loads(line), "<two-node body>", "exec"), namespace)
        error = None
    except BaseException:
        error = traceback.format_exc()
    namespace.clear()  # Ray keeps the body's remote classes, and through them this namespace
    gc.collect()
    deadline = time.monotonic() + 60
    while ray.available_resources() != ray.cluster_resources() and time.monotonic() < deadline:
        time.sleep(0.05)
    if error is None and ray.available_resources() != ray.cluster_resources():
        error = f"60 s after the body, not every resource is free: {ray.available_resources()}"
    print(json.dumps({"error": error, "output": output.getvalue()[-2000:]}), flush=True)
"""


class TwoNodes:
    """Runs `body` (Python, with `ray` connected) in the driver of one simulated two-node
    cluster, a process apart from the session's local Ray; fails with the body's traceback
    if it raises, and the next body gets a new driver. Cluster and driver start at first
    use and stop at `close`: idle, the cluster's nine processes keep 0.08 of a core busy
    (measured here), so the tests that use it run one after another
    (`pytest_collection_modifyitems`) and it stops after the last."""

    def __init__(self):
        self.env = {**os.environ, "RAY_ADDRESS": ""}
        self.holder = self.driver = None

    def __call__(self, body: str, timeout_s: float = 240) -> None:
        if self.holder is None:
            self.holder = subprocess.Popen([sys.executable, "-c", TWO_NODE_CLUSTER], stdin=subprocess.PIPE,
                                           stdout=subprocess.PIPE, text=True, env=self.env)
            self.address = self.holder.stdout.readline().strip()
            assert self.address, "the two-node cluster did not start"
        if self.driver is None:
            self.log = tempfile.TemporaryFile("w+")
            self.driver = subprocess.Popen([sys.executable, "-c", TWO_NODE_DRIVER, self.address], stdin=subprocess.PIPE,
                                           stdout=subprocess.PIPE, stderr=self.log, text=True, env=self.env)
        self.driver.stdin.write(json.dumps(textwrap.dedent(body)) + "\n")
        self.driver.stdin.flush()
        answer = select.poll()  # not select(): a long session's descriptors pass its limit of 1024
        answer.register(self.driver.stdout, select.POLLIN)
        line = self.driver.stdout.readline() if answer.poll(timeout_s * 1000) else ""
        result = json.loads(line) if line else {"error": f"the driver did not answer within {timeout_s} s", "output": ""}
        if result["error"]:
            self.log.seek(0)
            log = self.log.read()[-4000:]
            self._stop_driver()  # the next body starts from a driver of its own
            pytest.fail(f"{result['error']}\n{result['output']}\n{log}", pytrace=False)

    def _stop_driver(self) -> None:
        if self.driver is not None:
            self.driver.stdin.close()
            try:
                self.driver.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.driver.kill()
                self.driver.wait()
            self.log.close()
            self.driver = None

    def close(self) -> None:
        self._stop_driver()
        if self.holder is not None:
            self.holder.stdin.close()
            self.holder.wait(timeout=120)
            self.holder = None


_two_nodes = TwoNodes()


@pytest.fixture(scope="session")
def two_nodes():
    yield _two_nodes
    _two_nodes.close()


def pytest_runtest_teardown(item, nextitem):
    if "two_nodes" in item.fixturenames and (nextitem is None or "two_nodes" not in nextitem.fixturenames):
        _two_nodes.close()  # a later user starts it again


def rank_processes() -> multiprocessing.context.BaseContext:
    """Where the shared-memory tests start their plain rank processes: forked from one server
    process that has imported their modules once, so a rank inherits no test's state (as a
    separate actor would not) yet skips the imports. Spawned from scratch, every rank
    imported the test module again: the two modules took 57.5 core-seconds that way here,
    51.8 forked."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["test_shm_ring", "test_shm_server"])  # before its first use only
    return context


def kill_actor(actor) -> None:
    """Kill a Ray actor and return once the kill has landed. `ray.kill` goes through Ray's
    control plane while actor calls go straight to the actor, so calls made just after it
    can still be served by the live actor: ask until one fails."""
    import time

    import ray
    from ray.exceptions import RayActorError

    ray.kill(actor)
    deadline = time.monotonic() + 30
    while True:
        try:
            ray.get(actor.__ray_call__.remote(lambda self: None), timeout=10)
        except RayActorError:
            return
        assert time.monotonic() < deadline, "a killed actor still answers after 30 s"
        time.sleep(0.05)


# `make test` runs two pytest-xdist workers (`--dist loadgroup`). Alone, the tests that run
# Ray and the labs kept 1.7 of the two cores busy and the site generator's tests 1.0, so
# the two halves overlap on this machine. The groups keep one Ray session per test run (on
# one worker) and each module-scoped or session-scoped build on the worker that uses it.
RAY_FIXTURES = {"ray_session", "two_nodes", "quick_runs"}


def pytest_itemcollected(item):
    module = item.module.__name__ if item.module else ""
    if RAY_FIXTURES & set(item.fixturenames):
        group = "ray"
    elif module.startswith("test_browser"):
        group = "browser"  # one built site and one chromium for all browser modules
    else:
        group = module
    item.add_marker(pytest.mark.xdist_group(group))


@pytest.hookimpl(trylast=True)  # after -k, -m and --deselect have chosen the items
def pytest_collection_modifyitems(session, config, items):
    """The tests on the two-node cluster one after another, at the end, so that the cluster
    lives only while they run."""
    on_two_nodes = [item for item in items if "two_nodes" in item.fixturenames]
    items[:] = [item for item in items if item not in on_two_nodes] + on_two_nodes
