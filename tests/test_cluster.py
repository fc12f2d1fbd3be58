"""How much of a CPU an actor asks for, and what a run's record says about where it ran."""

from __future__ import annotations

import pytest
import ray
from hypothesis import given
from hypothesis import strategies as st

from distrl import cluster


@given(st.integers(1, 4096), st.integers(1, 4096))
def test_one_cpu_each_where_there_is_one_else_an_equal_share_that_fits(cpus, actors):
    share = cluster.share(cpus, actors)
    if cpus >= actors:
        assert share == 1.0
    else:
        # Ray counts CPUs in ten-thousandths, as whole numbers: so does the test
        steps = round(share * 10_000)
        assert share == steps / 10_000 and steps >= 1  # a fraction Ray schedules
        assert steps * actors <= cpus * 10_000  # all of them can be placed at once
        assert (steps + 1) * actors > cpus * 10_000  # and no smaller than it must be


def test_the_share_follows_what_the_lab_holds_and_the_record_says_so(ray_session):
    assert cluster.actor_cpus() == 0.25  # the session's Ray: 2 CPUs, the default 8 actors
    facts = cluster.describe()
    assert facts["nodes"] == 1 and facts["address"] is None and facts["actor_cpus"] == 0.25
    assert facts["summary"] == ("a local Ray on this machine: 1 node, 2 CPUs, 0 GPUs; "
                                "each of up to 8 actors asks for 0.25 CPU, so they share 2 CPUs")
    try:
        cluster.init(actors=2)
        assert cluster.actor_cpus() == 1.0 and cluster.describe()["summary"].endswith("asks for 1 CPU")
        worker = ray.remote(num_cpus=cluster.actor_cpus())(lambda: ray.get_runtime_context().get_assigned_resources())
        assert ray.get(worker.remote()) == {"CPU": 1.0}
    finally:
        cluster.init()  # the other tests' share back
    assert cluster.actor_cpus() == 0.25


def test_a_profile_for_a_cluster_refuses_to_run_without_one(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(cluster.NoCluster, match="RAY_ADDRESS"):
        cluster.init(require_cluster=True)
