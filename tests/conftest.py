"""Fixture projects built in temporary folders."""

from __future__ import annotations

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


@pytest.fixture(scope="session")
def two_nodes():
    """A function that runs `body` (Python, with `ray` connected) as a driver of its own on
    one simulated two-node cluster shared by the session (started at first use), so the
    session's local Ray stays untouched; it fails with the driver's output if the body does."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "RAY_ADDRESS": ""}
    holder = subprocess.Popen([sys.executable, "-c", TWO_NODE_CLUSTER], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env)
    address = holder.stdout.readline().strip()
    assert address, "the two-node cluster did not start"

    def run(body: str) -> None:
        script = ON_TWO_NODES.format(address=address, body=textwrap.indent(textwrap.dedent(body), "    "))
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240, env=env)
        assert "two nodes ok" in done.stdout, done.stdout[-2000:] + done.stderr[-4000:]

    yield run
    holder.stdin.close()
    holder.wait(timeout=120)


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
    """When the session checks the labs' quick runs, start them now, in the background, and
    move those checks to the end, so the runs overlap with everything else."""
    from test_real_labs import QUICK_RUNS_TEST, start_quick_runs

    checks = [item for item in items if item.nodeid.startswith(QUICK_RUNS_TEST)]
    if checks and not config.option.collectonly:
        items[:] = [item for item in items if item not in checks] + checks
        start_quick_runs()


def pytest_unconfigure(config):
    from test_real_labs import stop_quick_runs

    stop_quick_runs()
