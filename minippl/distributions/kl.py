"""Closed-form KL divergences, ``kl_divergence(p, q) = E_p[log p - log q]``.

Tutorial: "Variational inference: SVI from the handlers" (``tutorial/s14_svi.py``), where
``TraceMeanField_ELBO`` uses them in place of a Monte Carlo estimate.

A pair without a rule raises ``NotImplementedError`` (what ``TraceMeanField_ELBO`` catches
to fall back to sampling). Rules are looked up by the exact types of the pair; the
wrappers ``Independent`` and ``ExpandedDistribution`` reduce to the rule of their bases.

>>> import minippl.distributions as dist
>>> from minippl.distributions.kl import kl_divergence
>>> round(float(kl_divergence(dist.Normal(0.0, 1.0), dist.Normal(1.0, 1.0))), 6)
0.5
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from minippl.backend import current
from minippl.distributions.continuous import Normal
from minippl.distributions.distribution import Distribution, ExpandedDistribution, Independent
from minippl.distributions.util import sum_rightmost

Rule = Callable[[Any, Any], Any]

_RULES: dict[tuple[type, type], Rule] = {}


def register_kl(p_type: type, q_type: type) -> Callable[[Rule], Rule]:
    """Decorator: ``fn(p, q)`` is the KL divergence of a ``p_type`` from a ``q_type``."""

    def decorator(fn: Rule) -> Rule:
        _RULES[(p_type, q_type)] = fn
        return fn

    return decorator


def kl_divergence(p: Distribution, q: Distribution) -> Any:
    """``KL(p || q)``, one value per batch element of the broadcast pair."""
    if isinstance(p, ExpandedDistribution) or isinstance(q, ExpandedDistribution):
        return _kl_expanded(p, q)
    rule = _RULES.get((type(p), type(q)))
    if rule is None:
        raise NotImplementedError(
            f"kl_divergence: no closed form for {type(p).__name__} against {type(q).__name__}"
        )
    return rule(p, q)


def _kl_expanded(p: Distribution, q: Distribution) -> Any:
    """An expanded distribution has its base's KL, repeated over the expanded batch shape."""
    base_p = p.base_dist if isinstance(p, ExpandedDistribution) else p
    base_q = q.base_dist if isinstance(q, ExpandedDistribution) else q
    shape = _broadcast(p.batch_shape, q.batch_shape)
    return current().xp.broadcast_to(kl_divergence(base_p, base_q), shape)


def _broadcast(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    from minippl.distributions.util import broadcast_shapes

    return broadcast_shapes(a, b, what="batch shapes of the KL pair")


@register_kl(Normal, Normal)
def _kl_normal_normal(p: Normal, q: Normal) -> Any:
    # KL = log(s_q / s_p) + (s_p^2 + (m_p - m_q)^2) / (2 s_q^2) - 1/2, written with the ratio
    # r = s_p / s_q so that it stays exact when the two scales are close.
    xp = current().xp
    ratio_sq = xp.square(p.scale / q.scale)
    t1 = xp.square((p.loc - q.loc) / q.scale)
    return 0.5 * (ratio_sq + t1 - 1 - xp.log(ratio_sq))


@register_kl(Independent, Independent)
def _kl_independent(p: Independent, q: Independent) -> Any:
    if p.reinterpreted_batch_ndims != q.reinterpreted_batch_ndims:
        raise NotImplementedError(
            "kl_divergence: Independent pair with different event dims "
            f"({p.reinterpreted_batch_ndims} and {q.reinterpreted_batch_ndims})"
        )
    return sum_rightmost(kl_divergence(p.base_dist, q.base_dist), p.reinterpreted_batch_ndims)
