"""Gradients through every transform agree with finite differences (float64), on both backends.

For each bijective transform ``t`` (``AbsTransform`` has no log-Jacobian) and ``biject_to``'s
composite choices, at a point ``x`` of its domain:
``sum(w * t(x)) + sum(t.log_abs_det_jacobian(x, t(x)))``, with fixed weights ``w`` so that
every output counts, is differentiated with respect to ``x`` (in the free coordinates of
its domain) and the transform's parameters. The backend's automatic gradient must match
fourth-order central differences (``tests/finite_differences.py``) to 1e-6 relative to its
largest entry: what a sampler needs when a site's support is constrained.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import finite_differences
import numpy as np
import pytest

import minippl
from backends import Backend
from minippl.distributions import constraints
from minippl.distributions import transforms as T  # noqa: N812
from minippl.distributions.util import matrix_to_tril_vec, vec_to_tril_matrix


def _xp() -> Any:
    return minippl.backend.current().xp


# Each domain's free coordinates and the point they stand for (differentiable on any backend).
def _vector(c: Any) -> Any:
    return c


def _symmetric(c: Any) -> Any:
    m = vec_to_tril_matrix(c)
    return m + _xp().swapaxes(_xp().tril(m, -1), -1, -2)


def _correlation(c: Any) -> Any:
    m = vec_to_tril_matrix(c, diagonal=-1)
    return m + _xp().swapaxes(m, -1, -2) + _xp().eye(m.shape[-1])


def _simplex(c: Any) -> Any:
    return _xp().concatenate([c, 1.0 - _xp().sum(c, axis=-1, keepdims=True)], axis=-1)


LOC3 = np.array([0.5, -1.0, 2.0])
SCALE3 = np.array([2.0, -0.5, 1.5])
TRIL3 = np.array([[1.5, 0.0, 0.0], [0.3, 0.8, 0.0], [-0.4, 0.2, 1.2]])

# (name, make(**params), params, z_shape (the unconstrained point), coordinates of x)
Case = tuple[str, Callable[..., T.Transform], dict[str, Any], tuple[int, ...], Callable[..., Any]]
CASES: list[Case] = [
    ("identity", T.IdentityTransform, {}, (3,), _vector),
    ("exp", T.ExpTransform, {}, (3,), _vector),
    ("sigmoid", T.SigmoidTransform, {}, (3,), _vector),
    ("tanh", T.TanhTransform, {}, (3,), _vector),
    ("softplus", T.SoftplusTransform, {}, (3,), _vector),
    ("affine", T.AffineTransform, {"loc": LOC3, "scale": SCALE3}, (3,), _vector),
    ("power", T.PowerTransform, {"exponent": 2.5}, (3,), _vector),
    ("compose", lambda loc, scale: T.ComposeTransform(
        [T.AffineTransform(loc, scale), T.ExpTransform()]), {"loc": 1.0, "scale": 2.0}, (3,),
     _vector),
    ("independent", lambda: T.IndependentTransform(T.ExpTransform(), 1), {}, (3,), _vector),
    ("stick_breaking", T.StickBreakingTransform, {}, (3,), _vector),
    ("ordered", T.OrderedTransform, {}, (4,), _vector),
    ("lower_cholesky", T.LowerCholeskyTransform, {}, (6,), _vector),
    ("corr_cholesky", T.CorrCholeskyTransform, {}, (3,), _vector),
    ("corr_cholesky(4)", T.CorrCholeskyTransform, {}, (6,), _vector),
    ("cholesky", T.CholeskyTransform, {}, (6,), _symmetric),
    ("corr_matrix_cholesky", T.CorrMatrixCholeskyTransform, {}, (3,), _correlation),
    ("lower_cholesky_affine", T.LowerCholeskyAffine, {"loc": LOC3, "scale_tril": TRIL3}, (3,),
     _vector),
    ("inverse exp", lambda: T.ExpTransform().inv, {}, (3,), _vector),
    ("inverse stick_breaking", lambda: T.StickBreakingTransform().inv, {}, (3,), _simplex),
    ("to interval", lambda: T.biject_to(constraints.interval(-2.0, 3.0)), {}, (3,), _vector),
    ("to greater_than", lambda: T.biject_to(constraints.greater_than(1.5)), {}, (3,), _vector),
    ("to less_than", lambda: T.biject_to(constraints.less_than(-1.0)), {}, (3,), _vector),
    ("to positive_ordered", lambda: T.biject_to(constraints.positive_ordered_vector), {}, (4,),
     _vector),
    ("to positive_definite", lambda: T.biject_to(constraints.positive_definite), {}, (6,),
     _vector),
    ("to corr_matrix", lambda: T.biject_to(constraints.corr_matrix), {}, (3,), _vector),
]


def _coordinates(x: np.ndarray, x_from: Callable[..., Any]) -> np.ndarray:
    """The free coordinates of the domain point ``x`` that ``x_from`` maps back to ``x``."""
    if x_from is _symmetric:
        return np.asarray(matrix_to_tril_vec(x))
    if x_from is _correlation:
        return np.asarray(matrix_to_tril_vec(x, diagonal=-1))
    if x_from is _simplex:
        return x[..., :-1]
    return x


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_grad_through_transform_matches_finite_differences(case: Case, b64: Backend) -> None:
    name, make, params, z_shape, x_from = case
    z = np.random.default_rng(0).normal(size=z_shape)
    t0 = make(**params)
    x0 = np.asarray(T.biject_to(t0.domain)(z), dtype=np.float64)
    weights = np.random.default_rng(1).normal(size=np.shape(t0(x0)))
    point = {
        "params": {k: np.asarray(v, dtype=np.float64) for k, v in params.items()},
        "x": _coordinates(x0, x_from),
    }
    np.testing.assert_allclose(np.asarray(x_from(point["x"])), x0, atol=1e-12)
    flat, unravel = b64.ravel_pytree(point)

    def f(theta: Any) -> Any:
        p = unravel(theta)
        t = make(**p["params"])
        x = x_from(p["x"])
        y = t(x)
        return b64.xp.sum(weights * y) + b64.xp.sum(t.log_abs_det_jacobian(x, y))

    grad = np.asarray(b64.jit(b64.grad(f))(flat))
    _, numeric = finite_differences.value_and_grad(b64.jit(f))(np.asarray(flat))
    assert np.isfinite(grad).all()
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-6 * np.abs(numeric).max())
