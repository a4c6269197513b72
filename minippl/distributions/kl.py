"""Closed-form KL divergences, ``kl_divergence(p, q) = E_p[log p - log q]``.

Tutorial: "Variational inference: SVI from the handlers" (``tutorial/s14_svi.py``), where
``TraceMeanField_ELBO`` uses them in place of a Monte Carlo estimate.

A pair without a rule raises ``NotImplementedError`` naming both types (what
``TraceMeanField_ELBO`` catches to fall back to sampling). Rules are looked up by the
classes of the pair, the closest registered ones first (NumPyro's rules and pairs); the
wrappers ``Independent``, ``ExpandedDistribution`` and ``MaskedDistribution`` reduce to the
rule of their bases, and a ``Delta`` against anything is ``log_density - log q(v)``.

>>> import minippl.distributions as dist
>>> from minippl.distributions.kl import kl_divergence
>>> round(float(kl_divergence(dist.Normal(0.0, 1.0), dist.Normal(1.0, 1.0))), 6)
0.5
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from minippl.backend import current
from minippl.distributions.continuous import Beta, Gamma, Normal
from minippl.distributions.discrete import Categorical
from minippl.distributions.distribution import (
    Delta,
    Distribution,
    ExpandedDistribution,
    Independent,
    MaskedDistribution,
)
from minippl.distributions.multivariate import Dirichlet, MultivariateNormal
from minippl.distributions.util import solve_lower, sum_rightmost, tri_logabsdet

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
    rule = _rule_for(type(p), type(q))
    if rule is None:
        raise NotImplementedError(
            f"kl_divergence: no closed form for {type(p).__name__} against {type(q).__name__}"
        )
    return rule(p, q)


def _rule_for(p_type: type, q_type: type) -> Rule | None:
    """The rule registered for the closest pair of classes the two types derive from (their
    own first: a rule for ``(Gamma, Gamma)`` serves ``Chi2``, one for ``(Delta,
    Distribution)`` every ``q``), as NumPyro's dispatch picks the most specific one."""
    found = [
        (i + j, i, rule)
        for i, a in enumerate(p_type.__mro__)
        for j, b in enumerate(q_type.__mro__)
        if (rule := _RULES.get((a, b))) is not None
    ]
    return min(found, key=lambda item: item[:2])[2] if found else None


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
    # The event dims both reinterpret are summed here; what only one does stays with it.
    shared = min(p.reinterpreted_batch_ndims, q.reinterpreted_batch_ndims)
    base_p = p.base_dist.to_event(p.reinterpreted_batch_ndims - shared)
    base_q = q.base_dist.to_event(q.reinterpreted_batch_ndims - shared)
    return sum_rightmost(kl_divergence(base_p, base_q), shared)


@register_kl(MaskedDistribution, MaskedDistribution)
def _kl_masked(p: MaskedDistribution, q: MaskedDistribution) -> Any:
    """The base pair's KL where both masks are True, 0 elsewhere."""
    xp = current().xp
    kl = kl_divergence(p.base_dist, q.base_dist)
    masks = [m for m in (p._mask, q._mask) if m is not True]
    if not masks:
        return kl
    keep = xp.logical_and(masks[0], masks[-1])
    return xp.where(keep, kl, xp.zeros((), dtype=xp.result_type(kl)))


@register_kl(Delta, Distribution)
def _kl_delta(p: Delta, q: Distribution) -> Any:
    # All of p's mass sits at v: E_p[log p - log q] = log_density - log q(v).
    return p.log_density - q.log_prob(p.v)


@register_kl(MultivariateNormal, MultivariateNormal)
def _kl_mvn(p: MultivariateNormal, q: MultivariateNormal) -> Any:
    # KL = (tr(Sq^-1 Sp) + |Lq^-1 (mp - mq)|^2 - n + log|Sq| - log|Sp|) / 2, with
    # tr(Sq^-1 Sp) the squared Frobenius norm of Lq^-1 Lp.
    xp = current().xp
    if p.event_shape != q.event_shape:
        raise ValueError(f"kl_divergence: event shapes {p.event_shape} and {q.event_shape} differ")
    n = p.event_shape[0]
    whitened = solve_lower(q.scale_tril, p.scale_tril)
    trace = xp.sum(xp.square(whitened), axis=(-2, -1))
    shift = xp.expand_dims(xp.asarray(p.loc - q.loc), -1)
    mahalanobis = xp.sum(xp.square(solve_lower(q.scale_tril, shift)), axis=(-2, -1))
    log_det_ratio = 2 * (tri_logabsdet(q.scale_tril) - tri_logabsdet(p.scale_tril))
    return 0.5 * (trace + mahalanobis - n + log_det_ratio)


@register_kl(Beta, Beta)
def _kl_beta(p: Beta, q: Beta) -> Any:
    sp = current().special
    a, b = p.concentration1, p.concentration0
    a_q, b_q = q.concentration1, q.concentration0
    log_beta_ratio = _log_beta(a_q, b_q) - _log_beta(a, b)
    return (
        log_beta_ratio
        - (a_q - a) * sp.digamma(a)
        - (b_q - b) * sp.digamma(b)
        + (a_q - a + b_q - b) * sp.digamma(a + b)
    )


def _log_beta(a: Any, b: Any) -> Any:
    sp = current().special
    return sp.gammaln(a) + sp.gammaln(b) - sp.gammaln(a + b)


@register_kl(Gamma, Gamma)
def _kl_gamma(p: Gamma, q: Gamma) -> Any:
    xp, sp = current().xp, current().special
    a, rate = p.concentration, p.rate
    a_q, rate_q = q.concentration, q.rate
    ratio = rate_q / rate
    return (
        sp.gammaln(a_q)
        - sp.gammaln(a)
        + (a - a_q) * sp.digamma(a)
        - a_q * xp.log(ratio)
        + a * (ratio - 1)
    )


@register_kl(Dirichlet, Dirichlet)
def _kl_dirichlet(p: Dirichlet, q: Dirichlet) -> Any:
    xp, sp = current().xp, current().special
    alpha, alpha_q = xp.asarray(p.concentration), xp.asarray(q.concentration)
    total = xp.sum(alpha, axis=-1)
    log_norm = sp.gammaln(total) - sp.gammaln(xp.sum(alpha_q, axis=-1))
    log_norm = log_norm - xp.sum(sp.gammaln(alpha) - sp.gammaln(alpha_q), axis=-1)
    expected_log = sp.digamma(alpha) - sp.digamma(total)[..., None]
    return log_norm + xp.sum((alpha - alpha_q) * expected_log, axis=-1)


@register_kl(Categorical, Categorical)
def _kl_categorical(p: Categorical, q: Categorical) -> Any:
    # sum p (log p - log q), with 0 where p is 0 and +inf where only q is.
    xp = current().xp
    terms = p.probs * (_log_probs(p) - _log_probs(q))
    terms = xp.where(q.probs == 0, xp.inf, terms)
    return xp.sum(xp.where(p.probs == 0, 0.0, terms), axis=-1)


def _log_probs(d: Categorical) -> Any:
    sp = current().special
    return d.logits - sp.logsumexp(d.logits, axis=-1, keepdims=True)
