"""V-trace: off-policy value targets for a learner whose actors act with older policies.

IMPALA (Espeholt et al., 2018). An actor samples with its behaviour policy μ; by the time the
learner sees the batch, its own policy π has moved on. V-trace corrects the n-step return
with truncated importance weights ρ_t = min(ρ̄, π(a_t|s_t)/μ(a_t|s_t)) and
c_t = λ·min(c̄, π(a_t|s_t)/μ(a_t|s_t)):

    δ_t = ρ_t (r_t + γ V(s_{t+1}) − V(s_t))
    v_s = V(s_s) + Σ_{t≥s} γ^{t−s} (Π_{i=s}^{t−1} c_i) δ_t

which is computed backwards as  v_s − V(s_s) = δ_s + γ c_s (v_{s+1} − V(s_{s+1})).
The policy gradient then uses the advantage ρ_s (r_s + γ v_{s+1} − V(s_s)). With π = μ
and λ = 1, v_s is the ordinary n-step return.

Episode boundaries are handled as in `gae`: a terminated step has no V(s_{t+1}); a terminated
or truncated step ends the sum (the next row starts a new episode); the last row bootstraps
from V(s_{t+1}) alone.
"""

from __future__ import annotations

import numpy as np


def vtrace(log_rhos: np.ndarray, rewards: np.ndarray, values: np.ndarray, next_values: np.ndarray,
           terminateds: np.ndarray, truncateds: np.ndarray, gamma: float, lam: float = 1.0,
           rho_bar: float = 1.0, c_bar: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Targets v_s and policy-gradient advantages, time along axis 0 (trailing axes are
    independent streams). `log_rhos` = log π(a|s) − log μ(a|s); `values` and `next_values`
    are V(s_t) and V(s_{t+1}) under the learner's current critic."""
    rhos = np.exp(log_rhos)
    clipped_rhos, cs = np.minimum(rho_bar, rhos), lam * np.minimum(c_bar, rhos)
    bootstrap = gamma * (1.0 - terminateds) * next_values
    deltas = clipped_rhos * (rewards + bootstrap - values)
    carry = gamma * cs * (1.0 - np.logical_or(terminateds, truncateds))
    corrections = np.zeros_like(deltas, dtype=np.float64)  # v_s − V(s_s)
    running = np.zeros_like(deltas[0], dtype=np.float64) if len(deltas) else 0.0
    for t in reversed(range(len(deltas))):
        running = deltas[t] + carry[t] * running
        corrections[t] = running
    vs = values + corrections
    # v_{s+1} where the next row continues this episode, else V(s_{s+1}) (or nothing, if terminated).
    next_vs = next_values.astype(np.float64, copy=True)
    continues = np.logical_not(np.logical_or(terminateds, truncateds))[:-1]
    next_vs[:-1] = np.where(continues, vs[1:], next_values[:-1])
    advantages = clipped_rhos * (rewards + gamma * (1.0 - terminateds) * next_vs - values)
    return vs.astype(np.float32), advantages.astype(np.float32)


def ratio_stats(log_rhos: np.ndarray, rho_bar: float = 1.0, c_bar: float = 1.0) -> dict[str, float]:
    """How much V-trace corrects: the mean π/μ, and the share of steps whose ratio the
    truncations ρ̄ and c̄ cut. With π = μ (no staleness) every ratio is 1 and nothing is cut."""
    rhos = np.exp(log_rhos)
    return {"rho_mean": float(rhos.mean()), "rho_max": float(rhos.max()),
            "rho_clipped": float((rhos > rho_bar).mean()), "c_clipped": float((rhos > c_bar).mean())}
