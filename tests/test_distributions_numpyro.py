"""Parity with NumPyro on JAX: the same draws bit for bit, the same shapes, the same bijections.

Every distribution that NumPyro samples with standard ``jax.random`` draws must return, for
the same parameters and key, exactly NumPyro's array. The shape table builds the same
expression (expand, to_event, mask, sample shapes) with both libraries and compares batch,
event, sample and ``log_prob`` shapes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import minippl.distributions as mdist
from backends import Backend
from minippl.distributions import constraints as mcon
from minippl.distributions import transforms as mtr

numpyro = pytest.importorskip("numpyro")
ndist = pytest.importorskip("numpyro.distributions")
import jax  # noqa: E402
from numpyro.distributions import constraints as ncon  # noqa: E402
from numpyro.distributions import transforms as ntr  # noqa: E402

pytestmark = pytest.mark.reference

N = 3000  # the sample size of test_distributions, so compiled samplers are shared


@pytest.fixture(autouse=True)
def _validation() -> Iterator[None]:
    from minippl.distributions import distribution

    previous = distribution.validation_enabled()
    mdist.enable_validation(True)
    yield
    mdist.enable_validation(previous)


def _full(x: float, n: int = N) -> np.ndarray:
    return np.full(n, x, dtype=np.float32)


CONC3 = np.array([0.7, 2.0, 3.5])
COV = np.array([[2.0, 0.6, -0.3], [0.6, 1.0, 0.2], [-0.3, 0.2, 0.5]])
LOC3 = np.array([1.0, -2.0, 0.5])
PROBS4 = np.array([0.1, 0.2, 0.3, 0.4])
BATCH = np.array([[0.5, 1.0, 2.0]], dtype=np.float32)  # batch shape (1, 3)

# (id, builder taking the distributions module, sample shape). Builders only use names both
# libraries share, so the same lambda builds both sides. Most cases use the parameters,
# sample size and key of test_distributions' sampling tests, so on JAX they reuse the
# samplers already compiled there (gamma-based ones take full-size parameter arrays, as
# minippl hands its samplers, so NumPyro's calls hit the same compiled sampler too); a few
# add batch shapes and wrappers.
BIT_CASES: list[tuple[str, Callable[[Any], Any], tuple[int, ...]]] = [
    ("Normal", lambda D: D.Normal(0.5, 2.0), (N,)),
    ("Normal(expand)", lambda D: D.Normal(BATCH, 2.0).expand([5, 2, 3]), (2,)),
    ("HalfNormal", lambda D: D.HalfNormal(2.0), (N,)),
    ("Cauchy", lambda D: D.Cauchy(0.5, 2.0), (N,)),
    ("HalfCauchy", lambda D: D.HalfCauchy(2.0), (N,)),
    ("StudentT", lambda D: D.StudentT(_full(7.0), 0.5, 2.0), ()),
    ("Laplace", lambda D: D.Laplace(0.5, 2.0), (N,)),
    ("Logistic", lambda D: D.Logistic(0.5, 2.0), (N,)),
    ("LogNormal", lambda D: D.LogNormal(0.3, 0.5), (N,)),
    ("Exponential", lambda D: D.Exponential(2.0), (N,)),
    ("Uniform", lambda D: D.Uniform(-1.0, 2.0), (N,)),
    ("Gamma", lambda D: D.Gamma(_full(2.5), 1.5), ()),
    ("Chi2", lambda D: D.Chi2(_full(3.0)), ()),
    ("InverseGamma", lambda D: D.InverseGamma(_full(6.0), 2.0), ()),
    ("Beta", lambda D: D.Beta(2.0, 3.0), (N,)),
    ("Weibull", lambda D: D.Weibull(2.0, 1.5), (N,)),
    ("Gumbel", lambda D: D.Gumbel(0.5, 2.0), (N,)),
    ("Dirichlet", lambda D: D.Dirichlet(CONC3), (N,)),
    ("MultivariateNormal(cov)", lambda D: D.MultivariateNormal(LOC3, COV), (N,)),
    ("MultivariateNormal(tril)",
     lambda D: D.MultivariateNormal(LOC3, scale_tril=np.linalg.cholesky(COV)), (N,)),
    ("MultivariateNormal(batch)", lambda D: D.MultivariateNormal(np.zeros((N, 3)), COV), ()),
    ("TruncatedNormal", lambda D: D.TruncatedNormal(0.5, 2.0, low=-1.0, high=3.0), (N,)),
    ("TruncatedNormal(tail)", lambda D: D.TruncatedNormal(0.0, 1.0, low=2.5, high=4.0), (N,)),
    ("TruncatedNormal(low)", lambda D: D.TruncatedNormal(0.5, 2.0, low=1.0), (N,)),
    ("TruncatedNormal(high)", lambda D: D.TruncatedNormal(0.5, 2.0, high=0.0), (N,)),
    ("FoldedNormal", lambda D: D.FoldedDistribution(D.Normal(1.0, 2.0)), (N,)),
    ("Bernoulli(probs)", lambda D: D.Bernoulli(probs=0.3), (N,)),
    ("Bernoulli(logits)", lambda D: D.Bernoulli(logits=-0.5), (N,)),
    ("Categorical(probs)", lambda D: D.Categorical(probs=PROBS4), (N,)),
    ("Categorical(logits)", lambda D: D.Categorical(logits=np.array([0.0, 1.0, -1.0])), (N,)),
    ("Poisson", lambda D: D.Poisson(3.5), (N,)),
    ("NegativeBinomial(probs)", lambda D: D.NegativeBinomial(_full(5.0), probs=0.3), ()),
    ("NegativeBinomial2", lambda D: D.NegativeBinomial2(4.0, _full(2.0)), ()),
    ("Geometric(probs)", lambda D: D.Geometric(probs=0.3), (N,)),
    ("Geometric(logits)", lambda D: D.Geometric(logits=-1.0), (N,)),
    ("DiscreteUniform", lambda D: D.DiscreteUniform(1, 5), (N,)),
    ("Delta", lambda D: D.Delta(BATCH), (4,)),
    ("Independent", lambda D: D.Normal(BATCH, 1.0).to_event(2), (4,)),
    ("Transformed",
     lambda D: D.TransformedDistribution(
         D.Normal(0.0, 1.0), [D.transforms.AffineTransform(1.0, 0.5), D.transforms.ExpTransform()]
     ), (N,)),
]


@pytest.mark.parametrize("name,build,sample_shape", BIT_CASES, ids=[c[0] for c in BIT_CASES])
def test_same_draws_as_numpyro(
    jax_backend: Backend, name: str, build: Callable[[Any], Any], sample_shape: tuple[int, ...]
) -> None:
    key = jax.random.key(7)
    ours, theirs = build(mdist), build(ndist)
    assert ours.batch_shape == theirs.batch_shape
    assert ours.event_shape == theirs.event_shape
    if name.startswith("Truncated"):
        # Long chains of special functions compile faster as one program; both sides are
        # compiled the same way.
        draw_ours = jax.jit(lambda k: build(mdist).sample(k, sample_shape))(key)
        draw_theirs = jax.jit(lambda k: build(ndist).sample(k, sample_shape))(key)
    else:
        draw_ours, draw_theirs = ours.sample(key, sample_shape), theirs.sample(key, sample_shape)
    np.testing.assert_array_equal(np.asarray(draw_ours), np.asarray(draw_theirs))


def test_multivariate_normal_precision_close_to_numpyro(jax_backend: Backend) -> None:
    # The Cholesky factor of the inverse is computed with a general solve here (the backend
    # protocol has no triangular solve), so the draws agree to rounding, not bit for bit.
    key = jax.random.key(7)
    prec = np.linalg.inv(COV).astype(np.float32)
    ours = mdist.MultivariateNormal(LOC3, precision_matrix=prec).sample(key, (50,))
    theirs = ndist.MultivariateNormal(LOC3, precision_matrix=prec).sample(key, (50,))
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("method", ["onion", "cvine"])
def test_lkj_cholesky_same_draws_as_numpyro(jax_backend: Backend, method: str) -> None:
    key = jax.random.key(3)
    ours = mdist.LKJCholesky(4, 1.5, sample_method=method).sample(key, (N,))
    theirs = ndist.LKJCholesky(4, 1.5, sample_method=method).sample(key, (N,))
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))


# -- shapes ----------------------------------------------------------------------------------

Z3 = np.zeros(3, np.float32)
SHAPE_CASES: list[tuple[str, Callable[[Any], Any]]] = [
    ("scalar", lambda D: D.Normal(0.0, 1.0)),
    ("broadcast params", lambda D: D.Normal(np.zeros((3, 1)), np.ones(2))),
    ("expand new dims", lambda D: D.Normal(Z3, 1.0).expand([4, 2, 3])),
    ("expand size-1 dims", lambda D: D.Normal(np.zeros((3, 1)), 1.0).expand([2, 3, 5])),
    ("expand_by", lambda D: D.Exponential(np.ones(3)).expand_by([2])),
    ("expand then to_event", lambda D: D.Normal(0.0, 1.0).expand([4, 1, 3]).to_event(1)),
    ("to_event all", lambda D: D.Normal(np.zeros((2, 3)), 1.0).to_event()),
    ("to_event twice", lambda D: D.Normal(np.zeros((4, 2, 3)), 1.0).to_event(1).to_event(1)),
    ("plate-like expand", lambda D: D.Normal(0.0, 1.0).expand([5, 1]).expand([5, 7])),
    ("mask", lambda D: D.Normal(Z3, 1.0).mask(np.array([True, False, True]))),
    ("mask broadcast", lambda D: D.Normal(Z3, 1.0).mask(np.ones((2, 1), bool))),
    ("dirichlet expand", lambda D: D.Dirichlet(np.ones((2, 3))).expand([4, 2])),
    ("dirichlet to_event", lambda D: D.Dirichlet(np.ones((2, 3))).to_event(1)),
    ("mvn batch", lambda D: D.MultivariateNormal(np.zeros((4, 1, 3)), np.eye(3))),
    ("mvn expand", lambda D: D.MultivariateNormal(Z3, np.eye(3)).expand([2, 5])),
    ("categorical", lambda D: D.Categorical(probs=np.full((2, 4), 0.25)).expand([3, 2])),
    ("lkj", lambda D: D.LKJCholesky(3, np.ones(2))),
    ("lkj corr", lambda D: D.LKJ(3, np.ones(2))),
    ("transformed stick", lambda D: D.TransformedDistribution(
        D.Normal(Z3, 1.0), D.transforms.StickBreakingTransform())),
    ("transformed broadcast", lambda D: D.TransformedDistribution(
        D.Normal(0.0, 1.0), D.transforms.AffineTransform(np.zeros((2, 3)), 1.0))),
    ("inverse gamma", lambda D: D.InverseGamma(np.ones((2, 1)), np.ones(3))),
    ("folded", lambda D: D.FoldedDistribution(D.Normal(Z3, 1.0))),
    ("truncated", lambda D: D.TruncatedNormal(Z3, 1.0, low=-np.ones((2, 1)), high=np.ones((2, 1)))),
    ("truncated low", lambda D: D.TruncatedNormal(Z3, 1.0, low=np.zeros((2, 1)))),
    ("binomial", lambda D: D.Binomial(np.array([3, 5]), probs=np.full((4, 1), 0.5))),
    ("beta binomial", lambda D: D.BetaBinomial(np.ones(3), 2.0, 4)),
    ("negative binomial", lambda D: D.NegativeBinomial(np.ones(3), probs=0.5)),
    ("delta", lambda D: D.Delta(np.zeros((2, 3)), event_dim=1)),
]
IMPROPER_CASES: list[tuple[str, Callable[[Any], Any]]] = [
    ("improper ordered", lambda D: D.ImproperUniform(D.constraints.ordered_vector, (), (10,))),
    ("improper real matrix", lambda D: D.ImproperUniform(D.constraints.real, (), (3, 4))),
    ("improper batched",
     lambda D: D.ImproperUniform(D.constraints.greater_than(3.0), (6, 8), (5,))),
]


@pytest.mark.parametrize("sample_shape", [(2, 3)])
@pytest.mark.parametrize("name,build", SHAPE_CASES, ids=[c[0] for c in SHAPE_CASES])
def test_shapes_match_numpyro(
    jax_backend: Backend, name: str, build: Callable[[Any], Any], sample_shape: tuple[int, ...]
) -> None:
    ours, theirs = build(mdist), build(ndist)
    assert (ours.batch_shape, ours.event_shape) == (theirs.batch_shape, theirs.event_shape)
    assert ours.shape(sample_shape) == theirs.shape(sample_shape)
    assert ours.support.event_dim == theirs.support.event_dim
    # Sampling and log_prob shapes, traced only (nothing is computed).
    key = jax.random.key(0)
    x_ours = jax.eval_shape(lambda k: ours.sample(k, sample_shape), key)
    x_theirs = jax.eval_shape(lambda k: theirs.sample(k, sample_shape), key)
    assert x_ours.shape == x_theirs.shape
    value = jax.numpy.zeros(x_theirs.shape, x_theirs.dtype)
    lp_ours = jax.eval_shape(ours.log_prob, value)
    lp_theirs = jax.eval_shape(theirs.log_prob, value)
    assert lp_ours.shape == lp_theirs.shape


@pytest.mark.parametrize("name,build", IMPROPER_CASES, ids=[c[0] for c in IMPROPER_CASES])
def test_improper_uniform_shapes_match_numpyro(
    jax_backend: Backend, name: str, build: Callable[[Any], Any]
) -> None:
    ours, theirs = build(mdist), build(ndist)
    assert (ours.batch_shape, ours.event_shape) == (theirs.batch_shape, theirs.event_shape)
    assert ours.support.event_dim == theirs.support.event_dim
    value = jax.numpy.zeros((2,) + ours.shape())
    assert jax.eval_shape(ours.log_prob, value).shape == (2,) + ours.batch_shape


# -- bijections ---------------------------------------------------------------------------------

BIJECTIONS = [
    (mcon.real, ncon.real, (4,)),
    (mcon.positive, ncon.positive, (4,)),
    (mcon.nonnegative, ncon.nonnegative, (4,)),
    (mcon.unit_interval, ncon.unit_interval, (4,)),
    (mcon.interval(-2.0, 3.0), ncon.interval(-2.0, 3.0), (4,)),
    (mcon.greater_than(1.5), ncon.greater_than(1.5), (4,)),
    (mcon.less_than(-1.0), ncon.less_than(-1.0), (4,)),
    (mcon.real_vector, ncon.real_vector, (2, 4)),
    (mcon.simplex, ncon.simplex, (2, 4)),
    (mcon.ordered_vector, ncon.ordered_vector, (2, 4)),
    (mcon.positive_ordered_vector, ncon.positive_ordered_vector, (2, 4)),
    (mcon.lower_cholesky, ncon.lower_cholesky, (2, 6)),
    (mcon.corr_cholesky, ncon.corr_cholesky, (2, 6)),
    (mcon.positive_definite, ncon.positive_definite, (2, 6)),
    (mcon.corr_matrix, ncon.corr_matrix, (2, 6)),
    (mcon.independent(mcon.positive, 2), ncon.independent(ncon.positive, 2), (3, 2, 4)),
]


@pytest.mark.parametrize("ours,theirs,shape", BIJECTIONS, ids=[repr(b[0]) for b in BIJECTIONS])
def test_biject_to_matches_numpyro(
    jax_backend: Backend, ours: Any, theirs: Any, shape: tuple[int, ...]
) -> None:
    x = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    t_ours, t_theirs = mtr.biject_to(ours), ntr.biject_to(theirs)
    assert t_ours.domain.event_dim == t_theirs.domain.event_dim
    assert t_ours.codomain.event_dim == t_theirs.codomain.event_dim

    @jax.jit
    def both(x: Any) -> Any:
        y = t_ours(x)
        ladj = t_ours.log_abs_det_jacobian(x, y)
        return y, t_theirs(x), ladj, t_theirs.log_abs_det_jacobian(x, y)

    y, y_theirs, ladj, ladj_theirs = both(x)
    np.testing.assert_allclose(np.asarray(y), np.asarray(y_theirs), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.asarray(ladj), np.asarray(ladj_theirs), rtol=1e-5, atol=1e-5)
    assert t_ours.forward_shape(shape) == t_theirs.forward_shape(shape)
    assert t_ours.inverse_shape(y.shape) == t_theirs.inverse_shape(y.shape)
