"""Every lab in labs/ runs end to end in its quick profile and records its named metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ray_cli_cluster import RayStartCluster
from studylog.labs.store import load
from studylog.logs.check import check_project
from studylog.project import Project
from studylog.labs.runner import Outcome, run_labs

ROOT = Path(__file__).resolve().parent.parent
# The metrics each lab's issue names, which the site and later labs rely on.
REQUIRED = {
    "actors": {"sample_throughput_1", "sample_scaling_2", "async_vs_sync_2", "vs_rllib_sampling", "async_vs_sync_straggler_4x",
               "vs_torchrl_sampling"},
    "parameter_server": {"ps_sync_equivalence_err", "ps_updates_per_s_1m_sync_2w_k1", "ps_async_staleness_mean_n2"},
    "allreduce": {"ring_busbw_64mb_n4", "ring_vs_gloo_64mb_n2", "ring_vs_gloo_64mb_n4", "ring_vs_memcpy_64mb_n4",
                  "small_latency_4kb_n4_us", "ring_vs_mpi_64mb_n4", "small_latency_vs_mpi_4kb_n4"},
    # The quick profile races to a mean return of 100 (the full one to 450), without RLlib and
    # with TorchRL's PPO in one process only.
    "policy_optimizers": {"ppo_time_to_100_s", "ppo_local_time_to_100_s", "ppo_vs_local_time_to_100",
                          "ppo_vs_cleanrl_steps_to_100", "ppo_vs_cleanrl_time_to_100", "a2c_time_to_100_s",
                          "ppo_vs_torchrl_time_to_100", "torchrl_local_time_to_100_s",
                          "a3c_time_to_100_s", "ddppo_time_to_100_s", "impala_time_to_100_s", "optimizer_loc_max",
                          "ppo_learn_iteration_ms_cpu"},
    # Quick: N up to 256, one seed to 100, no second replica and no compiling.
    "podracer": {"anakin_steps_per_s_n256", "anakin_vs_gymnasium_steps_n256", "anakin_vs_gymnasium_vector_n256",
                 "anakin_vs_jax_steps_n256", "anakin_gpu_steps_per_s", "anakin_ppo_time_to_100_s",
                 "anakin_vs_syncsamples_time_to_100", "anakin_vs_jax_time_to_100", "sebulba_vs_sync_throughput",
                 "sebulba_policy_lag_mean"},
    # Quick: one seed to a greedy 100 without RLlib (Ape-X's slow start may miss it in the 8 s
    # cap, so its time is not required), throughput with one and two evaluators.
    # Quick: D up to 10^5, N up to 4 (one tree of 2 groups), one seed to 100, PBT members
    # that sample themselves; PBT's times are not required (a 20 s cap may stop it first).
    "evolution": {"es_protocols_max_abs_diff", "es_bytes_per_iter_ratio_1e5", "es_seeds_bytes_max_over_min",
                  "tree_vs_flat_driver_time_4", "driver_ms_per_message", "es_time_to_100_s", "evotorch_time_to_100_s",
                  "ppo_time_to_100_s", "es_vs_evotorch_time_to_100", "es_episodes_scaling_2",
                  "plain_episodes_scaling_2", "pbt_loc"},
    "replay": {"apex_loc", "dqn_time_to_100_s", "cleanrl_time_to_100_s", "apex_frames_scaling_2",
               "apex_frames_scaling_2_cpu_bound", "apex_updates_per_s", "apex_model_ceiling_frames_per_s"},
}


def test_every_lab_is_listed_here():
    assert {p.stem for p in (ROOT / "labs").glob("*.py")} == set(REQUIRED)


ON_A_CLUSTER = "actors"  # the lab whose quick run goes to a two-node cluster (see quick_runs)


@pytest.fixture(scope="module")
def quick_runs():
    """Every lab's quick profile. The actors lab's runs as a user would run it against a
    cluster: `studylog run` with RAY_ADDRESS naming a real two-node Ray cluster started with
    `ray start` (its record is checked below); the others on a local Ray each, two at a
    time, longest first, beside it. A lab spends part of its run waiting (actors starting,
    kernels importing), so they share the two cores: without the cluster, two at a time took
    128 s against 178 s one after another, measured here the same hour, and with it three
    at a time all passed in a full suite run. The time bounds inside keep their room: the
    optimizer race's slowest contender (DD-PPO) took 4.3 s of its 30 s cap alone."""
    # Quick runs go to the git-ignored cache; the published full results are not touched.
    project = Project.at(ROOT)
    labs = [lab for lab in check_project(project).labs if lab.name in REQUIRED and lab.name != ON_A_CLUSTER]
    with RayStartCluster() as client_env:
        command = [str(Path(sys.executable).with_name("studylog")), "run", ON_A_CLUSTER, "--profile", "quick", "--force"]
        on_cluster = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **client_env},
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            outcomes = {outcome.lab: outcome for outcome in run_labs(project, labs, profile="quick", force=True, jobs=2)}
            output, _ = on_cluster.communicate(timeout=600)
        finally:
            on_cluster.kill()
            on_cluster.wait()
    assert on_cluster.returncode == 0, output  # (so the stored run is this one, not an older good one)
    record = load(project, ON_A_CLUSTER, "quick").record
    outcomes[ON_A_CLUSTER] = Outcome(ON_A_CLUSTER, record["status"], record["duration_s"], error=record["error"],
                                     metrics=record["metrics"])
    return outcomes


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_lab_quick_profile(name, quick_runs):
    outcome = quick_runs[name]
    assert outcome.status == "ok", outcome.error
    assert REQUIRED[name] <= outcome.metrics.keys()


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


def test_a_lab_run_against_a_cluster_names_its_nodes_and_spreads_its_evaluators(quick_runs):
    record = load(Project.at(ROOT), ON_A_CLUSTER, "quick").record
    ray_facts = record["environment"]["reported"]["ray"]
    assert ray_facts["nodes"] == 2 and ray_facts["cluster"] and len(ray_facts["per_node"]) == 2, ray_facts
    # 2 + 2 CPUs for the 8 actors the lab may hold at once: half a CPU each, and the record says so
    assert ray_facts["actor_cpus"] == 0.5, ray_facts
    assert ray_facts["summary"] == ("a Ray cluster of 2 nodes, 4 CPUs, 0 GPUs; an actor asks for 0.5 CPU by default: "
                                    "the 8 actors the lab may hold at once share the CPUs; "
                                    "a central learner computes on the CPU")
    assert "127.0.0.1" not in json.dumps(record)  # no address in a record that may be published
    assert record["metrics"]["evaluator_nodes"]["value"] == 2  # placed on both nodes, by node id
