"""``-inf`` outside the support (``minippl.distributions.util.minus_inf_outside``), as each
backend computes it: the values of ``where(inside, log_density, -inf)`` everywhere, and
inside the support the density's own gradient (JAX's fused version passes the tangent
through without a second select; ``backends/jax/fused.py``)."""

from __future__ import annotations

from typing import Any

import numpy as np

import minippl.distributions as dist
from backends import Backend
from minippl.distributions.util import minus_inf_outside

VALUES = np.array([-1.0, 0.5, 2.0, np.inf, np.nan])
"""Two Exponential values inside the support, three outside (a negative, inf, NaN)."""


def _total(backend: Backend, rate: Any) -> Any:
    inside = VALUES[:3][VALUES[:3] > 0]
    return backend.xp.sum(dist.Exponential(rate).log_prob(inside))


def test_values_are_the_plain_select(backend: Backend) -> None:
    inside = np.array([True, False, True])
    density = backend.xp.asarray([-1.5, np.nan, 0.25])
    out = np.asarray(backend.jit(minus_inf_outside)(inside, density))
    np.testing.assert_array_equal(out, [-1.5, -np.inf, 0.25])
    # A mask wider than the density broadcasts it, as where does.
    wide = np.asarray(backend.jit(minus_inf_outside)(inside, backend.xp.asarray(0.5)))
    np.testing.assert_array_equal(wide, [0.5, -np.inf, 0.5])


def test_log_prob_outside_the_support_under_jit(backend: Backend) -> None:
    lp = np.asarray(backend.jit(lambda v: dist.Exponential(2.0).log_prob(v))(VALUES))
    np.testing.assert_array_equal(lp[[0, 3, 4]], [-np.inf] * 3)
    np.testing.assert_allclose(lp[1], np.log(2.0) - 1.0, rtol=1e-6)


def test_gradient_inside_the_support_is_the_density_s(backend: Backend) -> None:
    """d/d rate of log(rate) - rate x, summed over x = 0.5 and 2: 2 / rate - 2.5."""
    for grad in (backend.grad(lambda r: _total(backend, r)),
                 backend.jit(backend.grad(lambda r: _total(backend, r)))):  # fmt: skip
        np.testing.assert_allclose(float(grad(backend.xp.asarray(2.0))), 2 / 2.0 - 2.5, rtol=1e-6)


def test_gradient_through_a_broadcast_mask(backend: Backend) -> None:
    """One density masked over three values: its gradient counts the values inside."""
    inside = np.array([True, False, True])

    def total(x: Any) -> Any:
        return backend.xp.sum(backend.xp.where(inside, minus_inf_outside(inside, x * 3.0), 0.0))

    np.testing.assert_allclose(float(backend.grad(total)(backend.xp.asarray(1.0))), 6.0)


def test_jax_gradient_selects_once(jax_backend: Backend) -> None:
    """The traced gradient of a log density has the forward select only: the tangent is
    not masked again (the plain where's derivative is a second ``select_n``)."""
    import jax

    def selects(fn: Any) -> int:
        jaxpr = jax.make_jaxpr(jax.grad(fn))(2.0)
        return str(jaxpr).count("select_n")

    x = VALUES[:3][VALUES[:3] > 0]

    def masked(rate: Any) -> Any:
        return jax.numpy.sum(dist.Exponential(rate).log_prob(x))

    def plain(rate: Any) -> Any:
        lp = dist.Exponential(rate)._log_prob(x)
        return jax.numpy.sum(jax.numpy.where(x > 0, lp, -jax.numpy.inf))

    assert selects(plain) == 2
    assert selects(masked) == 1
