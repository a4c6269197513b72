"""Distributions of angles: ``VonMises``, with NumPyro's name, parameters and support.

Its draws come from Best and Fisher's rejection sampler [1], run on every element at once
until each has accepted (``while_loop``: compiled on JAX, a Python loop on NumPy), so they are
exact but not NumPyro's numbers for the same key.

1. D. J. Best and N. I. Fisher, "Efficient simulation of the von Mises distribution",
   Applied Statistics 28(2), 1979, section 2.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from minippl.backend import current
from minippl.distributions import constraints
from minippl.distributions.constraints import Constraint
from minippl.distributions.distribution import Distribution
from minippl.distributions.util import Shape, broadcast_shapes, full_param, promote_shapes, shape_of

__all__ = ["VonMises"]


class VonMises(Distribution):
    """The circular normal on ``[-pi, pi]``: density ``exp(k cos(x - loc)) / (2 pi I0(k))``.

    >>> import minippl.distributions as dist
    >>> round(float(dist.VonMises(0.0, 2.0).log_prob(0.0)), 4)
    -0.6619
    """

    arg_constraints: dict[str, Constraint] = {
        "loc": constraints.real,
        "concentration": constraints.positive,
    }
    support: Constraint = constraints.interval(-math.pi, math.pi)
    reparametrized_params = ("loc",)

    def __init__(
        self, loc: Any = 0.0, concentration: Any = 1.0, *, validate_args: bool | None = None
    ) -> None:
        batch = broadcast_shapes(shape_of(loc), shape_of(concentration), what="VonMises shapes")
        self.loc, self.concentration = promote_shapes(loc, concentration)
        super().__init__(batch, validate_args=validate_args)

    def _log_prob(self, value: Any) -> Any:
        backend = current()
        xp = backend.xp
        k = self.concentration
        # i0e(k) = I0(k) exp(-k): the scaled form stays finite for large concentrations.
        log_norm = math.log(2 * math.pi) + xp.log(backend.special.i0e(k)) + k
        return k * xp.cos(value - self.loc) - log_norm

    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        backend = current()
        xp = backend.xp
        shape = tuple(sample_shape) + self.batch_shape
        k = full_param(self.concentration, shape)
        theta = _best_fisher(key, k, shape)
        # Centre on loc and wrap back into [-pi, pi).
        return xp.remainder(theta + self.loc + math.pi, 2 * math.pi) - math.pi

    @property
    def mean(self) -> Any:
        """The circular mean, ``loc``."""
        return current().xp.broadcast_to(self.loc, self.batch_shape)

    @property
    def variance(self) -> Any:
        """The circular variance ``1 - I1(k) / I0(k)`` (what NumPyro returns)."""
        sp = current().special
        k = self.concentration
        return current().xp.broadcast_to(1 - sp.i1e(k) / sp.i0e(k), self.batch_shape)


class _Draws(NamedTuple):
    key: Any
    done: Any
    theta: Any


def _best_fisher(key: Any, k: Any, shape: Shape) -> Any:
    """Angles around 0 with concentration ``k``: every element proposes until it accepts."""
    backend = current()
    xp = backend.xp
    k = xp.maximum(k, 1e-6)  # the envelope below is singular at k = 0 (the uniform)
    tau = 1 + xp.sqrt(1 + 4 * k**2)
    rho = (tau - xp.sqrt(2 * tau)) / (2 * k)
    r = (1 + rho**2) / (2 * rho)

    def propose(state: _Draws) -> _Draws:
        keys = backend.split(state.key, 4)
        u1, u2, u3 = (backend.uniform(keys[i], shape, dtype=k.dtype) for i in (1, 2, 3))
        z = xp.cos(math.pi * u1)
        f = (1 + r * z) / (r + z)
        c = k * (r - f)
        accept = (c * (2 - c) - u2 > 0) | (xp.log(c / u2) + 1 - c >= 0)
        angle = xp.sign(u3 - 0.5) * xp.arccos(xp.clip(f, -1.0, 1.0))
        take = accept & ~state.done
        return _Draws(keys[0], state.done | accept, xp.where(take, angle, state.theta))

    start = _Draws(key, xp.zeros(shape, dtype=bool), xp.zeros(shape, dtype=k.dtype))
    return backend.while_loop(lambda s: ~xp.all(s.done), propose, start).theta
