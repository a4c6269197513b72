"""Univariate continuous distributions, each written once against the backend protocol.

Each ``sample`` makes the same backend draw NumPyro makes (same sampler, same shape, same
arithmetic afterwards), so on JAX the same key gives the same value bit for bit. Internal
helper distributions are built with ``validate_args=False`` so that a bad parameter is
reported under the name the user wrote (``HalfNormal``, not the ``Normal`` inside it).
"""

from __future__ import annotations

import math
from typing import Any

from minippl._fast import fusable
from minippl.backend import current
from minippl.distributions import constraints
from minippl.distributions.constraints import Constraint
from minippl.distributions.distribution import Distribution, check_bounds
from minippl.distributions.multivariate import Dirichlet
from minippl.distributions.transformed import TransformedDistribution
from minippl.distributions.transforms import ExpTransform, PowerTransform
from minippl.distributions.util import (
    Shape,
    _reshape,
    broadcast_shapes,
    full_param,
    promote_shapes,
    shape_of,
    softplus,
    xlog1py_at_boundary,
    xlogy_at_boundary,
)

__all__ = [
    "Beta",
    "Cauchy",
    "Chi2",
    "Dirichlet",
    "Exponential",
    "Gamma",
    "Gumbel",
    "HalfCauchy",
    "HalfNormal",
    "InverseGamma",
    "Laplace",
    "LogNormal",
    "Logistic",
    "Normal",
    "StudentT",
    "Uniform",
    "Weibull",
]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
_EULER_GAMMA = 0.5772156649015329


def _full(x: Any, shape: Shape) -> Any:
    xp = current().xp
    return xp.broadcast_to(xp.asarray(x), shape)


def _two_params(name: str, a: str, x: Any, b: str, y: Any) -> tuple[Any, Any, Shape]:
    """Promote two parameters to the same rank; return them with their broadcast shape.

    Most sites pass two parameters of one shape (often two numbers); they return at once,
    since a distribution is built on every eager call of the model.
    """
    shape_x, shape_y = shape_of(x), shape_of(y)
    if shape_x == shape_y:
        return x, y, shape_x
    batch = broadcast_shapes(shape_x, shape_y, what=f"{name}: {a} and {b} shapes")
    # ``promote_shapes`` for two: the shapes are known, so only the lower rank is reshaped.
    ndim = len(batch)
    if len(shape_x) < ndim:
        x = _reshape(x, (1,) * (ndim - len(shape_x)) + shape_x)
    if len(shape_y) < ndim:
        y = _reshape(y, (1,) * (ndim - len(shape_y)) + shape_y)
    return x, y, batch


# -- the real line --------------------------------------------------------------------------------


class _LocationScale(Distribution):
    """``loc + scale * Z`` for a standard variable ``Z`` (a subclass draws it in ``_standard``).

    The five real-line families below share the parameters, their checks and the draw (one
    backend draw of ``Z``, the same NumPyro makes); their densities, cdfs and moments are
    their own (``duplicates`` pairs them by shape; the formulas differ).
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    reparametrized_params = ("loc", "scale")

    def __init__(
        self, loc: Any = 0.0, scale: Any = 1.0, *, validate_args: bool | None = None
    ) -> None:
        self.loc, self.scale, batch = _two_params(type(self).__name__, "loc", loc, "scale", scale)
        super().__init__(batch, validate_args=validate_args)

    def _standard(self, key: Any, shape: Shape) -> Any:
        """A draw of ``Z`` (``loc = 0``, ``scale = 1``) of ``shape``."""
        raise NotImplementedError

    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        z = self._standard(key, tuple(sample_shape) + self.batch_shape)
        return self.loc + z * self.scale


@fusable
def normal_log_density(value: Any, loc: Any, scale: Any) -> Any:
    """``log N(value | loc, scale)``: ``-z**2 / 2 - log(scale) - log(2 pi) / 2``."""
    xp = current().xp
    z = (value - loc) / scale
    return -0.5 * z**2 - xp.log(scale) - _HALF_LOG_2PI


@fusable
def cauchy_log_density(value: Any, loc: Any, scale: Any) -> Any:
    """``log Cauchy(value | loc, scale)``: ``-log(pi) - log(scale) - log(1 + z**2)``."""
    xp = current().xp
    z = (value - loc) / scale
    return -math.log(math.pi) - xp.log(scale) - xp.log1p(z**2)


class Normal(_LocationScale):
    """The Gaussian with mean ``loc`` and standard deviation ``scale``."""

    def entropy(self) -> Any:
        """``log(scale) + (1 + log 2 pi) / 2``."""
        xp = current().xp
        return _full(0.5 + _HALF_LOG_2PI + xp.log(self.scale), self.batch_shape)

    def _standard(self, key: Any, shape: Shape) -> Any:
        return current().normal(key, shape)

    def _log_prob(self, value: Any) -> Any:
        return normal_log_density(value, self.loc, self.scale)

    def cdf(self, value: Any) -> Any:
        return current().special.ndtr((value - self.loc) / self.scale)

    def log_cdf(self, value: Any) -> Any:
        return current().special.log_ndtr((value - self.loc) / self.scale)

    def icdf(self, q: Any) -> Any:
        return self.loc + self.scale * current().special.ndtri(q)

    @property
    def mean(self) -> Any:
        return _full(self.loc, self.batch_shape)

    @property
    def variance(self) -> Any:
        return _full(self.scale**2, self.batch_shape)


class Cauchy(_LocationScale):
    """The Cauchy (Lorentz) distribution centred at ``loc`` with half-width ``scale``."""

    def entropy(self) -> Any:
        """``log(4 pi scale)``."""
        return _full(current().xp.log(4 * math.pi * self.scale), self.batch_shape)

    def _standard(self, key: Any, shape: Shape) -> Any:
        return current().cauchy(key, shape)

    def _log_prob(self, value: Any) -> Any:
        return cauchy_log_density(value, self.loc, self.scale)

    def cdf(self, value: Any) -> Any:
        xp = current().xp
        return 0.5 + xp.arctan((value - self.loc) / self.scale) / math.pi

    def icdf(self, q: Any) -> Any:
        xp = current().xp
        return self.loc + self.scale * xp.tan(math.pi * (q - 0.5))

    @property
    def mean(self) -> Any:
        return current().xp.full(self.batch_shape, current().xp.nan)

    @property
    def variance(self) -> Any:
        return current().xp.full(self.batch_shape, current().xp.inf)


class StudentT(Distribution):
    """Student's t with ``df`` degrees of freedom, shifted by ``loc`` and scaled by ``scale``."""

    def entropy(self) -> Any:
        """``(df+1)/2 (digamma((df+1)/2) - digamma(df/2)) + log(sqrt(df) B(df/2, 1/2) scale)``."""
        xp, sp = current().xp, current().special
        df = self.df
        half = 0.5 * (df + 1.0)
        log_beta = sp.gammaln(0.5 * df) + sp.gammaln(0.5) - sp.gammaln(half)
        h = half * (sp.digamma(half) - sp.digamma(0.5 * df)) + 0.5 * xp.log(df) + log_beta
        return _full(h + xp.log(self.scale), self.batch_shape)

    arg_constraints = {
        "df": constraints.positive,
        "loc": constraints.real,
        "scale": constraints.positive,
    }
    support = constraints.real
    reparametrized_params = ("df", "loc", "scale")

    def __init__(
        self,
        df: Any,
        loc: Any = 0.0,
        scale: Any = 1.0,
        *,
        validate_args: bool | None = None,
    ) -> None:
        batch = broadcast_shapes(
            shape_of(df), shape_of(loc), shape_of(scale), what="StudentT: df, loc and scale shapes"
        )
        self.df, self.loc, self.scale = promote_shapes(df, loc, scale, shape=batch)
        # t = z * sqrt(df / v) with z ~ Normal(0, 1) and v ~ Chi2(df), drawn from two keys.
        self._chi2 = Chi2(_full(df, batch), validate_args=False)
        super().__init__(batch, validate_args=validate_args)

    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        backend = current()
        key_normal, key_chi2 = backend.split(key)
        z = backend.normal(key_normal, tuple(sample_shape) + self.batch_shape)
        v = self._chi2.sample(key_chi2, sample_shape)
        return self.loc + self.scale * (z * backend.xp.sqrt(self.df / v))

    def _log_prob(self, value: Any) -> Any:
        xp, sp = current().xp, current().special
        df = self.df
        z = (value - self.loc) / self.scale
        norm = (
            xp.log(self.scale)
            + 0.5 * xp.log(df)
            + 0.5 * math.log(math.pi)
            + sp.gammaln(0.5 * df)
            - sp.gammaln(0.5 * (df + 1.0))
        )
        return -0.5 * (df + 1.0) * xp.log1p(z**2 / df) - norm

    @property
    def mean(self) -> Any:
        xp = current().xp
        return _full(xp.where(self.df <= 1, xp.nan, self.loc), self.batch_shape)

    @property
    def variance(self) -> Any:
        xp = current().xp
        df = self.df
        var = xp.where(df > 2, self.scale**2 * df / xp.where(df > 2, df - 2.0, 1.0), xp.inf)
        return _full(xp.where(df <= 1, xp.nan, var), self.batch_shape)


class Laplace(_LocationScale):
    """The double-exponential distribution centred at ``loc`` with scale ``scale``."""

    def entropy(self) -> Any:
        """``1 + log(2 scale)``."""
        return _full(1.0 + current().xp.log(2 * self.scale), self.batch_shape)

    def _standard(self, key: Any, shape: Shape) -> Any:
        return current().laplace(key, shape)

    def _log_prob(self, value: Any) -> Any:
        xp = current().xp
        return -xp.abs((value - self.loc) / self.scale) - xp.log(2 * self.scale)

    def cdf(self, value: Any) -> Any:
        xp = current().xp
        z = (value - self.loc) / self.scale
        return 0.5 - 0.5 * xp.sign(z) * xp.expm1(-xp.abs(z))

    def icdf(self, q: Any) -> Any:
        xp = current().xp
        centred = q - 0.5
        return self.loc - self.scale * xp.sign(centred) * xp.log1p(-2 * xp.abs(centred))

    @property
    def mean(self) -> Any:
        return _full(self.loc, self.batch_shape)

    @property
    def variance(self) -> Any:
        return _full(2 * self.scale**2, self.batch_shape)


class Logistic(_LocationScale):
    """The logistic distribution (sigmoid cdf) centred at ``loc`` with scale ``scale``."""

    def entropy(self) -> Any:
        """``log(scale) + 2``."""
        return _full(current().xp.log(self.scale) + 2.0, self.batch_shape)

    def _standard(self, key: Any, shape: Shape) -> Any:
        return current().logistic(key, shape)

    def _log_prob(self, value: Any) -> Any:
        xp = current().xp
        minus_z = (self.loc - value) / self.scale
        return minus_z - xp.log(self.scale) - 2 * softplus(minus_z)

    def cdf(self, value: Any) -> Any:
        return current().special.expit((value - self.loc) / self.scale)

    def icdf(self, q: Any) -> Any:
        return self.loc + self.scale * current().special.logit(q)

    @property
    def mean(self) -> Any:
        return _full(self.loc, self.batch_shape)

    @property
    def variance(self) -> Any:
        return _full(self.scale**2 * math.pi**2 / 3, self.batch_shape)


class Gumbel(_LocationScale):
    """The Gumbel (type-I extreme value) distribution with mode ``loc`` and scale ``scale``."""

    def _standard(self, key: Any, shape: Shape) -> Any:
        return current().gumbel(key, shape)

    def _log_prob(self, value: Any) -> Any:
        xp = current().xp
        z = (value - self.loc) / self.scale
        return -(z + xp.exp(-z)) - xp.log(self.scale)

    def cdf(self, value: Any) -> Any:
        xp = current().xp
        return xp.exp(-xp.exp((self.loc - value) / self.scale))

    def icdf(self, q: Any) -> Any:
        xp = current().xp
        return self.loc - self.scale * xp.log(-xp.log(q))

    @property
    def mean(self) -> Any:
        return _full(self.loc + self.scale * _EULER_GAMMA, self.batch_shape)

    @property
    def variance(self) -> Any:
        return _full(math.pi**2 / 6 * self.scale**2, self.batch_shape)


class Uniform(Distribution):
    """The flat distribution on ``[low, high)``."""

    def entropy(self) -> Any:
        """``log(high - low)``."""
        return _full(current().xp.log(self.high - self.low), self.batch_shape)

    arg_constraints = {"low": constraints.dependent, "high": constraints.dependent}
    reparametrized_params = ("low", "high")

    def __init__(
        self, low: Any = 0.0, high: Any = 1.0, *, validate_args: bool | None = None
    ) -> None:
        self.low, self.high, batch = _two_params("Uniform", "low", low, "high", high)
        self.support = constraints.interval(low, high)
        super().__init__(batch, validate_args=validate_args)

    def _validate_params(self) -> None:
        check_bounds(self, self.low, self.high)

    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        shape = tuple(sample_shape) + self.batch_shape
        return current().uniform(key, shape, minval=self.low, maxval=self.high)

    def _log_prob(self, value: Any) -> Any:
        xp = current().xp
        shape = broadcast_shapes(shape_of(value), self.batch_shape)
        return -xp.broadcast_to(xp.log(self.high - self.low), shape)

    def cdf(self, value: Any) -> Any:
        xp = current().xp
        return xp.clip((value - self.low) / (self.high - self.low), 0.0, 1.0)

    def icdf(self, q: Any) -> Any:
        return self.low + q * (self.high - self.low)

    @property
    def mean(self) -> Any:
        return _full(self.low + (self.high - self.low) / 2, self.batch_shape)

    @property
    def variance(self) -> Any:
        return _full((self.high - self.low) ** 2 / 12, self.batch_shape)


# -- the positive half-line ------------------------------------------------------------------------


class _HalfOfSymmetric(Distribution):
    """``|X|`` for ``X`` symmetric about zero with scale ``scale`` (a subclass says which ``X``).

    Folding doubles the density on the positive half-line, so the log density gains
    ``log 2``, the cdf is ``2 F(x) - 1`` and the quantile of ``q`` is ``X``'s quantile of
    ``(q + 1) / 2``; a draw is the absolute value of ``X``'s draw (the same key, the same
    numbers as NumPyro).
    """

    arg_constraints = {"scale": constraints.positive}
    support = constraints.positive
    reparametrized_params = ("scale",)

    def __init__(self, scale: Any, symmetric: Distribution, *, validate_args: bool | None) -> None:
        self.scale = scale
        self._symmetric = symmetric
        super().__init__(shape_of(scale), validate_args=validate_args)

    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        return current().xp.abs(self._symmetric.sample(key, sample_shape))

    def _log_prob(self, value: Any) -> Any:
        return self._symmetric._log_prob(value) + math.log(2.0)

    def cdf(self, value: Any) -> Any:
        return 2 * self._symmetric.cdf(value) - 1

    def icdf(self, q: Any) -> Any:
        return self._symmetric.icdf((q + 1) / 2)


class HalfNormal(_HalfOfSymmetric):
    """``|X|`` for ``X ~ Normal(0, scale)``."""

    def __init__(self, scale: Any = 1.0, *, validate_args: bool | None = None) -> None:
        super().__init__(
            scale, Normal(0.0, scale, validate_args=False), validate_args=validate_args
        )

    @property
    def mean(self) -> Any:
        return _full(math.sqrt(2 / math.pi) * self.scale, self.batch_shape)

    @property
    def variance(self) -> Any:
        return _full((1 - 2 / math.pi) * self.scale**2, self.batch_shape)


class HalfCauchy(_HalfOfSymmetric):
    """``|X|`` for ``X ~ Cauchy(0, scale)``: the usual weakly-informative scale prior."""

    def __init__(self, scale: Any = 1.0, *, validate_args: bool | None = None) -> None:
        super().__init__(
            scale, Cauchy(0.0, scale, validate_args=False), validate_args=validate_args
        )

    # Neither moment is finite. ``duplicates`` pairs these two with Categorical's (NaN there):
    # alike in shape, each family's own values.
    @property
    def mean(self) -> Any:
        return current().xp.full(self.batch_shape, current().xp.inf)

    @property
    def variance(self) -> Any:
        return current().xp.full(self.batch_shape, current().xp.inf)


class Exponential(Distribution):
    """Waiting times of a Poisson process with ``rate`` events per unit time."""

    def entropy(self) -> Any:
        """``1 - log(rate)``."""
        return _full(1.0 - current().xp.log(self.rate), self.batch_shape)

    arg_constraints = {"rate": constraints.positive}
    support = constraints.positive
    reparametrized_params = ("rate",)

    def __init__(self, rate: Any = 1.0, *, validate_args: bool | None = None) -> None:
        self.rate = rate
        super().__init__(shape_of(rate), validate_args=validate_args)

    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        return current().exponential(key, tuple(sample_shape) + self.batch_shape) / self.rate

    def _log_prob(self, value: Any) -> Any:
        return current().xp.log(self.rate) - self.rate * value

    def cdf(self, value: Any) -> Any:
        return -current().xp.expm1(-self.rate * value)

    def icdf(self, q: Any) -> Any:
        return -current().xp.log1p(-q) / self.rate

    @property
    def mean(self) -> Any:
        return _full(1.0 / self.rate, self.batch_shape)

    @property
    def variance(self) -> Any:
        return _full(1.0 / self.rate**2, self.batch_shape)


class Gamma(Distribution):
    """The Gamma distribution with shape ``concentration`` and inverse scale ``rate``."""

    def entropy(self) -> Any:
        """``a - log(rate) + lgamma(a) + (1 - a) digamma(a)`` for ``a = concentration``."""
        xp, sp = current().xp, current().special
        a = self.concentration
        h = a - xp.log(self.rate) + sp.gammaln(a) + (1.0 - a) * sp.digamma(a)
        return _full(h, self.batch_shape)

    arg_constraints: dict[str, Constraint] = {
        "concentration": constraints.positive,
        "rate": constraints.positive,
    }
    support = constraints.positive
    reparametrized_params: tuple[str, ...] = ("concentration", "rate")

    def __init__(
        self, concentration: Any, rate: Any = 1.0, *, validate_args: bool | None = None
    ) -> None:
        self.concentration, self.rate, batch = _two_params(
            type(self).__name__, "concentration", concentration, "rate", rate
        )
        super().__init__(batch, validate_args=validate_args)

    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        shape = tuple(sample_shape) + self.batch_shape
        return current().gamma(key, full_param(self.concentration, shape), shape) / self.rate

    def _log_prob(self, value: Any) -> Any:
        xp, sp = current().xp, current().special
        a = self.concentration
        norm = sp.gammaln(a) - a * xp.log(self.rate)
        return (a - 1) * xp.log(value) - self.rate * value - norm

    def cdf(self, value: Any) -> Any:
        return current().special.gammainc(self.concentration, self.rate * value)

    @property
    def mean(self) -> Any:
        return _full(self.concentration / self.rate, self.batch_shape)

    @property
    def variance(self) -> Any:
        return _full(self.concentration / self.rate**2, self.batch_shape)


class Chi2(Gamma):
    """The chi-squared distribution with ``df`` degrees of freedom: ``Gamma(df / 2, 1 / 2)``."""

    arg_constraints: dict[str, Constraint] = {"df": constraints.positive}
    reparametrized_params = ("df",)

    def __init__(self, df: Any, *, validate_args: bool | None = None) -> None:
        self.df = df
        super().__init__(0.5 * df, 0.5, validate_args=validate_args)


class InverseGamma(TransformedDistribution):
    """``1 / X`` for ``X ~ Gamma(concentration, rate)`` (``rate`` is the scale of ``1/X``)."""

    def entropy(self) -> Any:
        """``a + log(rate) + lgamma(a) - (1 + a) digamma(a)`` for ``a = concentration``."""
        xp, sp = current().xp, current().special
        a = self.concentration
        h = a + xp.log(self.rate) + sp.gammaln(a) - (1.0 + a) * sp.digamma(a)
        return _full(h, self.batch_shape)

    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.positive
    reparametrized_params = ("concentration", "rate")

    def __init__(
        self, concentration: Any, rate: Any = 1.0, *, validate_args: bool | None = None
    ) -> None:
        _two_params("InverseGamma", "concentration", concentration, "rate", rate)
        base = Gamma(concentration, rate, validate_args=False)
        self.concentration, self.rate = base.concentration, base.rate
        super().__init__(base, PowerTransform(-1.0), validate_args=validate_args)

    @property
    def mean(self) -> Any:
        xp = current().xp
        a = self.concentration
        m = self.rate / xp.where(a > 1, a - 1, 1.0)
        return _full(xp.where(a > 1, m, xp.inf), self.batch_shape)

    @property
    def variance(self) -> Any:
        xp = current().xp
        a = self.concentration
        safe = xp.where(a > 2, a, 3.0)
        v = self.rate**2 / ((safe - 1) ** 2 * (safe - 2))
        return _full(xp.where(a > 2, v, xp.inf), self.batch_shape)


class LogNormal(TransformedDistribution):
    """``exp(X)`` for ``X ~ Normal(loc, scale)``."""

    def entropy(self) -> Any:
        """The Normal's entropy plus ``loc`` (the mean log-Jacobian of ``exp``)."""
        xp = current().xp
        return _full(0.5 + _HALF_LOG_2PI + xp.log(self.scale) + self.loc, self.batch_shape)

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.positive
    reparametrized_params = ("loc", "scale")

    def __init__(
        self, loc: Any = 0.0, scale: Any = 1.0, *, validate_args: bool | None = None
    ) -> None:
        _two_params("LogNormal", "loc", loc, "scale", scale)
        base = Normal(loc, scale, validate_args=False)
        self.loc, self.scale = base.loc, base.scale
        super().__init__(base, ExpTransform(), validate_args=validate_args)

    @property
    def mean(self) -> Any:
        xp = current().xp
        return _full(xp.exp(self.loc + self.scale**2 / 2), self.batch_shape)

    @property
    def variance(self) -> Any:
        xp = current().xp
        s2 = self.scale**2
        return _full(xp.expm1(s2) * xp.exp(2 * self.loc + s2), self.batch_shape)


class Weibull(Distribution):
    """The Weibull distribution with ``scale`` and shape ``concentration``."""

    def entropy(self) -> Any:
        """``euler_gamma (1 - 1/k) + log(scale / k) + 1`` for ``k = concentration``."""
        xp = current().xp
        k = self.concentration
        h = _EULER_GAMMA * (1.0 - 1.0 / k) + xp.log(self.scale / k) + 1.0
        return _full(h, self.batch_shape)

    arg_constraints = {"scale": constraints.positive, "concentration": constraints.positive}
    support = constraints.positive
    reparametrized_params = ("scale", "concentration")

    def __init__(
        self, scale: Any, concentration: Any, *, validate_args: bool | None = None
    ) -> None:
        self.concentration, self.scale, batch = _two_params(
            "Weibull", "concentration", concentration, "scale", scale
        )
        super().__init__(batch, validate_args=validate_args)

    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        shape = tuple(sample_shape) + self.batch_shape
        return current().weibull_min(key, self.scale, self.concentration, shape)

    def _log_prob(self, value: Any) -> Any:
        xp = current().xp
        k = self.concentration
        return (
            -xp.power(value / self.scale, k)
            + xp.log(k)
            + (k - 1.0) * xp.log(value)
            - k * xp.log(self.scale)
        )

    def cdf(self, value: Any) -> Any:
        xp = current().xp
        return -xp.expm1(-xp.power(value / self.scale, self.concentration))

    @property
    def mean(self) -> Any:
        xp, sp = current().xp, current().special
        return _full(
            self.scale * xp.exp(sp.gammaln(1.0 + 1.0 / self.concentration)), self.batch_shape
        )

    @property
    def variance(self) -> Any:
        xp, sp = current().xp, current().special
        k = self.concentration
        g1 = xp.exp(sp.gammaln(1.0 + 1.0 / k))
        g2 = xp.exp(sp.gammaln(1.0 + 2.0 / k))
        return _full(self.scale**2 * (g2 - g1**2), self.batch_shape)


# -- the unit interval -----------------------------------------------------------------------------


class Beta(Distribution):
    """The Beta distribution on [0, 1] with ``concentration1`` (alpha), ``concentration0``
    (beta)."""

    def entropy(self) -> Any:
        """``log B(a, b) - (a-1) digamma(a) - (b-1) digamma(b) + (a+b-2) digamma(a+b)``."""
        sp = current().special
        a, b = self.concentration1, self.concentration0
        log_beta = sp.gammaln(a) + sp.gammaln(b) - sp.gammaln(a + b)
        h = log_beta - (a - 1) * sp.digamma(a) - (b - 1) * sp.digamma(b)
        return _full(h + (a + b - 2) * sp.digamma(a + b), self.batch_shape)

    arg_constraints = {
        "concentration1": constraints.positive,
        "concentration0": constraints.positive,
    }
    support = constraints.unit_interval
    reparametrized_params = ("concentration1", "concentration0")

    def __init__(
        self, concentration1: Any, concentration0: Any, *, validate_args: bool | None = None
    ) -> None:
        xp = current().xp
        self.concentration1, self.concentration0, batch = _two_params(
            "Beta", "concentration1", concentration1, "concentration0", concentration0
        )
        # A Beta draw is the first coordinate of a two-category Dirichlet draw.
        c1 = xp.broadcast_to(xp.asarray(concentration1), batch)
        c0 = xp.broadcast_to(xp.asarray(concentration0), batch)
        self._dirichlet = Dirichlet(xp.stack([c1, c0], axis=-1), validate_args=False)
        super().__init__(batch, validate_args=validate_args)

    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        return self._dirichlet.sample(key, sample_shape)[..., 0]

    def _log_prob(self, value: Any) -> Any:
        sp = current().special
        a, b = self.concentration1, self.concentration0
        # At the value 0 or 1 with a concentration 1 JAX's xlogy has a NaN derivative.
        log_kernel = xlogy_at_boundary(a - 1.0, value) + xlog1py_at_boundary(b - 1.0, -value)
        return log_kernel - sp.betaln(a, b)

    def cdf(self, value: Any) -> Any:
        return current().special.betainc(self.concentration1, self.concentration0, value)

    @property
    def mean(self) -> Any:
        total = self.concentration1 + self.concentration0
        return _full(self.concentration1 / total, self.batch_shape)

    @property
    def variance(self) -> Any:
        total = self.concentration1 + self.concentration0
        v = self.concentration1 * self.concentration0 / (total**2 * (total + 1))
        return _full(v, self.batch_shape)
