"""How much of a CPU an actor asks for, and what a run's record says about where it ran."""

from __future__ import annotations

import pytest
import ray
from hypothesis import given
from hypothesis import strategies as st

from distrl import cluster


@given(st.lists(st.integers(0, 64), min_size=1, max_size=8), st.integers(1, 600))
def test_one_cpu_each_where_there_is_one_else_the_largest_share_that_fits_node_by_node(node_cpus, actors):
    # Ray counts CPUs in ten-thousandths, as whole numbers, and places an actor on one node:
    # so does the test.
    if sum(node_cpus) * 10_000 < actors:
        with pytest.raises(ValueError, match="do not fit"):
            cluster.share(node_cpus, actors)
        return
    share = cluster.share(node_cpus, actors)
    steps = round(share * 10_000)
    assert share == steps / 10_000 and 1 <= steps <= 10_000

    def placed(each: int) -> int:
        return sum(cpus * 10_000 // each for cpus in node_cpus)

    assert placed(steps) >= actors  # all of them at once
    assert steps == 10_000 or placed(steps + 1) < actors  # at no smaller share than that needs
    assert (share == 1.0) == (sum(node_cpus) >= actors)


def test_a_share_from_the_total_would_leave_actors_unplaced():
    # Three 1-CPU nodes: the total's share, 3/8 = 0.375, fits two actors on each node, six
    # of eight; a third of a CPU fits three on each.
    assert cluster.share([1, 1, 1], 8) == 0.3333
    # Nodes of 2 and 3 CPUs: 5/8 = 0.625 fits 3 + 4 = 7 actors; 0.6 fits 3 + 5 = 8.
    assert cluster.share([2, 3], 8) == 0.6


def test_the_share_follows_what_the_lab_holds_and_the_record_says_so(ray_session):
    assert cluster.actor_cpus() == 0.25  # the session's Ray: 2 CPUs, the default 8 actors
    facts = cluster.describe()
    assert facts["nodes"] == 1 and not facts["cluster"] and facts["actor_cpus"] == 0.25
    assert facts["summary"] == ("a local Ray on this machine, 2 CPUs, 0 GPUs; an actor asks for 0.25 CPU by "
                                "default: the 8 actors the lab may hold at once share the CPUs; "
                                "a central learner computes on the CPU")
    try:
        cluster.init(actors=2)
        assert cluster.actor_cpus() == 1.0
        assert cluster.describe()["summary"].endswith("1 CPU by default: one for each of the 2 actors the lab may hold at once; "
                                                   "a central learner computes on the CPU")
        worker = ray.remote(num_cpus=cluster.actor_cpus())(lambda: ray.get_runtime_context().get_assigned_resources())
        assert ray.get(worker.remote()) == {"CPU": 1.0}
    finally:
        cluster.init()  # the other tests' share back
    assert cluster.actor_cpus() == 0.25
