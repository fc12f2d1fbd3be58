"""The cache key is complete: a lab runs again when, and only when, something it read changed,
in whichever of its processes and by whichever route it was read."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from studylog.cli import main
from studylog.labs.store import entry_dir, load
from test_labs_run import labs_of, run


@pytest.fixture
def project(maker):
    pkg = maker.root / "src" / "trackpkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "dynamic.py").write_text("VALUE = 2\n", encoding="utf-8")
    (pkg / "table.json").write_text('{"scale": 3}\n', encoding="utf-8")
    (pkg / "reader.py").write_text(
        "import json, pathlib\nSCALE = json.loads((pathlib.Path(__file__).parent / 'table.json').read_text())['scale']\n",
        encoding="utf-8")
    namespace = maker.root / "src" / "nspkg"  # a namespace package: no __init__.py
    namespace.mkdir()
    (namespace / "thing.py").write_text("WORD = 'a'\n", encoding="utf-8")
    data = maker.root / "data"
    data.mkdir()
    (data / "a.txt").write_text("1\n", encoding="utf-8")
    (data / "b.txt").write_text("2\n", encoding="utf-8")
    return maker


def lab(maker, name, body):
    maker.lab(name, body="import sys\nsys.path.insert(0, 'src')\n" + body)


def then(maker, name, change) -> dict:
    """Run `name` (fresh), check a second run is cached, apply `change`, run again."""
    assert run(maker, name) == {name: "ok"}, load_failure(maker, name)
    assert run(maker, name) == {name: "cached"}
    change()
    return run(maker, name)


def load_failure(maker, name):
    failure = load(maker.project, name, "quick", failure=True)
    return failure and failure.record.get("error")


def status(maker) -> str:
    return CliRunner().invoke(main, ["--root", str(maker.root), "status"]).output


def test_a_module_imported_with_importlib(project):
    lab(project, "dyn", "import importlib\nprint(importlib.import_module('trackpkg.dynamic').VALUE)")
    edit = lambda: (project.root / "src/trackpkg/dynamic.py").write_text("VALUE = 5\n", encoding="utf-8")
    assert then(project, "dyn", edit) == {"dyn": "ok"}


def test_a_module_of_a_namespace_package(project):
    lab(project, "ns", "from nspkg import thing\nprint(thing.WORD)")
    edit = lambda: (project.root / "src/nspkg/thing.py").write_text("WORD = 'b'\n", encoding="utf-8")
    assert then(project, "ns", edit) == {"ns": "ok"}


def test_a_data_file_a_module_under_src_reads(project):
    lab(project, "tab", "from trackpkg.reader import SCALE\nprint(SCALE)")
    edit = lambda: (project.root / "src/trackpkg/table.json").write_text('{"scale": 4}\n', encoding="utf-8")
    assert then(project, "tab", edit) == {"tab": "ok"}
    assert "src/trackpkg/table.json" in load(project.project, "tab", "quick").record["inputs"]["data"]


def test_a_file_read_by_a_child_process(project):
    lab(project, "child", "import subprocess, sys\n"
        "print(subprocess.run([sys.executable, '-c', 'print(open(\"data/a.txt\").read())'], check=True))")
    edit = lambda: (project.root / "data/a.txt").write_text("10\n", encoding="utf-8")
    assert then(project, "child", edit) == {"child": "ok"}


def test_a_file_read_by_a_ray_actor(project):
    lab(project, "actor", "import ray\nray.init(address='local', num_cpus=1, include_dashboard=False)\n"
        "@ray.remote\nclass Reader:\n    def read(self):\n        return open('data/b.txt').read()\n"
        "print(ray.get(Reader.remote().read.remote()))\nray.shutdown()")
    # One run (starting Ray in a kernel is slow): the status after the edit is the decision a
    # second run would act on (test_labs_run checks that runs follow it).
    assert run(project, "actor") == {"actor": "ok"}, load_failure(project, "actor")
    assert "data/b.txt" in load(project.project, "actor", "quick").record["inputs"]["data"]
    (project.root / "data/b.txt").write_text("20\n", encoding="utf-8")
    assert "actor: stale (data file data/b.txt changed)" in status(project)


@pytest.mark.parametrize("listing", ["os.listdir('data')", "sorted(glob.glob('data/*.txt'))", "list(pathlib.Path('data').iterdir())"])
def test_a_new_file_in_a_listed_folder(project, listing):
    lab(project, "lists", f"import glob, os, pathlib\nprint({listing})")
    new = lambda: (project.root / "data/c.txt").write_text("3\n", encoding="utf-8")
    assert then(project, "lists", new) == {"lists": "ok"}
    assert list(load(project.project, "lists", "quick").record["inputs"]["listings"]) == ["data"]


def test_a_listed_folder_is_named_in_status(project):
    lab(project, "lists", "import os\nprint(os.listdir('data'))")
    run(project, "lists")
    (project.root / "data/c.txt").write_text("3\n", encoding="utf-8")
    assert "lists: stale (folder data changed (a file was added, removed or renamed))" in status(project)


def test_a_file_edited_during_the_run_is_recorded_as_read(project):
    # The lab reads a.txt, then the file changes before the run ends (here the lab itself
    # rewrites it): the record keeps what was read, so the lab reads as stale afterwards.
    lab(project, "edits", "first = open('data/a.txt').read()\nopen('data/a.txt', 'w').write('changed\\n')")
    assert run(project, "edits") == {"edits": "ok"}
    assert "edits: stale (data file data/a.txt changed)" in status(project)


def test_reads_from_many_threads_are_all_recorded(project):
    files = project.root / "many"
    files.mkdir()
    for i in range(40):
        (files / f"{i}.txt").write_text(str(i), encoding="utf-8")
    lab(project, "threads", "from concurrent.futures import ThreadPoolExecutor\n"
        "def read(i):\n    return open(f'many/{i}.txt').read()\n"
        "with ThreadPoolExecutor(8) as pool:\n    print(len(list(pool.map(read, range(40)))))")
    assert run(project, "threads") == {"threads": "ok"}
    data = load(project.project, "threads", "quick").record["inputs"]["data"]
    assert {f"many/{i}.txt" for i in range(40)} <= data.keys()


def test_a_changed_environment_is_shown_and_reruns_only_when_asked(project):
    lab(project, "env", "print(1)")
    assert run(project, "env") == {"env": "ok"}
    record_path = entry_dir(project.project, "env", "quick") / "run.json"
    record = json.loads(record_path.read_text(encoding="utf-8"))
    real = record["environment"]["packages"]["ray"]
    record["environment"]["packages"]["ray"] = "2.0.0"
    record_path.write_text(json.dumps(record), encoding="utf-8")
    assert f"env: fresh; environment changed: ray 2.0.0 → {real}" in status(project)
    assert run(project, "env") == {"env": "cached"}
    assert run(project, "env", env_changed=True) == {"env": "ok"}
    assert "environment changed" not in status(project)


def test_hashed_files_are_checked_out_without_line_ending_conversion():
    """A checkout with core.autocrlf would otherwise change every lab's digest."""
    import subprocess
    from pathlib import Path

    repo = Path(__file__).parents[1]
    paths = ["labs/actors.py", "src/distrl/policy.py", "results/actors/run.json", "results/actors/x.ipynb", "logs/x.md"]
    shown = subprocess.run(["git", "check-attr", "eol", "--", *paths], cwd=repo, capture_output=True, text=True, check=True)
    assert shown.stdout.splitlines() == [f"{path}: eol: lf" for path in paths]


def test_installation_metadata_is_not_an_input(project):
    # `pip install -e` writes src/<name>.egg-info, and a fresh clone's install rewrites it (its
    # PKG-INFO holds the README): a lab whose libraries look up package metadata must not read
    # as stale on every new machine. The versions are recorded as the environment instead.
    meta = project.root / "src" / "trackpkg.egg-info"
    meta.mkdir()
    (meta / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: trackpkg\nVersion: 1.0\n", encoding="utf-8")
    lab(project, "meta", "import importlib.metadata as m\nprint(m.version('trackpkg'), len(m.entry_points()))")
    edit = lambda: (meta / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: trackpkg\nVersion: 1.0\nSummary: new\n", encoding="utf-8")
    assert then(project, "meta", edit) == {"meta": "cached"}
    inputs = load(project.project, "meta", "quick").record["inputs"]
    assert not [name for name in [*inputs["data"], *inputs["listings"]] if "egg-info" in name]
