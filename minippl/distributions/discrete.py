"""Discrete distributions, each with the probs and logits forms NumPyro offers.

A distribution given ``probs`` offers ``logits`` as a lazily computed attribute (and the
other way round); only the form that was given is validated and used for ``log_prob``, so
``probs=1.0`` is a valid Bernoulli (its logits would be infinite). NumPyro spells the two
forms as separate classes (``BernoulliProbs``, ``BernoulliLogits``) behind a factory
function; here ``Bernoulli(probs=...)`` is the class itself and the ``...Probs``/``...Logits``
names are thin subclasses, so ``isinstance(d, Bernoulli)`` holds for all of them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minippl._fast import fusable
from minippl.backend import current
from minippl.distributions import constraints
from minippl.distributions.constraints import Constraint
from minippl.distributions.distribution import Distribution, check_bounds, check_param
from minippl.distributions.util import (
    Shape,
    broadcast_shapes,
    float_type_of,
    full_param,
    lazy_property,
    log_binomial_coefficient,
    probs_to_logits,
    probs_to_logits_multinomial,
    promote_shapes,
    shape_of,
    softplus,
    xlog1py_at_boundary,
    xlogy_at_boundary,
)

__all__ = [
    "Bernoulli",
    "BernoulliLogits",
    "BernoulliProbs",
    "BetaBinomial",
    "Binomial",
    "BinomialLogits",
    "BinomialProbs",
    "Categorical",
    "CategoricalLogits",
    "CategoricalProbs",
    "DiscreteUniform",
    "GammaPoisson",
    "Geometric",
    "GeometricLogits",
    "GeometricProbs",
    "NegativeBinomial",
    "NegativeBinomial2",
    "NegativeBinomialLogits",
    "NegativeBinomialProbs",
    "Poisson",
]


def _exactly_one(name: str, probs: Any, logits: Any) -> None:
    if (probs is None) == (logits is None):
        raise ValueError(f"{name}: give exactly one of probs= or logits=")


def _as_float(value: Any) -> Any:
    xp = current().xp
    value = xp.asarray(value)
    return value.astype(float_type_of(value))


def _enumerate(n_values: int, batch_shape: Shape, expand: bool) -> Any:
    xp = current().xp
    values = xp.reshape(xp.arange(n_values), (-1,) + (1,) * len(batch_shape))
    if expand:
        values = xp.broadcast_to(values, values.shape[:1] + batch_shape)
    return values


def _homogeneous_count(name: str, total_count: Any) -> int:
    backend = current()
    if not backend.is_concrete(total_count):
        raise NotImplementedError(f"{name}.enumerate_support needs a concrete total_count")
    counts = np.asarray(backend.to_numpy(total_count))
    if counts.size and counts.min() != counts.max():
        raise NotImplementedError(
            f"{name}.enumerate_support needs the same total_count everywhere, got {counts}"
        )
    return int(counts.max()) if counts.size else 0


class _ProbsOrLogits(Distribution):
    """A discrete distribution given by exactly one of ``probs`` and ``logits``.

    The form given is stored under its own name (so it alone is validated, and ``_from_logits``
    says which it was); the other is a lazy property, computed on first use. Here they are a
    success probability and its log-odds, with one parameter setting the batch shape
    (Bernoulli, Geometric). A subclass with more parameters (Binomial, NegativeBinomial,
    Categorical) writes its own ``__init__`` around :meth:`_given` and :meth:`_keep` and calls
    ``Distribution.__init__`` with its shapes; over categories the pair is the softmax forms
    of :class:`_OverCategories`.
    """

    arg_constraints: dict[str, Constraint] = {
        "probs": constraints.unit_interval,
        "logits": constraints.real,
    }
    is_discrete = True

    def __init__(
        self, probs: Any = None, logits: Any = None, *, validate_args: bool | None = None
    ) -> None:
        param = self._given(probs, logits)
        self._keep(param)
        super().__init__(shape_of(param), validate_args=validate_args)

    def _given(self, probs: Any, logits: Any) -> Any:
        """Check that exactly one form is given, note which, and return it."""
        _exactly_one(type(self).__name__, probs, logits)
        self._from_logits = probs is None
        return logits if probs is None else probs

    @property
    def _given_name(self) -> str:
        return "logits" if self._from_logits else "probs"

    def _keep(self, param: Any) -> None:
        """Store the given form (after any shape promotion) under its own name."""
        if self._from_logits:
            self.logits = param
        else:
            self.probs = param

    @lazy_property
    def probs(self) -> Any:
        return current().special.expit(self.logits)

    @lazy_property
    def logits(self) -> Any:
        return probs_to_logits(self.probs)


@fusable
def bernoulli_log_prob(value: Any, probs: Any) -> Any:
    """``value log(probs) + (1 - value) log(1 - probs)``, a term 0 where its factor is 0."""
    # The boundary forms keep the gradient finite at probs 0 or 1 (a float32 sigmoid
    # reaches 1), where JAX's xlogy rule takes 0/0.
    return xlogy_at_boundary(value, probs) + xlog1py_at_boundary(1 - value, -probs)


class Bernoulli(_ProbsOrLogits):
    """A coin that comes up 1 with probability ``probs`` (or ``sigmoid(logits)``)."""

    support = constraints.boolean
    has_enumerate_support = True

    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        xp = current().xp
        draws = current().bernoulli(key, self.probs, tuple(sample_shape) + self.batch_shape)
        return draws.astype(xp.result_type(draws, int))

    def _log_prob(self, value: Any) -> Any:
        if self._from_logits:
            return value * self.logits - softplus(self.logits)
        # A float value: JAX's derivative rule for xlogy multiplies the value's tangent,
        # and an integer value (what ``sample`` returns) has none (float0).
        return bernoulli_log_prob(_as_float(value), self.probs)

    def enumerate_support(self, expand: bool = True) -> Any:
        return _enumerate(2, self.batch_shape, expand)

    def entropy(self) -> Any:
        """``-p log p - (1 - p) log(1 - p)``; from logits ``l``, ``softplus(l) - p l``."""
        xp, sp = current().xp, current().special
        if self._from_logits:
            return softplus(self.logits) - sp.expit(self.logits) * self.logits
        p = xp.asarray(self.probs)
        return -sp.xlogy(p, p) - sp.xlog1py(1 - p, -p)

    @property
    def mean(self) -> Any:
        return current().xp.broadcast_to(self.probs, self.batch_shape)

    @property
    def variance(self) -> Any:
        return current().xp.broadcast_to(self.probs * (1 - self.probs), self.batch_shape)


# The named forms (``BernoulliProbs``, ``GeometricLogits``, ...) repeat one shape, which
# ``duplicates`` pairs: each is NumPyro's public class with its own signature, docstring and
# ``arg_constraints``, as ``help`` and type checkers see them; what they share is above.
class BernoulliProbs(Bernoulli):
    """:class:`Bernoulli` given by ``probs``."""

    arg_constraints = {"probs": constraints.unit_interval}

    def __init__(self, probs: Any, *, validate_args: bool | None = None) -> None:
        super().__init__(probs=probs, validate_args=validate_args)


class BernoulliLogits(Bernoulli):
    """:class:`Bernoulli` given by ``logits``."""

    arg_constraints = {"logits": constraints.real}

    def __init__(self, logits: Any, *, validate_args: bool | None = None) -> None:
        super().__init__(logits=logits, validate_args=validate_args)


class Binomial(_ProbsOrLogits):
    """The number of successes in ``total_count`` independent ``probs`` (or ``logits``) trials."""

    arg_constraints: dict[str, Constraint] = {
        "total_count": constraints.nonnegative_integer,
        "probs": constraints.unit_interval,
        "logits": constraints.real,
    }
    has_enumerate_support = True

    def __init__(
        self,
        total_count: Any = 1,
        probs: Any = None,
        logits: Any = None,
        *,
        validate_args: bool | None = None,
    ) -> None:
        param = self._given(probs, logits)
        batch = broadcast_shapes(
            shape_of(total_count),
            shape_of(param),
            what=f"{type(self).__name__}: total_count and {self._given_name} shapes",
        )
        total_count, param = promote_shapes(total_count, param)
        self.total_count = total_count
        self._keep(param)
        self.support = constraints.integer_interval(0, total_count)
        Distribution.__init__(self, batch, validate_args=validate_args)

    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        backend = current()
        xp = backend.xp
        shape = tuple(sample_shape) + self.batch_shape
        n, p = full_param(self.total_count, shape), full_param(self.probs, shape)
        return backend.binomial(key, n, p, shape).astype(xp.result_type(int))

    def _log_prob(self, value: Any) -> Any:
        value = _as_float(value)
        n = self.total_count
        log_choose = log_binomial_coefficient(n, value)
        if self._from_logits:
            return log_choose + value * self.logits - n * softplus(self.logits)
        # Finite gradients at probs 0 and 1, as Bernoulli's.
        log_success = xlogy_at_boundary(value, self.probs)
        return log_choose + log_success + xlog1py_at_boundary(n - value, -self.probs)

    def enumerate_support(self, expand: bool = True) -> Any:
        n = _homogeneous_count(type(self).__name__, self.total_count)
        return _enumerate(n + 1, self.batch_shape, expand)

    @property
    def mean(self) -> Any:
        return current().xp.broadcast_to(self.total_count * self.probs, self.batch_shape)

    @property
    def variance(self) -> Any:
        p = self.probs
        return current().xp.broadcast_to(self.total_count * p * (1 - p), self.batch_shape)


class BinomialProbs(Binomial):
    """:class:`Binomial` given by ``probs``."""

    arg_constraints = {
        "total_count": constraints.nonnegative_integer,
        "probs": constraints.unit_interval,
    }

    def __init__(
        self, probs: Any, total_count: Any = 1, *, validate_args: bool | None = None
    ) -> None:
        super().__init__(total_count, probs=probs, validate_args=validate_args)


class BinomialLogits(Binomial):
    """:class:`Binomial` given by ``logits``."""

    arg_constraints = {"total_count": constraints.nonnegative_integer, "logits": constraints.real}

    def __init__(
        self, logits: Any, total_count: Any = 1, *, validate_args: bool | None = None
    ) -> None:
        super().__init__(total_count, logits=logits, validate_args=validate_args)


class _OverCategories(_ProbsOrLogits):
    """The two forms over ``K`` categories (the last dim): ``probs`` on the simplex, or
    unnormalised ``logits``, with ``probs = softmax(logits)``."""

    arg_constraints: dict[str, Constraint] = {
        "probs": constraints.simplex,
        "logits": constraints.real_vector,
    }

    @lazy_property
    def probs(self) -> Any:
        sp = current().special
        return current().xp.exp(self.logits - sp.logsumexp(self.logits, axis=-1, keepdims=True))

    @lazy_property
    def logits(self) -> Any:
        return probs_to_logits_multinomial(self.probs)


class Categorical(_OverCategories):
    """One of ``K`` categories (0 .. K-1), with probabilities ``probs`` or ``softmax(logits)``."""

    has_enumerate_support = True

    def __init__(
        self, probs: Any = None, logits: Any = None, *, validate_args: bool | None = None
    ) -> None:
        param = self._given(probs, logits)
        shape = shape_of(param)
        if len(shape) < 1:
            raise ValueError(
                f"{type(self).__name__}: parameter {self._given_name!r} needs a trailing dim "
                "of categories, got a scalar"
            )
        self._keep(param)
        self.num_categories = shape[-1]
        self.support = constraints.integer_interval(0, shape[-1] - 1)
        Distribution.__init__(self, shape[:-1], validate_args=validate_args)

    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        backend = current()
        xp = backend.xp
        shape = tuple(sample_shape) + self.batch_shape
        if self._from_logits:
            return backend.categorical(key, self.logits, shape)
        # Inverse cdf: count the (normalised) cumulative probabilities below a uniform draw.
        cumulative = xp.cumsum(self.probs, axis=-1)
        cumulative = cumulative[..., :-1] / cumulative[..., -1:]
        u = backend.uniform(key, shape + (1,))
        return xp.sum(cumulative < u, axis=-1)

    def _log_prob(self, value: Any) -> Any:
        xp, sp = current().xp, current().special
        if self._from_logits:
            log_pmf = self.logits - sp.logsumexp(self.logits, axis=-1, keepdims=True)
        else:
            log_pmf = self.logits
        batch = broadcast_shapes(shape_of(value), self.batch_shape)
        # Clip so an out-of-range value indexes safely; the base class turns it into -inf.
        index = xp.clip(xp.asarray(value), 0, self.num_categories - 1).astype(xp.result_type(int))
        index = xp.broadcast_to(xp.expand_dims(index, -1), batch + (1,))
        log_pmf = xp.broadcast_to(log_pmf, batch + (self.num_categories,))
        return xp.take_along_axis(log_pmf, index, axis=-1)[..., 0]

    def enumerate_support(self, expand: bool = True) -> Any:
        return _enumerate(self.num_categories, self.batch_shape, expand)

    def entropy(self) -> Any:
        """``-sum p log p``; from logits, ``logsumexp(l) - sum softmax(l) l``."""
        xp, sp = current().xp, current().special
        if self._from_logits:
            return sp.logsumexp(self.logits, axis=-1) - xp.sum(self.probs * self.logits, axis=-1)
        p = xp.asarray(self.probs)
        return -xp.sum(sp.xlogy(p, p), axis=-1)

    @property
    def mean(self) -> Any:
        return current().xp.full(self.batch_shape, current().xp.nan)

    @property
    def variance(self) -> Any:
        return current().xp.full(self.batch_shape, current().xp.nan)


class CategoricalProbs(Categorical):
    """:class:`Categorical` given by ``probs``."""

    arg_constraints = {"probs": constraints.simplex}

    def __init__(self, probs: Any, *, validate_args: bool | None = None) -> None:
        super().__init__(probs=probs, validate_args=validate_args)


class CategoricalLogits(Categorical):
    """:class:`Categorical` given by ``logits``."""

    arg_constraints = {"logits": constraints.real_vector}

    def __init__(self, logits: Any, *, validate_args: bool | None = None) -> None:
        super().__init__(logits=logits, validate_args=validate_args)


class DiscreteUniform(Distribution):
    """Each whole number from ``low`` to ``high`` (both included) equally likely."""

    arg_constraints = {"low": constraints.dependent, "high": constraints.dependent}
    is_discrete = True
    has_enumerate_support = True

    def __init__(self, low: Any = 0, high: Any = 1, *, validate_args: bool | None = None) -> None:
        batch = broadcast_shapes(
            shape_of(low), shape_of(high), what="DiscreteUniform: low and high shapes"
        )
        self.low, self.high = promote_shapes(low, high)
        self.support = constraints.integer_interval(low, high)
        super().__init__(batch, validate_args=validate_args)

    def _validate_params(self) -> None:
        check_bounds(self, self.low, self.high, constraints.integer, constraints.greater_than_eq)

    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        shape = tuple(sample_shape) + self.batch_shape
        return current().randint(key, shape, self.low, self.high + 1)

    def _log_prob(self, value: Any) -> Any:
        xp = current().xp
        shape = broadcast_shapes(shape_of(value), self.batch_shape)
        count = _as_float(self.high - self.low + 1)
        return xp.broadcast_to(-xp.log(count), shape)

    def enumerate_support(self, expand: bool = True) -> Any:
        low = _homogeneous_count("DiscreteUniform", self.low)
        high = _homogeneous_count("DiscreteUniform", self.high)
        return low + _enumerate(high - low + 1, self.batch_shape, expand)

    def entropy(self) -> Any:
        """``log(high - low + 1)``, the log of the number of values."""
        xp = current().xp
        return xp.broadcast_to(xp.log(_as_float(self.high - self.low + 1)), self.batch_shape)

    @property
    def mean(self) -> Any:
        return current().xp.broadcast_to((self.low + self.high) / 2, self.batch_shape)

    @property
    def variance(self) -> Any:
        return current().xp.broadcast_to(
            ((self.high - self.low + 1) ** 2 - 1) / 12, self.batch_shape
        )


class Poisson(Distribution):
    """Counts of events that happen at ``rate`` per unit, independently of each other."""

    arg_constraints = {"rate": constraints.nonnegative}
    support = constraints.nonnegative_integer
    is_discrete = True

    def __init__(
        self, rate: Any, *, is_sparse: bool = False, validate_args: bool | None = None
    ) -> None:
        self.rate = rate
        self.is_sparse = is_sparse  # accepted for NumPyro compatibility; no effect
        super().__init__(shape_of(rate), validate_args=validate_args)

    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        shape = tuple(sample_shape) + self.batch_shape
        return current().poisson(key, full_param(self.rate, shape), shape)

    def _log_prob(self, value: Any) -> Any:
        sp = current().special
        value = _as_float(value)
        rate = _as_float(self.rate)
        # A finite gradient at rate 0 for the count 0, as Bernoulli's at probs 0.
        return xlogy_at_boundary(value, rate) - sp.gammaln(value + 1.0) - rate

    def cdf(self, value: Any) -> Any:
        xp = current().xp
        return current().special.gammaincc(xp.floor(value) + 1, self.rate)

    @property
    def mean(self) -> Any:
        return current().xp.broadcast_to(_as_float(self.rate), self.batch_shape)

    @property
    def variance(self) -> Any:
        return current().xp.broadcast_to(_as_float(self.rate), self.batch_shape)


class Geometric(_ProbsOrLogits):
    """The number of failures before the first success of ``probs`` (or ``logits``) trials."""

    support = constraints.nonnegative_integer

    def entropy(self) -> Any:
        """``-log p - (1 - p) / p log(1 - p)``; from logits ``l``, where ``(1 - p) / p`` is
        ``exp(-l)``, ``exp(-l) softplus(l) + softplus(-l)``."""
        xp, sp = current().xp, current().special
        if self._from_logits:
            return xp.exp(-self.logits) * softplus(self.logits) + softplus(-self.logits)
        p = xp.asarray(self.probs)
        return -xp.log(p) - sp.xlog1py(1 - p, -p) / p

    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        backend = current()
        xp = backend.xp
        shape = tuple(sample_shape) + self.batch_shape
        param = self.logits if self._from_logits else self.probs
        u = backend.uniform(key, shape, float_type_of(param))
        # Inverse cdf of the failure count: floor(log(1 - u) / log(1 - p)).
        if self._from_logits:
            return xp.floor(xp.log1p(-u) / -softplus(self.logits))
        return xp.floor(xp.log1p(-u) / xp.log1p(-xp.asarray(self.probs)))

    def _log_prob(self, value: Any) -> Any:
        xp = current().xp
        if self._from_logits:
            return -value * softplus(self.logits) - softplus(-self.logits)
        # A float value, as Bernoulli's: xlog1py's derivative rule needs a float tangent;
        # its boundary form keeps the gradient finite at probs 1 for the count 0.
        return xlog1py_at_boundary(_as_float(value), -self.probs) + xp.log(self.probs)

    @property
    def mean(self) -> Any:
        return current().xp.broadcast_to(1.0 / self.probs - 1.0, self.batch_shape)

    @property
    def variance(self) -> Any:
        p = self.probs
        return current().xp.broadcast_to((1.0 / p - 1.0) / p, self.batch_shape)


class GeometricProbs(Geometric):
    """:class:`Geometric` given by ``probs``."""

    arg_constraints = {"probs": constraints.unit_interval}

    def __init__(self, probs: Any, *, validate_args: bool | None = None) -> None:
        super().__init__(probs=probs, validate_args=validate_args)


class GeometricLogits(Geometric):
    """:class:`Geometric` given by ``logits``."""

    arg_constraints = {"logits": constraints.real}

    def __init__(self, logits: Any, *, validate_args: bool | None = None) -> None:
        super().__init__(logits=logits, validate_args=validate_args)


class GammaPoisson(Distribution):
    """A Poisson whose rate is drawn from ``Gamma(concentration, rate)`` (overdispersed counts)."""

    arg_constraints: dict[str, Constraint] = {
        "concentration": constraints.positive,
        "rate": constraints.positive,
    }
    support = constraints.nonnegative_integer
    is_discrete = True

    def __init__(
        self, concentration: Any, rate: Any = 1.0, *, validate_args: bool | None = None
    ) -> None:
        self._set_gamma(concentration, rate)
        super().__init__(self._batch, validate_args=validate_args)

    def _set_gamma(self, concentration: Any, rate: Any) -> None:
        self._batch = broadcast_shapes(
            shape_of(concentration),
            shape_of(rate),
            what=f"{type(self).__name__}: concentration and rate shapes",
        )
        self.concentration, self.rate = promote_shapes(concentration, rate)

    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        backend = current()
        key_gamma, key_poisson = backend.split(key)
        shape = tuple(sample_shape) + self._batch
        concentration = full_param(self.concentration, shape)
        poisson_rate = backend.gamma(key_gamma, concentration, shape) / self.rate
        return backend.poisson(key_poisson, poisson_rate, shape)

    def _log_prob(self, value: Any) -> Any:
        xp, sp = current().xp, current().special
        value = _as_float(value)
        a, b = _as_float(self.concentration), _as_float(self.rate)
        log_norm = sp.gammaln(value + a) - sp.gammaln(a) - sp.gammaln(value + 1.0)
        return log_norm - a * xp.log1p(1.0 / b) - value * xp.log1p(b)

    @property
    def mean(self) -> Any:
        return current().xp.broadcast_to(self.concentration / self.rate, self.batch_shape)

    @property
    def variance(self) -> Any:
        a, b = self.concentration, self.rate
        return current().xp.broadcast_to(a / b * (1 + 1 / b), self.batch_shape)


# The probs-or-logits forms come first in the bases; the draw, support and moments are
# GammaPoisson's.
class NegativeBinomial(_ProbsOrLogits, GammaPoisson):
    """Counts of successes (each with probability ``probs``, or ``sigmoid(logits)``) before
    ``total_count`` failures; a :class:`GammaPoisson` with rate ``(1 - probs) / probs``."""

    arg_constraints: dict[str, Constraint] = {
        "total_count": constraints.positive,
        "probs": constraints.unit_interval,
        "logits": constraints.real,
    }

    def __init__(
        self,
        total_count: Any,
        probs: Any = None,
        logits: Any = None,
        *,
        validate_args: bool | None = None,
    ) -> None:
        xp = current().xp
        param = self._given(probs, logits)
        broadcast_shapes(
            shape_of(total_count),
            shape_of(param),
            what=f"{type(self).__name__}: total_count and {self._given_name} shapes",
        )
        total_count, param = promote_shapes(total_count, param)
        self.total_count = total_count
        self._keep(param)
        if self._from_logits:
            rate = xp.exp(-xp.asarray(param))
        else:
            rate = 1.0 / xp.asarray(param) - 1.0
        self._set_gamma(total_count, rate)
        Distribution.__init__(self, self._batch, validate_args=validate_args)

    def _log_prob(self, value: Any) -> Any:
        sp = current().special
        value = _as_float(value)
        n = _as_float(self.total_count)
        log_norm = sp.gammaln(value + n) - sp.gammaln(n) - sp.gammaln(value + 1.0)
        if self._from_logits:
            return log_norm - n * softplus(self.logits) - value * softplus(-self.logits)
        return log_norm + sp.xlog1py(n, -self.probs) + xlogy_at_boundary(value, self.probs)


class NegativeBinomialProbs(NegativeBinomial):
    """:class:`NegativeBinomial` given by ``probs``."""

    arg_constraints = {"total_count": constraints.positive, "probs": constraints.unit_interval}

    def __init__(self, total_count: Any, probs: Any, *, validate_args: bool | None = None) -> None:
        super().__init__(total_count, probs=probs, validate_args=validate_args)


class NegativeBinomialLogits(NegativeBinomial):
    """:class:`NegativeBinomial` given by ``logits``."""

    arg_constraints = {"total_count": constraints.positive, "logits": constraints.real}

    def __init__(self, total_count: Any, logits: Any, *, validate_args: bool | None = None) -> None:
        super().__init__(total_count, logits=logits, validate_args=validate_args)


class NegativeBinomial2(GammaPoisson):
    """The negative binomial in its regression form: ``mean`` and ``concentration``
    (variance ``mean + mean**2 / concentration``)."""

    arg_constraints = {"mean": constraints.nonnegative, "concentration": constraints.positive}

    def __init__(self, mean: Any, concentration: Any, *, validate_args: bool | None = None) -> None:
        self._mean_param = mean
        rate = current().xp.divide(concentration, mean)
        super().__init__(concentration, rate, validate_args=validate_args)

    def _validate_params(self) -> None:
        check_param(self, "mean", constraints.nonnegative, self._mean_param)
        check_param(self, "concentration", constraints.positive, self.concentration)


class BetaBinomial(Distribution):
    """A Binomial whose success probability is drawn from ``Beta(concentration1,
    concentration0)``."""

    arg_constraints = {
        "concentration1": constraints.positive,
        "concentration0": constraints.positive,
        "total_count": constraints.nonnegative_integer,
    }
    is_discrete = True
    has_enumerate_support = True

    def __init__(
        self,
        concentration1: Any,
        concentration0: Any,
        total_count: Any = 1,
        *,
        validate_args: bool | None = None,
    ) -> None:
        batch = broadcast_shapes(
            shape_of(concentration1),
            shape_of(concentration0),
            shape_of(total_count),
            what="BetaBinomial: concentration1, concentration0 and total_count shapes",
        )
        self.concentration1, self.concentration0, self.total_count = promote_shapes(
            concentration1, concentration0, total_count
        )
        self.support = constraints.integer_interval(0, total_count)
        super().__init__(batch, validate_args=validate_args)

    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        from minippl.distributions.continuous import Beta

        backend = current()
        xp = backend.xp
        key_beta, key_binomial = backend.split(key)
        c1 = xp.broadcast_to(xp.asarray(self.concentration1), self.batch_shape)
        c0 = xp.broadcast_to(xp.asarray(self.concentration0), self.batch_shape)
        probs = Beta(c1, c0, validate_args=False).sample(key_beta, sample_shape)
        n = full_param(self.total_count, probs.shape)
        draws = backend.binomial(key_binomial, n, probs, probs.shape)
        return draws.astype(xp.result_type(int))

    def _log_prob(self, value: Any) -> Any:
        sp = current().special
        value = _as_float(value)
        n = _as_float(self.total_count)
        a, b = self.concentration1, self.concentration0
        return (
            log_binomial_coefficient(n, value)
            + sp.betaln(value + a, n - value + b)
            - sp.betaln(a, b)
        )

    def enumerate_support(self, expand: bool = True) -> Any:
        n = _homogeneous_count("BetaBinomial", self.total_count)
        return _enumerate(n + 1, self.batch_shape, expand)

    @property
    def mean(self) -> Any:
        a, b = self.concentration1, self.concentration0
        return current().xp.broadcast_to(self.total_count * a / (a + b), self.batch_shape)

    @property
    def variance(self) -> Any:
        a, b, n = self.concentration1, self.concentration0, self.total_count
        total = a + b
        v = n * a * b * (total + n) / (total**2 * (total + 1))
        return current().xp.broadcast_to(v, self.batch_shape)
