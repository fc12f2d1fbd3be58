"""Every lab in labs/ runs end to end in its quick profile and records its named metrics."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from studylog.labs.store import load
from studylog.project import Project

ROOT = Path(__file__).resolve().parent.parent
# The metrics each lab's issue names, which the site and later labs rely on.
REQUIRED = {
    "actors": {"sample_throughput_1", "sample_scaling_2", "async_vs_sync_2", "vs_rllib_sampling", "async_vs_sync_straggler_4x"},
    "parameter_server": {"ps_sync_equivalence_err", "ps_updates_per_s_1m_sync_2w_k1", "ps_async_staleness_mean_n2"},
    "allreduce": {"ring_busbw_64mb_n4", "ring_vs_gloo_64mb_n2", "ring_vs_gloo_64mb_n4", "ring_vs_memcpy_64mb_n4",
                  "small_latency_4kb_n4_us", "ring_vs_mpi_64mb_n4", "small_latency_vs_mpi_4kb_n4"},
    # The quick profile races to a mean return of 150 (the full one to 450), without RLlib.
    "policy_optimizers": {"ppo_time_to_150_s", "ppo_local_time_to_150_s", "ppo_vs_local_time_to_150",
                          "ppo_vs_cleanrl_steps_to_150", "ppo_vs_cleanrl_time_to_150", "a2c_time_to_150_s",
                          "a3c_time_to_150_s", "ddppo_time_to_150_s", "impala_time_to_150_s", "optimizer_loc_max"},
    # Quick: N up to 256, one seed to 150, no second replica and no compiling.
    "podracer": {"anakin_steps_per_s_n256", "anakin_vs_gymnasium_steps_n256", "anakin_vs_gymnasium_vector_n256",
                 "anakin_vs_jax_steps_n256", "anakin_gpu_steps_per_s", "anakin_ppo_time_to_150_s",
                 "anakin_vs_syncsamples_time_to_150", "anakin_vs_jax_time_to_150", "sebulba_vs_sync_throughput",
                 "sebulba_policy_lag_mean"},
    # Quick: one seed to a greedy 150 without RLlib (Ape-X's slow start may miss it in the 12 s
    # cap, so its time is not required), throughput with one and two evaluators.
    "replay": {"apex_loc", "dqn_time_to_150_s", "cleanrl_time_to_150_s", "apex_frames_scaling_2",
               "apex_frames_scaling_2_cpu_bound", "apex_updates_per_s", "apex_model_ceiling_frames_per_s"},
}


def test_every_lab_is_listed_here():
    assert {p.stem for p in (ROOT / "labs").glob("*.py")} == set(REQUIRED)


QUICK_RUNS_TEST = "tests/test_real_labs.py::test_lab_quick_profile"
_background: dict = {}
ENVIRONMENT = dict(os.environ)  # as collection found it, before any fixture (Ray's init sets variables)


def start_quick_runs() -> None:
    """Start every lab's quick profile, two at a time, in a process of its own (`studylog
    run`), under the environment as it was before any test changed it. Two at a time because a lab spends part of its run waiting (actors
    starting, kernels importing). Running them in the background beside the rest of the
    suite saved 44 s of 728 once, but the contention made a test's 35 s start-up budget run
    out on a slower afternoon: they run here, alone, at the end."""
    if _background:
        return
    path = ROOT / ".studylog" / "test-artifacts" / "quick-runs.log"  # git-ignored, kept for a look after the session
    path.parent.mkdir(parents=True, exist_ok=True)
    since = time.time()
    with path.open("w", encoding="utf-8") as log:
        process = subprocess.Popen([sys.executable, "-m", "studylog", "--root", str(ROOT), "run", "--profile", "quick",
                                    "--force", "--jobs", "2", *sorted(REQUIRED)], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                                   env=ENVIRONMENT, start_new_session=True)
    _background.update(since=since, log=path, process=process)


def stop_quick_runs() -> None:
    """Interrupt the quick runs if the session ends before waiting for them (a failure with
    -x, a Ctrl-C), as Ctrl-C would: every kernel shut down, nothing half stored."""
    process = _background.get("process")
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="module")
def quick_runs():
    """Each lab's own record of the quick run started for this session: the failure record
    when that run failed, else the good one; None when neither is from this session."""
    start_quick_runs()
    _background["process"].wait(timeout=1800)
    since = int(_background["since"])  # records keep whole seconds
    project = Project.at(ROOT)

    def this_session(lab: str):
        for failure in (True, False):
            stored = load(project, lab, "quick", failure=failure)
            if stored and dt.datetime.fromisoformat(stored.record["started"]).timestamp() >= since:
                return stored.record
        return None

    return {lab: this_session(lab) for lab in REQUIRED}, _background["log"].read_text(encoding="utf-8")[-3000:]


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_lab_quick_profile(name, quick_runs):
    records, log = quick_runs
    record = records[name]
    assert record is not None, f"{name} stored no quick run this session; the run's output ends:\n{log}"
    assert record["status"] == "ok", record["error"]
    assert REQUIRED[name] <= record["metrics"].keys()


def test_published_runs_read_only_what_a_clone_has():
    # A published run is fresh on a new machine only if every input it recorded comes with
    # the clone: a git-ignored file (an install's egg-info, a cache) differs there, and the
    # lab would read as stale after every fresh install.
    tracked = set(subprocess.run(["git", "ls-files"], cwd=ROOT, check=True, capture_output=True, text=True).stdout.split("\n"))
    folders = {str(Path(name).parent) for name in tracked}
    for record in sorted((ROOT / "results").glob("*/run.json")):
        inputs = json.loads(record.read_text(encoding="utf-8"))["inputs"]
        untracked = [name for name in [*inputs["modules"], *inputs["data"]] if name not in tracked]
        untracked += [name for name in inputs["listings"] if name not in folders]
        assert not untracked, f"{record.parent.name}: inputs a fresh clone lacks: {untracked}"
