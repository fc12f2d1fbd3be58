"""Losses a Policy can carry: PPO's clipped surrogate and A2C's policy gradient.

Both read the batch columns obs, actions, advantages, value_targets (PPO also logp, and
values when its value loss is clipped) and return L(θ) to minimise plus statistics a
practitioner checks.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .sample_batch import SampleBatch


def _column(policy, batch: SampleBatch, name: str, dtype: torch.dtype | None = torch.float32) -> torch.Tensor:
    """A column on the policy's device (no copy where it is there already)."""
    return torch.as_tensor(batch[name], dtype=dtype, device=policy.device)


def _outputs(policy, batch: SampleBatch):
    actions = _column(policy, batch, "actions", None)
    dist, values = policy.distribution(_column(policy, batch, "obs"))
    logp = dist.log_prob(actions) if policy.discrete else dist.log_prob(actions.float()).sum(-1)
    entropy = dist.entropy() if policy.discrete else dist.entropy().sum(-1)
    return logp, entropy, values, _column(policy, batch, "advantages"), _column(policy, batch, "value_targets")


def ppo_loss(clip: float = 0.2, vf_coef: float = 0.5, ent_coef: float = 0.01, normalize: bool = True,
             clip_value: float | None = None) -> Callable:
    """L = −E[min(ρ Â, clip(ρ, 1−ε, 1+ε) Â)] + c_v E[(V − V^targ)²]/2 − c_e E[H(π)],  ρ = π/π_old.

    With `clip_value` = ε_v the value term is PPO2's pessimistic one (CleanRL's default):
    E[max((V − V^targ)², (V_old + clip(V − V_old, −ε_v, ε_v) − V^targ)²)]/2.
    """

    def loss(policy, batch: SampleBatch) -> tuple[torch.Tensor, dict[str, float]]:
        logp, entropy, values, adv, targets = _outputs(policy, batch)
        if normalize and len(adv) > 1:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        log_ratio = logp - _column(policy, batch, "logp")
        ratio = log_ratio.exp()
        surrogate = torch.min(ratio * adv, ratio.clamp(1 - clip, 1 + clip) * adv).mean()
        value_error = (values - targets) ** 2
        if clip_value is not None:
            old = _column(policy, batch, "values")
            clipped = old + (values - old).clamp(-clip_value, clip_value)
            value_error = torch.max(value_error, (clipped - targets) ** 2)
        value_loss = 0.5 * value_error.mean()
        total = -surrogate + vf_coef * value_loss - ent_coef * entropy.mean()
        with torch.no_grad():
            stats = {
                "policy_loss": float(-surrogate),
                "value_loss": float(value_loss),
                "entropy": float(entropy.mean()),
                "approx_kl": float(((ratio - 1) - log_ratio).mean()),  # the k3 estimator
                "clip_fraction": float(((ratio - 1).abs() > clip).float().mean()),
            }
        return total, stats

    return loss


def a2c_loss(vf_coef: float = 0.5, ent_coef: float = 0.01) -> Callable:
    """L = −E[log π(a|s) Â] + c_v E[(V − V^targ)²]/2 − c_e E[H(π)]."""

    def loss(policy, batch: SampleBatch) -> tuple[torch.Tensor, dict[str, float]]:
        logp, entropy, values, adv, targets = _outputs(policy, batch)
        policy_loss = -(logp * adv).mean()
        value_loss = 0.5 * ((values - targets) ** 2).mean()
        total = policy_loss + vf_coef * value_loss - ent_coef * entropy.mean()
        with torch.no_grad():
            stats = {"policy_loss": float(policy_loss), "value_loss": float(value_loss), "entropy": float(entropy.mean())}
        return total, stats

    return loss
