"""Continuous distributions, each written once against the backend protocol.

Each ``sample`` makes the same backend draw NumPyro makes, so on JAX the same key gives the
same value bit for bit.
"""

from __future__ import annotations

import math
from typing import Any

from minippl.backend import current
from minippl.distributions import constraints
from minippl.distributions.distribution import Distribution
from minippl.distributions.util import Shape, broadcast_shapes, promote_shapes, shape_of

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class Normal(Distribution):
    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    reparametrized_params = ("loc", "scale")

    def __init__(self, loc: Any = 0.0, scale: Any = 1.0, *, validate_args: bool | None = None):
        self.loc, self.scale = promote_shapes(loc, scale)
        batch = broadcast_shapes(shape_of(loc), shape_of(scale), what="Normal: loc and scale shapes")
        super().__init__(batch, validate_args=validate_args)

    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        eps = current().normal(key, tuple(sample_shape) + self.batch_shape)
        return self.loc + eps * self.scale

    def _log_prob(self, value: Any) -> Any:
        xp = current().xp
        z = (value - self.loc) / self.scale
        return -0.5 * z**2 - xp.log(self.scale) - _HALF_LOG_2PI

    @property
    def mean(self) -> Any:
        return current().xp.broadcast_to(self.loc, self.batch_shape)

    @property
    def variance(self) -> Any:
        return current().xp.broadcast_to(self.scale**2, self.batch_shape)


class HalfNormal(Distribution):
    arg_constraints = {"scale": constraints.positive}
    support = constraints.positive
    reparametrized_params = ("scale",)

    def __init__(self, scale: Any = 1.0, *, validate_args: bool | None = None):
        self.scale = scale
        self._normal = Normal(0.0, scale)
        super().__init__(shape_of(scale), validate_args=validate_args)

    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        return current().xp.abs(self._normal.sample(key, sample_shape))

    def _log_prob(self, value: Any) -> Any:
        return self._normal._log_prob(value) + math.log(2.0)

    @property
    def mean(self) -> Any:
        return math.sqrt(2 / math.pi) * self.scale

    @property
    def variance(self) -> Any:
        return (1 - 2 / math.pi) * self.scale**2


class Cauchy(Distribution):
    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    reparametrized_params = ("loc", "scale")

    def __init__(self, loc: Any = 0.0, scale: Any = 1.0, *, validate_args: bool | None = None):
        self.loc, self.scale = promote_shapes(loc, scale)
        batch = broadcast_shapes(shape_of(loc), shape_of(scale), what="Cauchy: loc and scale shapes")
        super().__init__(batch, validate_args=validate_args)

    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        eps = current().cauchy(key, tuple(sample_shape) + self.batch_shape)
        return self.loc + eps * self.scale

    def _log_prob(self, value: Any) -> Any:
        xp = current().xp
        return -math.log(math.pi) - xp.log(self.scale) - xp.log1p(((value - self.loc) / self.scale) ** 2)

    @property
    def mean(self) -> Any:
        return current().xp.full(self.batch_shape, current().xp.nan)

    @property
    def variance(self) -> Any:
        return current().xp.full(self.batch_shape, current().xp.inf)


class HalfCauchy(Distribution):
    arg_constraints = {"scale": constraints.positive}
    support = constraints.positive
    reparametrized_params = ("scale",)

    def __init__(self, scale: Any = 1.0, *, validate_args: bool | None = None):
        self.scale = scale
        self._cauchy = Cauchy(0.0, scale)
        super().__init__(shape_of(scale), validate_args=validate_args)

    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        return current().xp.abs(self._cauchy.sample(key, sample_shape))

    def _log_prob(self, value: Any) -> Any:
        return self._cauchy._log_prob(value) + math.log(2.0)

    @property
    def mean(self) -> Any:
        return current().xp.full(self.batch_shape, current().xp.inf)

    @property
    def variance(self) -> Any:
        return current().xp.full(self.batch_shape, current().xp.inf)


class Exponential(Distribution):
    arg_constraints = {"rate": constraints.positive}
    support = constraints.positive
    reparametrized_params = ("rate",)

    def __init__(self, rate: Any = 1.0, *, validate_args: bool | None = None):
        self.rate = rate
        super().__init__(shape_of(rate), validate_args=validate_args)

    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        return current().exponential(key, tuple(sample_shape) + self.batch_shape) / self.rate

    def _log_prob(self, value: Any) -> Any:
        return current().xp.log(self.rate) - self.rate * value

    @property
    def mean(self) -> Any:
        return 1.0 / self.rate

    @property
    def variance(self) -> Any:
        return 1.0 / self.rate**2


class Dirichlet(Distribution):
    arg_constraints = {"concentration": constraints.independent(constraints.positive, 1)}
    support = constraints.simplex
    reparametrized_params = ("concentration",)

    def __init__(self, concentration: Any, *, validate_args: bool | None = None):
        shape = shape_of(concentration)
        if len(shape) < 1:
            raise ValueError("Dirichlet: concentration must have at least one dim, got a scalar")
        self.concentration = concentration
        super().__init__(shape[:-1], shape[-1:], validate_args=validate_args)

    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        backend = current()
        xp = backend.xp
        draws = backend.dirichlet(key, self.concentration, tuple(sample_shape) + self.batch_shape)
        info = xp.finfo(draws.dtype)
        return xp.clip(draws, info.tiny, 1 - info.eps)

    def _log_prob(self, value: Any) -> Any:
        xp, sp = current().xp, current().special
        c = self.concentration
        norm = xp.sum(sp.gammaln(c), axis=-1) - sp.gammaln(xp.sum(c, axis=-1))
        return xp.sum(sp.xlogy(c - 1.0, value), axis=-1) - norm

    @property
    def mean(self) -> Any:
        c = self.concentration
        return c / current().xp.sum(c, axis=-1, keepdims=True)

    @property
    def variance(self) -> Any:
        xp = current().xp
        c = self.concentration
        total = xp.sum(c, axis=-1, keepdims=True)
        m = c / total
        return m * (1 - m) / (total + 1)


class Beta(Distribution):
    arg_constraints = {
        "concentration1": constraints.positive,
        "concentration0": constraints.positive,
    }
    support = constraints.unit_interval
    reparametrized_params = ("concentration1", "concentration0")

    def __init__(
        self, concentration1: Any, concentration0: Any, *, validate_args: bool | None = None
    ):
        xp = current().xp
        self.concentration1, self.concentration0 = promote_shapes(concentration1, concentration0)
        batch = broadcast_shapes(
            shape_of(concentration1), shape_of(concentration0), what="Beta: concentration shapes"
        )
        c1 = xp.broadcast_to(xp.asarray(concentration1), batch)
        c0 = xp.broadcast_to(xp.asarray(concentration0), batch)
        self._dirichlet = Dirichlet(xp.stack([c1, c0], axis=-1))
        super().__init__(batch, validate_args=validate_args)

    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        return self._dirichlet.sample(key, sample_shape)[..., 0]

    def _log_prob(self, value: Any) -> Any:
        sp = current().special
        a, b = self.concentration1, self.concentration0
        return sp.xlogy(a - 1.0, value) + sp.xlog1py(b - 1.0, -value) - sp.betaln(a, b)

    @property
    def mean(self) -> Any:
        return self.concentration1 / (self.concentration1 + self.concentration0)

    @property
    def variance(self) -> Any:
        total = self.concentration1 + self.concentration0
        return self.concentration1 * self.concentration0 / (total**2 * (total + 1))
