"""Distributions built by pushing a base distribution through transforms.

``TransformedDistribution(base, [t1, t2])`` draws ``t2(t1(x))`` with ``x ~ base`` and has the
change-of-variables density ``log p(y) = log p_base(x) - sum log|det J_t(x)|``. This is how
LogNormal (exp of a Normal) and InverseGamma (reciprocal of a Gamma) are defined, and the
shape bookkeeping (transforms that turn batch dims into event dims, or change the event
shape) is done once here.
"""

from __future__ import annotations

import math
from typing import Any

from minippl.backend import current
from minippl.distributions import constraints
from minippl.distributions.constraints import Constraint
from minippl.distributions.distribution import Distribution
from minippl.distributions.transforms import AbsTransform, ComposeTransform, Transform
from minippl.distributions.util import Shape, sum_rightmost


class TransformedDistribution(Distribution):
    """The distribution of ``transforms[-1](... transforms[0](x))`` for ``x ~ base_dist``."""

    arg_constraints: dict[str, Constraint] = {}
    base_dist: Distribution

    def __init__(
        self,
        base_distribution: Distribution,
        transforms: Transform | list[Transform],
        *,
        validate_args: bool | None = None,
    ) -> None:
        if isinstance(transforms, Transform):
            transforms = [transforms]
        elif not isinstance(transforms, list) or not all(
            isinstance(t, Transform) for t in transforms
        ):
            raise ValueError(
                f"TransformedDistribution: transforms must be a Transform or a list of "
                f"Transforms, got {transforms!r}"
            )
        if not transforms:
            raise ValueError("TransformedDistribution: give at least one transform")
        base = base_distribution
        if isinstance(base, TransformedDistribution):
            transforms = base.transforms + transforms
            base = base.base_dist
        self.transforms: list[Transform] = list(transforms)
        chain = ComposeTransform(self.transforms)
        domain_dim = chain.domain.event_dim
        base_shape = base.shape()
        if len(base_shape) < domain_dim:
            raise ValueError(
                f"TransformedDistribution: the transforms need points of {domain_dim} dims, "
                f"but the base distribution has shape {base_shape}"
            )
        shape = chain.forward_shape(base_shape)
        # A transform with parameters of a bigger shape broadcasts the base distribution up.
        base_needed = chain.inverse_shape(shape)
        if base_needed != base_shape:
            base = base.expand(base_needed[: len(base_needed) - base.event_dim])
        if domain_dim > base.event_dim:
            base = base.to_event(domain_dim - base.event_dim)
        self.base_dist = base
        event_dim = chain.codomain.event_dim + max(base.event_dim - domain_dim, 0)
        cut = len(shape) - event_dim
        codomain = self.transforms[-1].codomain
        extra = event_dim - codomain.event_dim
        self.support = constraints.independent(codomain, extra) if extra > 0 else codomain
        super().__init__(shape[:cut], shape[cut:], validate_args=validate_args)

    @property
    def has_rsample(self) -> bool:
        return self.base_dist.has_rsample

    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        x = self.base_dist.sample(key, sample_shape)
        for transform in self.transforms:
            x = transform(x)
        return x

    def sample_with_intermediates(
        self, key: Any, sample_shape: Shape = ()
    ) -> tuple[Any, list[Any]]:
        x = self.base_dist.sample(key, sample_shape)
        intermediates = []
        for transform in self.transforms:
            y, inter = transform.call_with_intermediates(x)
            intermediates.append([x, inter])
            x = y
        return x, intermediates

    def _log_prob(self, value: Any) -> Any:
        event_dim = self.event_dim
        total: Any = 0.0
        y = value
        for transform in reversed(self.transforms):
            x = transform.inv(y)
            extra = event_dim - transform.codomain.event_dim
            total = total - sum_rightmost(transform.log_abs_det_jacobian(x, y), extra)
            event_dim = transform.domain.event_dim + extra
            y = x
        base_lp = self.base_dist.log_prob(y)
        return total + sum_rightmost(base_lp, event_dim - self.base_dist.event_dim)

    def cdf(self, value: Any) -> Any:
        xp = current().xp
        sign: Any = 1
        for transform in reversed(self.transforms):
            sign = sign * transform.sign
            value = transform.inv(value)
        q = self.base_dist.cdf(value)
        return xp.where(xp.asarray(sign) < 0, 1 - q, q)

    def icdf(self, q: Any) -> Any:
        xp = current().xp
        sign: Any = 1
        for transform in self.transforms:
            sign = sign * transform.sign
        value = self.base_dist.icdf(xp.where(xp.asarray(sign) < 0, 1 - q, q))
        for transform in self.transforms:
            value = transform(value)
        return value


class FoldedDistribution(TransformedDistribution):
    """``|X|`` for a univariate ``X ~ base_dist``: the density of ``x`` and ``-x`` added."""

    def __init__(self, base_dist: Distribution, *, validate_args: bool | None = None) -> None:
        if base_dist.event_shape:
            raise ValueError(
                f"FoldedDistribution: only univariate distributions can be folded, got event "
                f"shape {base_dist.event_shape}"
            )
        super().__init__(base_dist, AbsTransform(), validate_args=validate_args)
        self.support = constraints.nonnegative

    def _log_prob(self, value: Any) -> Any:
        xp = current().xp
        return xp.logaddexp(self.base_dist.log_prob(value), self.base_dist.log_prob(-value))

    def _normal_moments(self) -> tuple[Any, Any]:
        from minippl.distributions.continuous import Normal

        base = self.base_dist
        if not isinstance(base, Normal):
            raise NotImplementedError(
                "FoldedDistribution: mean and variance are known for a Normal base only"
            )
        xp, sp = current().xp, current().special
        mu, sigma = base.loc, base.scale
        z = mu / sigma
        mean = sigma * math.sqrt(2 / math.pi) * xp.exp(-0.5 * z**2) + mu * (1 - 2 * sp.ndtr(-z))
        variance = mu**2 + sigma**2 - mean**2
        return xp.broadcast_to(mean, self.batch_shape), xp.broadcast_to(variance, self.batch_shape)

    @property
    def mean(self) -> Any:
        return self._normal_moments()[0]

    @property
    def variance(self) -> Any:
        return self._normal_moments()[1]
