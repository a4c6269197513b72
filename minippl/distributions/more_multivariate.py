"""More vector-valued families NumPyro's examples use: ``Multinomial`` and ``ZeroSumNormal``.

Names, parameters, shapes and supports are NumPyro's. Draws are exact but made with
minippl's own samplers (so not NumPyro's numbers for the same key): a multinomial as a chain
of binomials, each category given the trials the earlier ones left [1, section 3.4.1].

1. L. Devroye, "Non-Uniform Random Variate Generation", Springer, 1986, chapter XI.
"""

from __future__ import annotations

import math
from typing import Any

from minippl.backend import current
from minippl.distributions import constraints
from minippl.distributions.constraints import Constraint
from minippl.distributions.discrete import _OverCategories
from minippl.distributions.distribution import Distribution
from minippl.distributions.transforms import Transform, biject_to
from minippl.distributions.util import (
    Shape,
    broadcast_shapes,
    shape_of,
    xlogy_at_boundary,
)

__all__ = [
    "Multinomial",
    "MultinomialLogits",
    "MultinomialProbs",
    "ZeroSumNormal",
    "ZeroSumTransform",
]


class _MultinomialSupport(Constraint):
    """Vectors of non-negative integers that add up to ``upper`` (the number of trials)."""

    event_dim = 1
    is_discrete = True

    def __init__(self, upper: Any) -> None:
        self.upper = upper

    def __call__(self, x: Any) -> Any:
        xp = current().xp
        whole = xp.all((x >= 0) & (x == xp.floor(x)), axis=-1)
        return whole & (xp.sum(x, axis=-1) == self.upper)


class Multinomial(_OverCategories):
    """Counts of ``total_count`` trials over ``K`` categories with ``probs`` or ``logits``.

    >>> import numpy as np
    >>> import minippl.distributions as dist
    >>> d = dist.Multinomial(4, probs=np.array([0.5, 0.5]))
    >>> d.event_shape, round(float(d.log_prob(np.array([2.0, 2.0]))), 4)
    ((2,), -0.9808)
    """

    arg_constraints: dict[str, Constraint] = {
        "total_count": constraints.nonnegative_integer,
        "probs": constraints.simplex,
        "logits": constraints.real_vector,
    }

    # NumPyro's signature: Binomial's, with ``total_count_max`` (``duplicates`` pairs them).
    @classmethod
    def _infer_shapes(cls, shapes: dict[str, Shape]) -> tuple[Shape, Shape]:
        (param,) = [shapes[n] for n in ("probs", "logits") if n in shapes]
        batch = broadcast_shapes(param[:-1], shapes.get("total_count", ()), what="Multinomial")
        return batch, param[-1:]

    def __init__(
        self,
        total_count: Any = 1,
        probs: Any = None,
        logits: Any = None,
        *,
        total_count_max: int | None = None,
        validate_args: bool | None = None,
    ) -> None:
        param = current().xp.asarray(self._given(probs, logits))
        if param.ndim == 0:
            raise ValueError("Multinomial: probs/logits need a last dim over the categories")
        self._keep(param)
        self.total_count = total_count
        self.total_count_max = total_count_max
        batch = broadcast_shapes(shape_of(total_count), param.shape[:-1], what="Multinomial")
        self.support = _MultinomialSupport(total_count)
        Distribution.__init__(self, batch, param.shape[-1:], validate_args=validate_args)

    def _log_prob(self, value: Any) -> Any:
        xp = current().xp
        sp = current().special
        n = xp.asarray(self.total_count, dtype=xp.result_type(float))
        log_choose = sp.gammaln(n + 1) - xp.sum(sp.gammaln(value + 1), axis=-1)
        if self._from_logits:
            log_norm = sp.logsumexp(self.logits, axis=-1)
            return log_choose + xp.sum(value * self.logits, axis=-1) - n * log_norm
        # A float value: xlogy's derivative rule on JAX needs a float tangent for it; the
        # boundary form keeps the gradient finite at a category of probability 0.
        value = xp.asarray(value, dtype=xp.result_type(float))
        return log_choose + xp.sum(xlogy_at_boundary(value, self.probs), axis=-1)

    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        backend = current()
        xp = backend.xp
        shape = tuple(sample_shape) + self.batch_shape
        probs = xp.broadcast_to(self.probs, shape + self.event_shape)
        left = xp.broadcast_to(xp.asarray(self.total_count, dtype=probs.dtype), shape)
        mass_left = xp.ones(shape, dtype=probs.dtype)
        keys = backend.split(key, self.event_shape[0])
        counts = []
        for i in range(self.event_shape[0] - 1):
            # Category i takes a binomial share of the trials left, with its probability
            # among the categories not yet drawn.
            p = xp.clip(probs[..., i] / xp.maximum(mass_left, 1e-30), 0.0, 1.0)
            count = xp.asarray(backend.binomial(keys[i], left, p, shape), dtype=probs.dtype)
            counts.append(count)
            left = left - count
            mass_left = mass_left - probs[..., i]
        counts.append(left)
        return xp.stack(counts, axis=-1)

    @property
    def mean(self) -> Any:
        xp = current().xp
        n = xp.asarray(self.total_count)[..., None]
        return xp.broadcast_to(n * self.probs, self.batch_shape + self.event_shape)

    @property
    def variance(self) -> Any:
        xp = current().xp
        n = xp.asarray(self.total_count)[..., None]
        return xp.broadcast_to(
            n * self.probs * (1 - self.probs), self.batch_shape + self.event_shape
        )


class MultinomialProbs(Multinomial):
    """:class:`Multinomial` given by ``probs``."""

    def __init__(
        self, probs: Any, total_count: Any = 1, *, validate_args: bool | None = None
    ) -> None:
        super().__init__(total_count, probs=probs, validate_args=validate_args)


class MultinomialLogits(Multinomial):
    """:class:`Multinomial` given by ``logits``."""

    def __init__(
        self, logits: Any, total_count: Any = 1, *, validate_args: bool | None = None
    ) -> None:
        super().__init__(total_count, logits=logits, validate_args=validate_args)


class _ZeroSum(Constraint):
    """Arrays whose sums over each of the ``event_dim`` rightmost axes are zero."""

    def __init__(self, event_dim: int) -> None:
        self.event_dim = event_dim

    def __call__(self, x: Any) -> Any:
        xp = current().xp
        ok = xp.ones(shape_of(x)[: len(shape_of(x)) - self.event_dim], dtype=bool)
        for axis in range(-self.event_dim, 0):
            sums = xp.sum(x, axis=axis, keepdims=True)
            flat = xp.abs(sums) < 1e-4 * (1 + xp.max(xp.abs(x), axis=axis, keepdims=True))
            ok = ok & xp.all(flat, axis=tuple(range(-self.event_dim, 0)))
        return ok


class ZeroSumNormal(Distribution):
    """A Normal with ``scale`` constrained to sum to zero along its ``event_shape`` axes.

    Its draws are i.i.d. Normal(0, scale) with each axis's mean removed; the density is the
    Normal's on that subspace, whose dimension is ``prod(n - 1)`` (NumPyro's definition).
    """

    arg_constraints: dict[str, Constraint] = {"scale": constraints.positive}
    reparametrized_params = ("scale",)

    @classmethod
    def _infer_shapes(cls, shapes: dict[str, Shape]) -> tuple[Shape, Shape]:
        raise NotImplementedError("ZeroSumNormal.infer_shapes: the event shape is an argument")

    def __init__(
        self, scale: Any, event_shape: Shape, *, validate_args: bool | None = None
    ) -> None:
        event_shape = tuple(event_shape)
        if not event_shape:
            raise ValueError("ZeroSumNormal: event_shape needs at least one dim")
        self.scale = scale
        self.support = _ZeroSum(len(event_shape))
        super().__init__(shape_of(scale), event_shape, validate_args=validate_args)

    def _scale(self) -> Any:
        xp = current().xp
        return xp.reshape(xp.asarray(self.scale), shape_of(self.scale) + (1,) * self.event_dim)

    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        backend = current()
        xp = backend.xp
        draw = backend.normal(key, self.shape(sample_shape)) * self._scale()
        for axis in range(-self.event_dim, 0):
            draw = draw - xp.mean(draw, axis=axis, keepdims=True)
        return draw

    def _log_prob(self, value: Any) -> Any:
        xp = current().xp
        free = math.prod(n - 1 for n in self.event_shape)
        scale = xp.asarray(self.scale)
        z2 = xp.sum((value / self._scale()) ** 2, axis=tuple(range(-self.event_dim, 0)))
        return -0.5 * z2 - free * (xp.log(scale) + 0.5 * math.log(2 * math.pi))

    @property
    def mean(self) -> Any:
        return current().xp.zeros(self.batch_shape + self.event_shape)

    @property
    def variance(self) -> Any:
        xp = current().xp
        shrink = 1.0
        for n in self.event_shape:
            shrink *= (n - 1) / n
        return xp.broadcast_to(self._scale() ** 2 * shrink, self.batch_shape + self.event_shape)


class ZeroSumTransform(Transform):
    """An isometry from ``R^(n-1)`` onto the vectors of ``R^n`` that sum to zero, along each
    of the ``transform_ndims`` rightmost axes (how a sampler moves on ``ZeroSumNormal``).

    Along one axis: append a coordinate, then reflect the space in the hyperplane that
    swaps the new axis with the direction ``-(1, ..., 1) / sqrt(n)`` (a Householder
    reflection). Reflections keep lengths, so the log-Jacobian is zero, and the appended
    axis, being orthogonal to the others, lands on the sum direction only, which the
    reflection sends to zero sum. NumPyro uses the same map.
    """

    def __init__(self, transform_ndims: int = 1) -> None:
        self.transform_ndims = transform_ndims
        self.domain = constraints.independent(constraints.real, transform_ndims)
        self.codomain = _ZeroSum(transform_ndims)

    def __call__(self, x: Any) -> Any:
        xp = current().xp
        for axis in range(-self.transform_ndims, 0):
            n = shape_of(x)[axis] + 1
            total = xp.sum(x, axis=axis, keepdims=True)
            shift = total / (math.sqrt(n) + n)
            last = shift - total / math.sqrt(n)
            x = xp.concatenate([x, last], axis=axis) - shift
        return x

    def _inverse(self, y: Any) -> Any:
        xp = current().xp
        for axis in range(-self.transform_ndims, 0):
            n = shape_of(y)[axis]
            last = xp.take(y, xp.asarray([n - 1]), axis=axis)
            shift = -last * math.sqrt(n) / (math.sqrt(n) + n)
            y = xp.take(y, xp.arange(n - 1), axis=axis) + shift
        return y

    def log_abs_det_jacobian(self, x: Any, y: Any, intermediates: Any = None) -> Any:
        shape = shape_of(x)
        return current().xp.zeros(shape[: len(shape) - self.transform_ndims])

    def forward_shape(self, shape: Shape) -> Shape:
        cut = len(shape) - self.transform_ndims
        return shape[:cut] + tuple(n + 1 for n in shape[cut:])

    def inverse_shape(self, shape: Shape) -> Shape:
        cut = len(shape) - self.transform_ndims
        return shape[:cut] + tuple(n - 1 for n in shape[cut:])


@biject_to.register(_ZeroSum)
def _to_zero_sum(constraint: _ZeroSum) -> Transform:
    return ZeroSumTransform(constraint.event_dim)
