"""Population-based training around unchanged policy optimizers.

The RLlib paper's claim about composition: because a policy optimizer is an object with
`step()`, `get_state()` and `set_state()`, a hyperparameter search can drive several of them
without knowing what is inside. Population-based training (Jaderberg et al. 2017) trains
a population at once and, every `interval` steps,

- exploits: each member in the bottom `fraction` by score takes the state (weights,
  optimizer moments, workers, random generators) of a member drawn from the top
  `fraction`, and that member's hyperparameters;
- explores: each hyperparameter it took is multiplied by a factor drawn from `factors`.

How a hyperparameter reaches an optimizer is the caller's `apply(optimizer, values)`: the
only place that knows the optimizer's insides. Each member keeps its own statistics; the
default score is the mean return of its last 20 episodes since it last took a state, so a
member is judged by the weights it now holds, not by the ones it threw away.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .optimizers.base import PolicyOptimizer


class PBT:
    def __init__(self, members: Sequence[PolicyOptimizer], hyperparams: Sequence[dict[str, float]],
                 apply: Callable[[PolicyOptimizer, dict[str, float]], None], interval: int,
                 score: Callable[[PolicyOptimizer], float] | None = None,
                 fraction: float = 0.25, factors: tuple[float, ...] = (0.8, 1.2), seed: int = 0):
        assert len(members) == len(hyperparams) >= 2, "a population of two or more, each with its hyperparameters"
        self.members, self.hyperparams = list(members), [dict(h) for h in hyperparams]
        self.apply, self.interval, self.score = apply, interval, score
        self.cut, self.factors = max(1, int(len(self.members) * fraction)), factors
        self.rng, self.steps, self.copies = np.random.default_rng(seed), 0, []  # copies: (step, loser, winner)
        self.marks = [0] * len(self.members)  # episodes each member had ended when it last took a state
        for member, values in zip(self.members, self.hyperparams):
            apply(member, values)

    def step(self) -> None:
        """One step of every member, then exploit and explore at every `interval`-th."""
        for member in self.members:
            member.step()
        self.steps += 1
        if self.steps % self.interval == 0:
            self.exploit_and_explore()

    def since_copy(self, i: int) -> list[float]:
        """Member i's episode returns since it last took another's state."""
        return self.members[i].stats.returns[self.marks[i]:]

    def exploit_and_explore(self) -> None:
        scores = [self.score(m) if self.score else float(np.mean(self.since_copy(i)[-20:] or np.nan))
                  for i, m in enumerate(self.members)]
        ranked = sorted(range(len(self.members)), key=lambda i: -np.inf if np.isnan(scores[i]) else scores[i])
        for loser in ranked[:self.cut]:
            winner = int(self.rng.choice(ranked[-self.cut:]))
            self.members[loser].set_state(self.members[winner].get_state())
            self.marks[loser] = len(self.members[loser].stats.returns)
            self.hyperparams[loser] = {k: v * float(self.rng.choice(self.factors)) for k, v in self.hyperparams[winner].items()}
            self.apply(self.members[loser], self.hyperparams[loser])
            self.copies.append((self.steps, loser, winner))
