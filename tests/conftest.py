"""Fixture projects built in temporary folders."""

from __future__ import annotations

import os
import subprocess
import sys
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

ON_TWO_NODES = """
import ray
ray.init(address={address!r}, log_to_driver=False)
try:
{body}
    print("two nodes ok")
finally:
    ray.shutdown()
"""


class TwoNodes:
    """Runs `body` (Python, with `ray` connected) as a driver of its own on one simulated
    two-node cluster, so the session's local Ray stays untouched; fails with the driver's
    output if the body does. The cluster starts at first use and stops at `close`: idle, its
    nine processes keep 0.08 of a core busy (measured here), so the tests that use it run
    one after another (`pytest_collection_modifyitems`) and it stops after the last."""

    def __init__(self):
        self.env = {**os.environ, "RAY_ADDRESS": ""}
        self.holder = None
        self.address = ""

    def __call__(self, body: str) -> None:
        if self.holder is None:
            self.holder = subprocess.Popen([sys.executable, "-c", TWO_NODE_CLUSTER], stdin=subprocess.PIPE,
                                           stdout=subprocess.PIPE, text=True, env=self.env)
            self.address = self.holder.stdout.readline().strip()
            assert self.address, "the two-node cluster did not start"
        script = ON_TWO_NODES.format(address=self.address, body=textwrap.indent(textwrap.dedent(body), "    "))
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240, env=self.env)
        assert "two nodes ok" in done.stdout, done.stdout[-2000:] + done.stderr[-4000:]

    def close(self) -> None:
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


@pytest.hookimpl(trylast=True)  # after -k, -m and --deselect have chosen the items
def pytest_collection_modifyitems(session, config, items):
    """The tests on the two-node cluster one after another, at the end, so that the cluster
    lives only while they run."""
    on_two_nodes = [item for item in items if "two_nodes" in item.fixturenames]
    items[:] = [item for item in items if item not in on_two_nodes] + on_two_nodes
