"""Population-based training: the worst members take the best's exact state, then perturb
the hyperparameters they took; the optimizers themselves are unchanged."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from distrl.losses import ppo_loss
from distrl.optimizers import SyncSamples
from distrl.pbt import PBT
from distrl.policy import PolicyConfig
from distrl.rollout_worker import WorkerConfig
from distrl.worker_set import WorkerSet

SMALL = WorkerConfig(num_envs=2, fragment_length=16, policy=PolicyConfig(hidden=(16,)))


def population(n: int) -> list[SyncSamples]:
    # No remote workers: the driver samples, so the members differ only in their seeds.
    return [SyncSamples(WorkerSet(replace(SMALL, seed=100 * i), 0, ppo_loss()), minibatch_size=16, seed=i)
            for i in range(n)]


def set_lr(member: SyncSamples, values: dict[str, float]) -> None:
    member.lr = values["lr"]


def test_the_worst_member_takes_the_best_ones_exact_state_and_hyperparameters(ray_session):
    members = population(3)
    scores = {id(members[0]): 1.0, id(members[1]): 5.0, id(members[2]): 9.0}
    pbt = PBT(members, [{"lr": 1e-3}, {"lr": 2e-3}, {"lr": 3e-3}], set_lr, interval=1,
              score=lambda m: scores[id(m)], fraction=1 / 3, factors=(1.0,))
    pbt.step()
    assert pbt.copies == [(1, 0, 2)] and pbt.hyperparams[0] == {"lr": 3e-3} and members[0].lr == 3e-3
    np.testing.assert_array_equal(members[0].weights(), members[2].weights())
    # Everything the next step depends on came along: the two now step identically.
    members[0].step(), members[2].step()
    np.testing.assert_array_equal(members[0].weights(), members[2].weights())
    # Its statistics stay its own: its two steps' rows, not the winner's record.
    assert members[0].stats is not members[2].stats and members[0].stats.env_steps == 2 * 2 * 16
    for m in members:
        m.stop()


def test_explore_multiplies_what_was_taken_by_a_drawn_factor_and_unscored_members_rank_last(ray_session):
    members = population(4)
    scores = {id(members[0]): 3.0, id(members[1]): float("nan"), id(members[2]): 7.0, id(members[3]): 5.0}
    pbt = PBT(members, [{"lr": 1.0, "ent_coef": 0.01}] * 3 + [{"lr": 2.0, "ent_coef": 0.02}], set_lr, interval=2,
              score=lambda m: scores[id(m)], fraction=0.25, factors=(0.5, 4.0), seed=3)
    pbt.step()
    assert pbt.copies == []  # not yet at the interval
    pbt.step()
    assert [(loser, winner) for _, loser, winner in pbt.copies] == [(1, 2)]  # NaN ranks below 3.0
    taken = pbt.hyperparams[1]
    assert taken["lr"] in (0.5, 4.0) and taken["ent_coef"] in (0.005, 0.04) and members[1].lr == taken["lr"]
    assert pbt.hyperparams[2] == {"lr": 1.0, "ent_coef": 0.01}  # the winner is left as it was
    for m in members:
        m.stop()


def test_the_default_score_counts_only_episodes_since_the_last_copy(ray_session):
    members = population(2)
    pbt = PBT(members, [{"lr": 1e-3}, {"lr": 2e-3}], set_lr, interval=10**6, fraction=0.5, factors=(1.0,))
    members[0].stats.returns[:] = [10.0] * 30
    members[1].stats.returns[:] = [50.0] * 30
    pbt.exploit_and_explore()
    assert pbt.copies == [(0, 0, 1)] and pbt.since_copy(0) == [] and pbt.since_copy(1) == [50.0] * 30
    # Its own thirty poor episodes no longer count against it; the winner's do not count for it.
    members[0].stats.returns.extend([60.0] * 3)
    assert pbt.since_copy(0) == [60.0] * 3
    pbt.exploit_and_explore()
    assert pbt.copies[-1][1:] == (1, 0)  # 60 now beats 50: member 1 takes member 0's state
    # A member with no episode since its copy ranks last.
    pbt.exploit_and_explore()
    assert pbt.copies[-1][1:] == (1, 0)
    for m in members:
        m.stop()
