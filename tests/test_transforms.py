"""Transforms and ``biject_to``, on both backends, in float64.

* Each transform round-trips (``inv(t(x)) == x``) and lands in its codomain.
* ``log_abs_det_jacobian`` equals ``log|det J|`` of a central-difference Jacobian, taken in
  the coordinates each transform documents (the free entries of a simplex, a triangle of a
  matrix).
* The densities the samplers rely on integrate to one: a Dirichlet and an LKJ pushed back
  through their bijections, estimated by importance sampling.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import scipy.stats as st

import minippl.distributions as dist
from backends import Backend
from minippl.distributions import constraints
from minippl.distributions import transforms as T  # noqa: N812


def _np(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _identity(x: np.ndarray) -> np.ndarray:
    return x.reshape(-1)


def _tril(k: int) -> Callable[[np.ndarray], np.ndarray]:
    def coords(m: np.ndarray) -> np.ndarray:
        rows, cols = np.tril_indices(m.shape[-1], k)
        return m[..., rows, cols]

    return coords


def _sym_from_tril(c: np.ndarray) -> np.ndarray:
    n = round((np.sqrt(1 + 8 * c.size) - 1) / 2)
    m = np.zeros((n, n))
    m[np.tril_indices(n)] = c
    return m + np.tril(m, -1).T


def _corr_from_strict_tril(c: np.ndarray) -> np.ndarray:
    n = round((np.sqrt(1 + 8 * c.size) + 1) / 2)
    m = np.eye(n)
    m[np.tril_indices(n, -1)] = c
    return m + np.tril(m, -1).T


class Case:
    """A transform, how to pick a point of its domain, and the coordinates of x and y."""

    def __init__(
        self,
        name: str,
        make: Callable[[], T.Transform],
        z_shape: tuple[int, ...],
        x_coords: Callable[[np.ndarray], np.ndarray] = _identity,
        x_from: Callable[[np.ndarray], np.ndarray] | None = None,
        y_coords: Callable[[np.ndarray], np.ndarray] = _identity,
    ) -> None:
        self.name, self.make, self.z_shape = name, make, z_shape
        self.x_coords, self.y_coords = x_coords, y_coords
        self.x_from = x_from or (lambda c, shape: c.reshape(shape))

    def __repr__(self) -> str:
        return self.name


LOC3 = np.array([0.5, -1.0, 2.0])
SCALE3 = np.array([2.0, -0.5, 1.5])
TRIL3 = np.array([[1.5, 0.0, 0.0], [0.3, 0.8, 0.0], [-0.4, 0.2, 1.2]])

CASES = [
    Case("identity", T.IdentityTransform, (3,)),
    Case("exp", T.ExpTransform, (3,)),
    Case("sigmoid", T.SigmoidTransform, (3,)),
    Case("tanh", T.TanhTransform, (3,)),
    Case("softplus", T.SoftplusTransform, (3,)),
    Case("affine", lambda: T.AffineTransform(LOC3, SCALE3), (3,)),
    Case("power", lambda: T.PowerTransform(2.5), (3,)),
    Case("power(-1)", lambda: T.PowerTransform(-1.0), (3,)),
    Case("compose", lambda: T.ComposeTransform([T.AffineTransform(1.0, 2.0), T.ExpTransform()]),
         (3,)),
    Case("independent", lambda: T.IndependentTransform(T.ExpTransform(), 1), (3,)),
    Case("stick_breaking", T.StickBreakingTransform, (3,), y_coords=lambda y: y[:-1]),
    Case("ordered", T.OrderedTransform, (4,)),
    Case("lower_cholesky", T.LowerCholeskyTransform, (6,), y_coords=_tril(0)),
    Case("corr_cholesky", T.CorrCholeskyTransform, (3,), y_coords=_tril(-1)),
    Case("corr_cholesky(4)", T.CorrCholeskyTransform, (6,), y_coords=_tril(-1)),
    Case("cholesky", T.CholeskyTransform, (6,), x_coords=_tril(0),
         x_from=lambda c, shape: _sym_from_tril(c), y_coords=_tril(0)),
    Case("corr_matrix_cholesky", T.CorrMatrixCholeskyTransform, (3,), x_coords=_tril(-1),
         x_from=lambda c, shape: _corr_from_strict_tril(c), y_coords=_tril(-1)),
    Case("lower_cholesky_affine", lambda: T.LowerCholeskyAffine(LOC3, TRIL3), (3,)),
    Case("inverse exp", lambda: T.ExpTransform().inv, (3,)),
    Case("inverse stick_breaking", lambda: T.StickBreakingTransform().inv, (3,),
         x_coords=lambda x: x[:-1],
         x_from=lambda c, shape: np.concatenate([c, [1 - c.sum()]])),
    # biject_to's choices, through their composite forms
    Case("to interval", lambda: T.biject_to(constraints.interval(-2.0, 3.0)), (3,)),
    Case("to greater_than", lambda: T.biject_to(constraints.greater_than(1.5)), (3,)),
    Case("to less_than", lambda: T.biject_to(constraints.less_than(-1.0)), (3,)),
    Case("to positive_ordered", lambda: T.biject_to(constraints.positive_ordered_vector), (4,)),
    Case("to positive_definite", lambda: T.biject_to(constraints.positive_definite), (6,),
         y_coords=_tril(0)),
    Case("to corr_matrix", lambda: T.biject_to(constraints.corr_matrix), (3,),
         y_coords=_tril(-1)),
]


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_round_trip_codomain_and_log_abs_det_jacobian(case: Case, b64: Backend) -> None:
    t = case.make()
    to_domain = T.biject_to(t.domain)
    event_shape = to_domain.forward_shape(case.z_shape)
    n = case.x_coords(np.zeros(event_shape)).size
    # One batch of 2n points serves every check, so on JAX each map compiles once: the
    # first n points are random, and the same batch shape carries the finite differences.
    z = np.random.default_rng(0).normal(size=(2 * n,) + case.z_shape)
    forward, inverse, inside = b64.jit(t), b64.jit(t.inv), b64.jit(t.codomain)
    ladj_fn, inverse_ladj_fn = b64.jit(t.log_abs_det_jacobian), b64.jit(t.inv.log_abs_det_jacobian)
    x = _np(b64.jit(to_domain)(z))
    y = forward(x)
    assert np.asarray(inside(y)).all()
    np.testing.assert_allclose(_np(inverse(y)), x, rtol=1e-7, atol=1e-8)
    assert tuple(np.shape(y)) == t.forward_shape(x.shape)
    assert t.inverse_shape(tuple(np.shape(y))) == x.shape
    assert t.inv.inv is t or t.inv.inv == t
    ladj = _np(ladj_fn(x, y))
    assert ladj.shape in (x.shape[: x.ndim - t.domain.event_dim], x.shape)
    # The inverse's log-Jacobian is the negative.
    np.testing.assert_allclose(_np(inverse_ladj_fn(y, x)).reshape(ladj.shape), -ladj, atol=1e-9)

    # log|det J| at the first point against central differences in its coordinates.
    c, h = case.x_coords(x[0]), 1e-6
    steps = [c + sign * h * np.eye(n)[i] for i in range(n) for sign in (1.0, -1.0)]
    moved = _np(forward(np.stack([case.x_from(step, x[0].shape) for step in steps])))
    coords = np.stack([case.y_coords(m) for m in moved])
    jac = ((coords[0::2] - coords[1::2]) / (2 * h)).T
    assert jac.shape == (n, n), jac.shape
    np.testing.assert_allclose(ladj[0].sum(), np.linalg.slogdet(jac)[1], rtol=1e-6, atol=1e-6)


def test_abs_transform(b64: Backend) -> None:
    t = T.AbsTransform()
    np.testing.assert_allclose(_np(t(np.array([-2.0, 3.0]))), [2.0, 3.0])
    assert _np(t.inv(np.array([2.0]))) == 2.0
    assert t.codomain is constraints.positive


def test_stick_breaking_maps_zero_to_uniform_simplex(b64: Backend) -> None:
    y = _np(T.StickBreakingTransform()(np.zeros(4)))
    np.testing.assert_allclose(y, np.full(5, 0.2), rtol=1e-12)


# -- biject_to ------------------------------------------------------------------------------------


def test_biject_to_choices(backend: Backend) -> None:
    assert isinstance(T.biject_to(constraints.real), T.IdentityTransform)
    assert T.biject_to(constraints.positive) == T.ExpTransform()
    assert T.biject_to(constraints.nonnegative) == T.ExpTransform()
    assert T.biject_to(constraints.unit_interval) == T.SigmoidTransform()
    assert T.biject_to(constraints.simplex) == T.StickBreakingTransform()
    assert T.biject_to(constraints.ordered_vector) == T.OrderedTransform()
    assert T.biject_to(constraints.lower_cholesky) == T.LowerCholeskyTransform()
    assert T.biject_to(constraints.corr_cholesky) == T.CorrCholeskyTransform()
    for c in (constraints.interval(0.0, 2.0), constraints.greater_than(1.0),
              constraints.less_than(1.0), constraints.open_interval(0.0, 1.0),
              constraints.greater_than_eq(0.5), constraints.positive_definite):
        assert isinstance(T.biject_to(c), T.ComposeTransform)


def test_biject_to_independent_keeps_event_dims(backend: Backend) -> None:
    t = T.biject_to(constraints.independent(constraints.positive, 2))
    assert isinstance(t, T.IndependentTransform) and t.reinterpreted_batch_ndims == 2
    assert t.base_transform == T.ExpTransform()
    assert (t.domain.event_dim, t.codomain.event_dim) == (2, 2)
    x = np.zeros((5, 2, 3))
    assert np.shape(t.log_abs_det_jacobian(x, t(x))) == (5,)
    vec = T.biject_to(constraints.real_vector)
    assert isinstance(vec, T.IndependentTransform) and vec.codomain.event_dim == 1
    # What a sampler does with a site: the support of an Independent distribution.
    site = dist.Exponential(np.ones((4, 3))).to_event(1)
    t = T.biject_to(site.support)
    assert t.codomain.event_dim == 1
    assert np.shape(t.log_abs_det_jacobian(np.zeros((4, 3)), np.ones((4, 3)))) == (4,)
    simplex = T.biject_to(dist.Dirichlet(np.ones((2, 3))).to_event(1).support)
    assert simplex.domain.event_dim == 2 and simplex.inverse_shape((2, 3)) == (2, 2)


def test_biject_to_discrete_and_unknown_constraints_raise(backend: Backend) -> None:
    for c in (constraints.boolean, constraints.nonnegative_integer, constraints.integer,
              constraints.integer_interval(0, 3), constraints.dependent):
        with pytest.raises(NotImplementedError, match="biject_to"):
            T.biject_to(c)


def test_biject_to_registry_is_open(backend: Backend) -> None:
    class _Above(constraints._GreaterThan):
        """A user constraint: inherits greater_than's bijection until it registers its own."""

    c = _Above(2.0)
    assert isinstance(T.biject_to(c), T.ComposeTransform)

    class _Unit(constraints.Constraint):
        def __call__(self, x: Any) -> Any:
            return (x > 0) & (x < 1)

    registry = T.ConstraintRegistry()
    registry.register(_Unit, lambda c: T.SigmoidTransform())

    @registry.register(_Above)
    def _shift(c: Any) -> T.Transform:
        return T.AffineTransform(c.lower_bound, 1.0)

    assert registry(_Unit()) == T.SigmoidTransform()
    assert isinstance(registry(c), T.AffineTransform)
    with pytest.raises(NotImplementedError):
        registry(constraints.real)


def test_improper_uniform_support_has_a_bijection(backend: Backend) -> None:
    d = dist.ImproperUniform(constraints.ordered_vector, (2,), (5,))
    t = T.biject_to(d.support)
    y = t(np.random.default_rng(0).normal(size=(2, 5)))
    assert np.asarray(d.support(y)).all()
    assert (np.asarray(d.log_prob(y)) == 0).all()


# -- the pushed-back densities integrate to one -------------------------------------------------


def _importance_estimate(log_target: np.ndarray, z: np.ndarray) -> tuple[float, float]:
    """Mean and standard error of exp(log_target - log q) for z ~ Logistic(0, 1)^d."""
    log_q = st.logistic.logpdf(z).sum(-1)
    w = np.exp(log_target - log_q)
    return float(w.mean()), float(w.std() / np.sqrt(w.size))


def test_dirichlet_through_stick_breaking_integrates_to_one(b64: Backend) -> None:
    z = st.logistic.rvs(size=(20000, 3), random_state=np.random.default_rng(0))
    t = T.StickBreakingTransform()

    def log_target(z: Any) -> Any:
        y = t(z)
        density = dist.Dirichlet(np.array([1.5, 2.0, 0.8, 3.0]))
        return density.log_prob(y) + t.log_abs_det_jacobian(z, y)

    mean, se = _importance_estimate(_np(b64.jit(log_target)(z)), z)
    assert abs(mean - 1) < 4 * se + 1e-3, (mean, se)


@pytest.mark.parametrize("eta", [0.7, 2.0])
def test_lkj_cholesky_through_corr_cholesky_integrates_to_one(b64: Backend, eta: float) -> None:
    z = st.logistic.rvs(size=(20000, 3), random_state=np.random.default_rng(1))
    t = T.CorrCholeskyTransform()

    def log_target(z: Any) -> Any:
        y = t(z)
        return dist.LKJCholesky(3, eta).log_prob(y) + t.log_abs_det_jacobian(z, y)

    mean, se = _importance_estimate(_np(b64.jit(log_target)(z)), z)
    assert abs(mean - 1) < 4 * se + 1e-3, (mean, se)
