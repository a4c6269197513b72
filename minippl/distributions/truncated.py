"""Truncated distributions: a symmetric real-line distribution restricted to an interval.

``TruncatedNormal(loc, scale, low=..., high=...)`` is the common case (bounded effects,
positive measurements). Drawing uses the inverse cdf: ``u ~ Uniform(tiny, 1)`` mapped through
the base quantile function of the probability mass inside the bounds, as NumPyro does (so on
JAX the draws agree bit for bit). When the bounds sit far in the upper tail, the computation
is mirrored through ``loc`` (the bases are symmetric), so ``1 - cdf`` never loses precision.
"""

from __future__ import annotations

import math
from typing import Any

from minippl.backend import current
from minippl.distributions import constraints
from minippl.distributions.constraints import Constraint
from minippl.distributions.continuous import Cauchy, Laplace, Logistic, Normal
from minippl.distributions.distribution import Distribution, check_bounds
from minippl.distributions.util import Shape, broadcast_shapes, clamp_probs, shape_of

__all__ = [
    "LeftTruncatedDistribution",
    "RightTruncatedDistribution",
    "TruncatedCauchy",
    "TruncatedDistribution",
    "TruncatedNormal",
    "TwoSidedTruncatedDistribution",
]

_SUPPORTED = (Normal, Cauchy, Laplace, Logistic)
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _check_base(name: str, base: Distribution) -> None:
    if not isinstance(base, _SUPPORTED):
        supported = ", ".join(t.__name__ for t in _SUPPORTED)
        raise ValueError(f"{name}: cannot truncate {type(base).__name__}; supported: {supported}")


def _uniform_open_at_zero(key: Any, shape: Shape) -> Any:
    backend = current()
    tiny = backend.xp.finfo(backend.float_dtype()).tiny
    return backend.uniform(key, shape, minval=tiny)


def _log_phi_over(z: Any, log_mass: Any) -> Any:
    """``phi(z) / mass`` for the standard normal density ``phi``, computed in log space."""
    xp = current().xp
    return xp.exp(-0.5 * z**2 - _HALF_LOG_2PI - log_mass)


class _Truncated(Distribution):
    """What the three truncations share: the checks, the draw, the density and the moments.

    A subclass stores its bounds and gives the pieces that depend on them: ``icdf``, ``cdf``,
    ``_log_mass`` (the log of the base's probability inside the bounds) and, for a Normal
    base, ``_normal_moments``.
    """

    reparametrized_params: tuple[str, ...] = ()
    base_dist: Any

    def __init__(
        self,
        base_dist: Distribution,
        bounds: dict[str, Any],
        support: Constraint,
        *,
        validate_args: bool | None,
    ) -> None:
        name = type(self).__name__
        _check_base(name, base_dist)
        *first, last = bounds
        batch = broadcast_shapes(
            base_dist.batch_shape,
            *(shape_of(bound) for bound in bounds.values()),
            what=", ".join([f"{name}: base", *first]) + f" and {last}",
        )
        self.base_dist = base_dist
        self.support = support
        super().__init__(batch, validate_args=validate_args)

    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        return self.icdf(_uniform_open_at_zero(key, tuple(sample_shape) + self.batch_shape))

    def _log_mass(self) -> Any:
        raise NotImplementedError

    def _log_prob(self, value: Any) -> Any:
        return self.base_dist.log_prob(value) - self._log_mass()

    def _normal_moments(self) -> tuple[Any, Any]:
        """The mean and variance for a Normal base."""
        raise NotImplementedError

    @property
    def mean(self) -> Any:
        if isinstance(self.base_dist, Normal):
            return current().xp.broadcast_to(self._normal_moments()[0], self.batch_shape)
        return self._moments_unavailable()

    @property
    def variance(self) -> Any:
        if isinstance(self.base_dist, Normal):
            return current().xp.broadcast_to(self._normal_moments()[1], self.batch_shape)
        return self._moments_unavailable()

    def _moments_unavailable(self) -> Any:
        if isinstance(self.base_dist, Cauchy):
            return current().xp.full(self.batch_shape, current().xp.nan)
        raise NotImplementedError(
            f"{type(self).__name__}: mean and variance are known for Normal and Cauchy bases"
        )


class LeftTruncatedDistribution(_Truncated):
    """``base_dist`` conditioned on being at least ``low``."""

    arg_constraints: dict[str, Constraint] = {"low": constraints.real}
    reparametrized_params = ("low",)

    def __init__(
        self, base_dist: Distribution, low: Any = 0.0, *, validate_args: bool | None = None
    ) -> None:
        self.low = low
        super().__init__(
            base_dist, {"low": low}, constraints.greater_than_eq(low), validate_args=validate_args
        )

    def _sign(self) -> Any:
        # +1 when low is left of the centre; otherwise mirror through loc.
        xp = current().xp
        return xp.where(self.base_dist.loc >= self.low, 1.0, -1.0)

    def _tail_low(self) -> Any:
        loc = self.base_dist.loc
        return self.base_dist.cdf(loc - self._sign() * (loc - self.low))

    def _tail_high(self) -> Any:
        return current().xp.where(self.low <= self.base_dist.loc, 1.0, 0.0)

    def icdf(self, q: Any) -> Any:
        xp = current().xp
        loc, sign = self.base_dist.loc, self._sign()
        inner = (1 - q) * self._tail_low() + q * self._tail_high()
        value = (1 - sign) * loc + sign * self.base_dist.icdf(inner)
        return xp.where(q < 0, xp.nan, value)

    def _log_mass(self) -> Any:
        xp = current().xp
        if isinstance(self.base_dist, Normal):
            base = self.base_dist
            return current().special.log_ndtr((base.loc - self.low) / base.scale)
        return xp.log(self._sign() * (self._tail_high() - self._tail_low()))

    def cdf(self, value: Any) -> Any:
        xp = current().xp
        base_low = self.base_dist.cdf(self.low)
        inside = (self.base_dist.cdf(value) - base_low) / (1 - base_low)
        return xp.where(value < self.low, 0.0, xp.clip(inside, 0.0, 1.0))

    def _normal_moments(self) -> tuple[Any, Any]:
        mu, sigma = self.base_dist.loc, self.base_dist.scale
        a = (self.low - mu) / sigma
        ratio = _log_phi_over(a, self._log_mass())
        return mu + sigma * ratio, sigma**2 * (1 + a * ratio - ratio**2)


# Right mirrors Left's head (``duplicates`` pairs them): each names its own bound, with its
# constraint and support; the checks they share are ``_Truncated.__init__``.
class RightTruncatedDistribution(_Truncated):
    """``base_dist`` conditioned on being at most ``high``."""

    arg_constraints: dict[str, Constraint] = {"high": constraints.real}
    reparametrized_params = ("high",)

    def __init__(
        self, base_dist: Distribution, high: Any = 0.0, *, validate_args: bool | None = None
    ) -> None:
        self.high = high
        super().__init__(
            base_dist, {"high": high}, constraints.less_than_eq(high), validate_args=validate_args
        )

    def _cdf_high(self) -> Any:
        return self.base_dist.cdf(self.high)

    def icdf(self, q: Any) -> Any:
        xp = current().xp
        return xp.where(q > 1, xp.nan, self.base_dist.icdf(q * self._cdf_high()))

    def _log_mass(self) -> Any:
        if isinstance(self.base_dist, Normal):
            return self.base_dist.log_cdf(self.high)
        return current().xp.log(self._cdf_high())

    def cdf(self, value: Any) -> Any:
        xp = current().xp
        inside = self.base_dist.cdf(value) / self._cdf_high()
        return xp.where(value > self.high, 1.0, xp.clip(inside, 0.0, 1.0))

    def _normal_moments(self) -> tuple[Any, Any]:
        mu, sigma = self.base_dist.loc, self.base_dist.scale
        b = (self.high - mu) / sigma
        ratio = _log_phi_over(b, self._log_mass())
        return mu - sigma * ratio, sigma**2 * (1 - b * ratio - ratio**2)


class TwoSidedTruncatedDistribution(_Truncated):
    """``base_dist`` conditioned on lying in ``[low, high]``."""

    arg_constraints: dict[str, Constraint] = {
        "low": constraints.dependent,
        "high": constraints.dependent,
    }
    reparametrized_params = ("low", "high")

    # NumPyro's signature, one parameter a line (``duplicates`` pairs it with StudentT's by
    # shape alone).
    def __init__(
        self,
        base_dist: Distribution,
        low: Any = 0.0,
        high: Any = 1.0,
        *,
        validate_args: bool | None = None,
    ) -> None:
        self.low, self.high = low, high
        super().__init__(
            base_dist,
            {"low": low, "high": high},
            constraints.interval(low, high),
            validate_args=validate_args,
        )

    def _validate_params(self) -> None:
        check_bounds(self, self.low, self.high)

    def _sign(self) -> Any:
        return current().xp.where(self.base_dist.loc >= self.low, 1.0, -1.0)

    def _tails(self) -> tuple[Any, Any]:
        loc, sign = self.base_dist.loc, self._sign()
        low = self.base_dist.cdf(loc - sign * (loc - self.low))
        high = self.base_dist.cdf(loc - sign * (loc - self.high))
        return low, high

    def icdf(self, q: Any) -> Any:
        xp = current().xp
        loc, sign = self.base_dist.loc, self._sign()
        tail_low, tail_high = self._tails()
        inner = clamp_probs((1 - q) * tail_low + q * tail_high)
        value = (1 - sign) * loc + sign * self.base_dist.icdf(inner)
        return xp.where((q < 0) | (q > 1), xp.nan, value)

    def _log_mass(self) -> Any:
        xp = current().xp
        if isinstance(self.base_dist, Normal):
            # log(Phi(b) - Phi(a)) from the log-cdfs, accurate deep in either tail.
            mu, sigma = self.base_dist.loc, self.base_dist.scale
            sign = self._sign()
            log_hi = current().special.log_ndtr(sign * (self.high - mu) / sigma)
            log_lo = current().special.log_ndtr(sign * (self.low - mu) / sigma)
            top = xp.maximum(log_hi, log_lo)
            bottom = xp.minimum(log_hi, log_lo)
            return top + xp.log(-xp.expm1(bottom - top))
        tail_low, tail_high = self._tails()
        return xp.log(self._sign() * (tail_high - tail_low))

    def cdf(self, value: Any) -> Any:
        xp = current().xp
        base_low = self.base_dist.cdf(self.low)
        inside = (self.base_dist.cdf(value) - base_low) / (self.base_dist.cdf(self.high) - base_low)
        clipped = xp.clip(inside, 0.0, 1.0)
        return xp.where(value < self.low, 0.0, xp.where(value > self.high, 1.0, clipped))

    def _normal_moments(self) -> tuple[Any, Any]:
        mu, sigma = self.base_dist.loc, self.base_dist.scale
        a, b = (self.low - mu) / sigma, (self.high - mu) / sigma
        log_mass = self._log_mass()
        ra, rb = _log_phi_over(a, log_mass), _log_phi_over(b, log_mass)
        mean = mu + sigma * (ra - rb)
        variance = sigma**2 * (1 + a * ra - b * rb - (ra - rb) ** 2)
        return mean, variance


def TruncatedDistribution(
    base_dist: Distribution,
    low: Any = None,
    high: Any = None,
    *,
    validate_args: bool | None = None,
) -> Distribution:
    """``base_dist`` truncated below at ``low`` and/or above at ``high`` (``None``: no bound)."""
    if low is None and high is None:
        return base_dist
    if high is None:
        return LeftTruncatedDistribution(base_dist, low, validate_args=validate_args)
    if low is None:
        return RightTruncatedDistribution(base_dist, high, validate_args=validate_args)
    return TwoSidedTruncatedDistribution(base_dist, low, high, validate_args=validate_args)


def _truncated_family(
    family: type[Normal | Cauchy],
    loc: Any,
    scale: Any,
    low: Any,
    high: Any,
    validate_args: bool | None,
) -> Distribution:
    """``family(loc, scale)`` truncated, a bad parameter reported as ``Truncated<family>``."""
    try:
        base = family(loc, scale, validate_args=validate_args)
    except ValueError as err:
        raise ValueError(f"Truncated{family.__name__}: {err}") from None
    return TruncatedDistribution(base, low, high, validate_args=validate_args)


# TruncatedNormal and TruncatedCauchy keep NumPyro's two signatures written out (``duplicates``
# pairs them), so that each reads, and shows in ``help``, as the constructor users call.
def TruncatedNormal(
    loc: Any = 0.0,
    scale: Any = 1.0,
    *,
    low: Any = None,
    high: Any = None,
    validate_args: bool | None = None,
) -> Distribution:
    """A Normal(loc, scale) restricted to ``[low, high]`` (either bound may be ``None``)."""
    return _truncated_family(Normal, loc, scale, low, high, validate_args)


def TruncatedCauchy(
    loc: Any = 0.0,
    scale: Any = 1.0,
    *,
    low: Any = None,
    high: Any = None,
    validate_args: bool | None = None,
) -> Distribution:
    """A Cauchy(loc, scale) restricted to ``[low, high]`` (either bound may be ``None``)."""
    return _truncated_family(Cauchy, loc, scale, low, high, validate_args)
