"""Executing labs: the cache decides what runs, failures are recorded, stores survive kills."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import lab_source
from studylog.logs.check import check_project
from studylog.cli import main
from studylog.labs import runner
from studylog.labs.runner import Outcome, run_labs
from studylog.labs.key import stale_reasons
from studylog.labs.store import load, save

PLOTS = (
    "import matplotlib\nimport matplotlib.pyplot as plt\nfrom studylog import record\n"
    "plt.plot(range(n)); plt.show()\nrecord('total', sum(range(n)), 'things')\n"
    "record('middle', 1, 'things', 'middle of 0..n', spread=(0, n))\nprint('total', sum(range(n)))"
)


def labs_of(maker, *names):
    result = check_project(maker.project)
    assert not result.problems, result.problems
    by_name = {lab.name: lab for lab in result.labs}
    return [by_name[n] for n in names]


def statuses(outcomes):
    return {o.lab: o.status for o in outcomes}


@pytest.fixture
def project(maker):
    """Fixture labs: one that plots, one that imports a project module, one that reads data."""
    pkg = maker.root / "src" / "fixturepkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "helper.py").write_text("from .consts import BASE\n\ndef double(x):\n    return BASE * x\n", encoding="utf-8")
    (pkg / "consts.py").write_text("BASE = 2\n", encoding="utf-8")
    (maker.root / "data").mkdir()
    (maker.root / "data" / "numbers.txt").write_text("1 2 3\n", encoding="utf-8")
    maker.lab("plots", body=PLOTS)
    maker.lab(
        "imports",
        body="import sys\nsys.path.insert(0, 'src')\nfrom fixturepkg.helper import double\nfrom studylog import record\nrecord('doubled', double(n), 'x')",
    )
    maker.lab("reads", body="values = open('data/numbers.txt').read().split()\nprint(len(values))")
    return maker


def run(maker, *names, **options):
    return statuses(run_labs(maker.project, labs_of(maker, *names), **options))


def test_first_run_then_cached(project):
    assert run(project, "plots", "imports", "reads") == {"plots": "ok", "imports": "ok", "reads": "ok"}
    assert run(project, "plots", "imports", "reads") == {"plots": "cached", "imports": "cached", "reads": "cached"}
    stored = load(project.project, "plots", "quick")
    assert stored.record["metrics"]["total"] == {"value": 1.0, "unit": "things", "description": ""}
    assert stored.record["metrics"]["middle"] == {"value": 1.0, "unit": "things", "description": "middle of 0..n",
                                                  "spread": [0.0, 2.0]}
    assert stored.record["inputs"]["parameters"] == {"n": 2}
    assert stored.record["environment"]["machine"]["cores"] == os.cpu_count()


def test_editing_the_lab_reruns_only_it(project):
    run(project, "plots", "imports", "reads")
    path = project.root / "labs" / "plots.py"
    path.write_text(path.read_text(encoding="utf-8") + "\nprint('more')\n", encoding="utf-8")
    assert run(project, "plots", "imports", "reads") == {"plots": "ok", "imports": "cached", "reads": "cached"}


def test_editing_an_imported_module_reruns_only_its_importer(project):
    run(project, "plots", "imports", "reads")
    (project.root / "src" / "fixturepkg" / "consts.py").write_text("BASE = 3\n", encoding="utf-8")
    runner = CliRunner()
    status = runner.invoke(main, ["--root", str(project.root), "status", "--profile", "quick"])
    assert "imports: stale (module src/fixturepkg/consts.py changed)" in status.output
    assert "plots: fresh" in status.output
    assert run(project, "plots", "imports", "reads") == {"plots": "cached", "imports": "ok", "reads": "cached"}
    assert load(project.project, "imports", "quick").record["metrics"]["doubled"]["value"] == 6.0


def test_changing_a_read_data_file_reruns_the_reader(project):
    run(project, "plots", "imports", "reads")
    assert load(project.project, "reads", "quick").record["inputs"]["data"].keys() == {"data/numbers.txt"}
    (project.root / "data" / "numbers.txt").write_text("1 2 3 4\n", encoding="utf-8")
    assert run(project, "plots", "imports", "reads") == {"plots": "cached", "imports": "cached", "reads": "ok"}


def test_profile_parameters_change_reruns(project):
    run(project, "plots")
    path = project.root / "labs" / "plots.py"
    path.write_text(path.read_text(encoding="utf-8").replace("#         n: 2", "#         n: 4"), encoding="utf-8")
    (lab,) = labs_of(project, "plots")
    assert lab.overrides("quick") == {"n": 4}
    assert run(project, "plots") == {"plots": "ok"}


def test_a_profile_goes_stale_only_with_its_own_values_and_the_shared_source(maker):
    path = maker.lab("tuned", profiles="quick:\n  n: 2\nfull:\n  n: 5")
    (lab,) = labs_of(maker, "tuned")
    for profile in ("quick", "full"):
        assert statuses(run_labs(maker.project, [lab], profile=profile)) == {"tuned": "ok"}

    def stale_after(old: str, new: str) -> dict[str, list[str]]:
        path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
        (edited,) = labs_of(maker, "tuned")
        return {profile: stale_reasons(maker.project, edited, profile) for profile in ("quick", "full")}

    # The quick profile's values are not an input of the full run, nor the full one's of the quick run.
    assert stale_after("#         n: 2", "#         n: 3") == {"quick": ["parameters of profile 'quick' changed"], "full": []}
    assert stale_after("#         n: 5", "#         n: 6") == {"quick": ["parameters of profile 'quick' changed"],
                                                             "full": ["parameters of profile 'full' changed"]}
    # The rest of the header, the code and the prose belong to every profile's run.
    for old, new in (("title: A lab", "title: A lab, retitled"), ("# # A lab", "# # A lab, as read"),
                     ("print(sum(range(n)))", "print(sum(range(n + 1)))")):
        both = stale_after(old, new)
        assert all("labs/tuned.py changed" in reasons for reasons in both.values()), (old, both)


def test_force_reruns_fresh_labs(project):
    run(project, "reads")
    assert run(project, "reads", force=True) == {"reads": "ok"}


def test_failing_hanging_and_dying_labs_are_reported_and_others_run(maker):
    maker.lab("raises", body="x = 1\nraise ValueError('boom in the lab')")
    maker.lab("hangs", body="import time\ntime.sleep(60)")
    maker.lab("dies", body="import os, sys\nprint('last words', file=sys.__stderr__, flush=True)\nos._exit(3)")
    maker.lab("fine", body="print('fine')")
    outcomes = {o.lab: o for o in run_labs(maker.project, labs_of(maker, "raises", "hangs", "dies", "fine"), cell_timeout_s=3, jobs=2)}
    assert {k: o.status for k, o in outcomes.items()} == {"raises": "failed", "hangs": "timeout", "dies": "died", "fine": "ok"}
    assert outcomes["raises"].error["ename"] == "ValueError" and "boom in the lab" in outcomes["raises"].error["evalue"]
    assert any("boom in the lab" in line for line in outcomes["raises"].error["traceback"])
    # Cells: 0 title, 1 parameters, 2 injected parameters, 3 the lab's body.
    assert [outcomes[name].error["cell"] for name in ("raises", "hangs", "dies")] == [3, 3, 3]
    assert "last words" in outcomes["dies"].error["log_tail"]  # the kernel's own output, kept
    failure = load(maker.project, "raises", "quick", failure=True)
    assert failure.record["status"] == "failed"
    assert load(maker.project, "raises", "quick") is None


def test_labs_run_several_at_once_start_longest_first(maker, monkeypatch):
    # Expected: the last run of the profile (quick), else the published one (full), else 0.
    durations = {("mid", "full"): 20.0, ("long", "quick"): 5.0, ("long", "full"): 1.0, ("short", "quick"): 2.0}
    for (name, profile), seconds in durations.items():
        maker.lab(name)
        save(maker.project, {"lab": name, "profile": profile, "status": "ok", "duration_s": seconds}, "{}")
    maker.lab("unknown")
    started = []

    def fake_run(project, lab, *rest):
        started.append(lab.name)
        time.sleep(0.05)  # the first two start before either ends
        return Outcome(lab.name, "ok")

    monkeypatch.setattr(runner, "_run_one", fake_run)
    labs = labs_of(maker, "short", "unknown", "long", "mid")
    outcomes = run_labs(maker.project, labs, profile="quick", force=True, jobs=2)
    assert [o.lab for o in outcomes] == ["short", "unknown", "long", "mid"]  # in the order given
    assert set(started[:2]) == {"mid", "long"} and started[2:] == ["short", "unknown"]


def test_every_labs_kernel_is_shut_down_when_its_run_ends(maker):
    (maker.root / "pids").mkdir()
    mark = "import os\nopen(f'pids/{os.getpid()}', 'w').close()\n"
    maker.lab("ends", body=mark + "print('done')")
    maker.lab("raises", body=mark + "raise ValueError('boom')")
    maker.lab("hangs", body=mark + "import time\ntime.sleep(60)")
    assert run(maker, "ends", "raises", "hangs", cell_timeout_s=3, jobs=3) == {"ends": "ok", "raises": "failed", "hangs": "timeout"}
    kernels = [int(p.name) for p in (maker.root / "pids").iterdir()]
    assert len(kernels) == 3
    for pid in kernels:  # gone, and reaped: a zombie would still answer signal 0
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_running_labs_leaves_no_descriptor_open(maker):
    # A long-lived studylog (serve, or a run of many labs) must not leak a kernel's channels.
    maker.lab("tiny")
    run(maker, "tiny", force=True)  # what is made once per process (an event loop, a zmq context)
    before = len(os.listdir("/proc/self/fd"))
    assert run(maker, "tiny", force=True) == run(maker, "tiny", force=True) == {"tiny": "ok"}
    assert len(os.listdir("/proc/self/fd")) <= before


def test_a_kernels_children_stop_with_it_even_if_they_ignore_sigterm(maker):
    # Like Ray's processes, which outlive ipykernel's SIGTERM for many seconds: the kernel is
    # killed with its process group once its short wait to stop is over.
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
    maker.lab("spawns", body=f"import subprocess, sys\nchild = subprocess.Popen([sys.executable, '-c', {stubborn!r}])\n"
                             "open('child.pid', 'w').write(str(child.pid))")
    assert run(maker, "spawns") == {"spawns": "ok"}
    stat = Path(f"/proc/{(maker.root / 'child.pid').read_text()}/stat")
    assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"  # gone, or dead and unreaped


def test_a_cell_may_ask_for_a_longer_timeout(maker):
    maker.lab("long", body="import time\ntime.sleep(2)")
    maker.lab("long_allowed", source=lab_source(body="import time\ntime.sleep(2)").replace("# %%\nimport time", "# %% timeout_s=30\nimport time"))
    outcomes = {o.lab: o.status for o in run_labs(maker.project, labs_of(maker, "long", "long_allowed"), cell_timeout_s=1, jobs=2)}
    assert outcomes == {"long": "timeout", "long_allowed": "ok"}


def test_cli_run_exit_code_and_results_json(maker):
    maker.lab("plots", body=PLOTS)
    maker.lab("raises", body="raise RuntimeError('no')")
    runner = CliRunner()
    result = runner.invoke(main, ["--root", str(maker.root), "run"])
    assert result.exit_code == 1
    assert "failed" in result.output and "ok" in result.output
    out = runner.invoke(main, ["--root", str(maker.root), "results", "plots", "--profile", "quick", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == {"lab": "plots", "profile": "quick", "metrics": {"total": {"value": 1.0, "unit": "things"},
                                                                                       "middle": {"value": 1.0, "unit": "things", "spread": [0.0, 2.0]}}}
    missing = runner.invoke(main, ["--root", str(maker.root), "results", "plots"])
    assert missing.exit_code == 1 and "no stored full run" in missing.output


def test_corrupt_entry_is_detected_and_rerun(project):
    run(project, "reads")
    record = project.root / ".studylog" / "cache" / "reads" / "quick" / "run.json"
    record.write_text(record.read_text(encoding="utf-8")[:40], encoding="utf-8")
    runner = CliRunner()
    status = runner.invoke(main, ["--root", str(project.root), "status", "--profile", "quick"])
    assert "reads: stale (stored run is corrupt" in status.output
    assert run(project, "reads") == {"reads": "ok"}
    notebook = load(project.project, "reads", "quick").notebook
    notebook.write_bytes(notebook.read_bytes()[:-10])
    assert run(project, "reads") == {"reads": "ok"}


def test_sigkill_mid_run_leaves_a_usable_store(project):
    run(project, "plots")
    slow = lab_source(body="import time\ntime.sleep(0.5)\nprint('slept')")
    (project.root / "labs" / "plots.py").write_text(slow, encoding="utf-8")
    for delay in (0.3, 1.0, 2.0):
        proc = subprocess.Popen(
            [sys.executable, "-m", "studylog", "--root", str(project.root), "run", "plots", "--force"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    after = subprocess.run(
        [sys.executable, "-m", "studylog", "--root", str(project.root), "run", "plots"], capture_output=True, text=True
    )
    assert after.returncode == 0, after.stdout + after.stderr
    stored = load(project.project, "plots", "quick")
    assert stored is not None and stored.ok
    assert run(project, "plots") == {"plots": "cached"}
