"""Bad input, the wrappers' semantics, and enumeration, on both backends.

* With validation on, a bad parameter raises ``ValueError`` naming the distribution, the
  parameter and the constraint; mismatched shapes raise an error that shows both shapes.
* ``log_prob`` outside the support is ``-inf`` (warned under validation), never NaN, never
  an exception.
* ``expand``, ``to_event`` and ``mask`` do what NumPyro's do to values, not only to shapes.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import minippl.distributions as dist
from backends import Backend
from minippl.distributions import constraints, distribution


@pytest.fixture(autouse=True)
def _validation() -> Iterator[None]:
    previous = distribution.validation_enabled()
    dist.enable_validation(True)
    yield
    dist.enable_validation(previous)


UPPER = np.array([[1.0, 0.5], [0.0, 1.0]])
BAD_PARAMS: list[tuple[Callable[[], Any], str, str, str]] = [
    (lambda: dist.Normal(0.0, -1.0), "Normal", "scale", "positive"),
    (lambda: dist.Normal(np.nan, 1.0), "Normal", "loc", "real"),
    (lambda: dist.HalfNormal(-1.0), "HalfNormal", "scale", "positive"),
    (lambda: dist.Cauchy(0.0, 0.0), "Cauchy", "scale", "positive"),
    (lambda: dist.HalfCauchy(np.array([1.0, -2.0])), "HalfCauchy", "scale", "positive"),
    (lambda: dist.StudentT(-1.0, 0.0, 1.0), "StudentT", "df", "positive"),
    (lambda: dist.Laplace(0.0, -1.0), "Laplace", "scale", "positive"),
    (lambda: dist.Logistic(0.0, -1.0), "Logistic", "scale", "positive"),
    (lambda: dist.LogNormal(0.0, -1.0), "LogNormal", "scale", "positive"),
    (lambda: dist.Exponential(-1.0), "Exponential", "rate", "positive"),
    (lambda: dist.Gamma(-1.0, 1.0), "Gamma", "concentration", "positive"),
    (lambda: dist.Gamma(1.0, 0.0), "Gamma", "rate", "positive"),
    (lambda: dist.InverseGamma(1.0, -1.0), "InverseGamma", "rate", "positive"),
    (lambda: dist.Beta(1.0, -1.0), "Beta", "concentration0", "positive"),
    (lambda: dist.Uniform(2.0, 1.0), "Uniform", "high", "greater_than"),
    (lambda: dist.Chi2(-1.0), "Chi2", "df", "positive"),
    (lambda: dist.Weibull(-1.0, 1.0), "Weibull", "scale", "positive"),
    (lambda: dist.Gumbel(0.0, -1.0), "Gumbel", "scale", "positive"),
    (lambda: dist.Dirichlet(np.array([1.0, -1.0])), "Dirichlet", "concentration", "positive"),
    (lambda: dist.Dirichlet(1.0), "Dirichlet", "concentration", "dim"),
    (lambda: dist.MultivariateNormal(np.zeros(2), np.array([[1.0, 2.0], [2.0, 1.0]])),
     "MultivariateNormal", "covariance_matrix", "positive_definite"),
    (lambda: dist.MultivariateNormal(np.zeros(2), precision_matrix=-np.eye(2)),
     "MultivariateNormal", "precision_matrix", "positive_definite"),
    (lambda: dist.MultivariateNormal(np.zeros(2), scale_tril=UPPER),
     "MultivariateNormal", "scale_tril", "lower_cholesky"),
    (lambda: dist.LKJCholesky(3, -1.0), "LKJCholesky", "concentration", "positive"),
    (lambda: dist.TruncatedNormal(0.0, 1.0, low=2.0, high=1.0),
     "TwoSidedTruncatedDistribution", "high", "greater_than"),
    (lambda: dist.TruncatedNormal(0.0, -1.0, low=0.0), "TruncatedNormal", "scale", "positive"),
    (lambda: dist.Bernoulli(probs=1.5), "Bernoulli", "probs", "unit_interval"),
    (lambda: dist.Bernoulli(logits=np.nan), "Bernoulli", "logits", "real"),
    (lambda: dist.BernoulliProbs(-0.5), "BernoulliProbs", "probs", "unit_interval"),
    (lambda: dist.Binomial(10, probs=-0.1), "Binomial", "probs", "unit_interval"),
    (lambda: dist.Binomial(2.5, probs=0.5), "Binomial", "total_count", "nonnegative_integer"),
    (lambda: dist.Categorical(probs=np.array([0.5, 0.6])), "Categorical", "probs", "simplex"),
    (lambda: dist.Categorical(logits=np.array([0.0, np.inf])), "Categorical", "logits", "real"),
    (lambda: dist.Categorical(probs=0.5), "Categorical", "probs", "categories"),
    (lambda: dist.Poisson(-1.0), "Poisson", "rate", "nonnegative"),
    (lambda: dist.NegativeBinomial(-1.0, probs=0.5), "NegativeBinomial", "total_count", "positive"),
    (lambda: dist.NegativeBinomial2(-1.0, 1.0), "NegativeBinomial2", "mean", "nonnegative"),
    (lambda: dist.GammaPoisson(1.0, -1.0), "GammaPoisson", "rate", "positive"),
    (lambda: dist.Geometric(probs=2.0), "Geometric", "probs", "unit_interval"),
    (lambda: dist.BetaBinomial(1.0, 1.0, -1), "BetaBinomial", "total_count", "nonnegative_integer"),
    (lambda: dist.DiscreteUniform(3, 1), "DiscreteUniform", "high", "greater_than_eq"),
    (lambda: dist.ImproperUniform(constraints.simplex, (), ()), "ImproperUniform", "event_shape",
     "simplex"),
]


@pytest.mark.parametrize(
    "make,name,param,constraint", BAD_PARAMS, ids=[f"{b[1]}-{b[2]}" for b in BAD_PARAMS]
)
def test_bad_parameter_names_distribution_parameter_and_constraint(
    backend: Backend, make: Callable[[], Any], name: str, param: str, constraint: str
) -> None:
    with pytest.raises(ValueError) as info:
        make()
    message = str(info.value)
    for word in (name, param, constraint):
        assert word in message, message


def test_validation_can_be_switched_off(backend: Backend) -> None:
    dist.enable_validation(False)
    d = dist.Normal(0.0, -1.0)  # no error
    assert np.isnan(np.asarray(d.log_prob(0.0)))
    dist.Bernoulli(probs=1.5)
    dist.Normal(0.0, -1.0, validate_args=False)
    dist.enable_validation(True)
    dist.Normal(0.0, -1.0, validate_args=False)
    with pytest.raises(ValueError, match="scale"):
        dist.Normal(0.0, -1.0)


def test_edge_parameters_are_valid(backend: Backend) -> None:
    # Only the form that was given is validated: probs=1 has infinite logits, and that is fine.
    d = dist.Bernoulli(probs=1.0)
    assert np.asarray(d.log_prob(1.0)) == 0.0
    assert np.asarray(d.log_prob(0.0)) == -np.inf
    assert np.asarray(dist.Geometric(probs=1.0).log_prob(0.0)) == 0.0
    assert abs(np.asarray(dist.Binomial(3, probs=0.0).log_prob(0.0))) < 1e-6
    assert abs(np.asarray(dist.Poisson(0.0).log_prob(0.0))) < 1e-6
    dist.Categorical(probs=np.array([0.0, 1.0]))


MISMATCHED: list[tuple[Callable[[], Any], tuple[str, str]]] = [
    (lambda: dist.Normal(np.zeros(3), np.ones(2)), ("(3,)", "(2,)")),
    (lambda: dist.Gamma(np.ones((2, 3)), np.ones(4)), ("(2, 3)", "(4,)")),
    (lambda: dist.Beta(np.ones(3), np.ones(2)), ("(3,)", "(2,)")),
    (lambda: dist.StudentT(np.ones(3), 0.0, np.ones(2)), ("(3,)", "(2,)")),
    (lambda: dist.Binomial(np.ones(3), probs=np.full(2, 0.5)), ("(3,)", "(2,)")),
    (lambda: dist.MultivariateNormal(np.zeros(3), np.eye(2)), ("(3,)", "(2, 2)")),
    (lambda: dist.MultivariateNormal(np.zeros((4, 2)), np.ones((3, 1, 1)) * np.eye(2)),
     ("(4,)", "(3,)")),
    (lambda: dist.Normal(np.zeros(3), 1.0).expand([2]), ("(3,)", "(2,)")),
    (lambda: dist.Normal(np.zeros(3), 1.0).expand([4, 2]), ("(3,)", "(4, 2)")),
    (lambda: dist.Normal(np.zeros(3), 1.0).mask(np.ones(2, bool)), ("(3,)", "(2,)")),
    (lambda: dist.TruncatedNormal(np.zeros(3), 1.0, low=np.zeros(2)), ("(3,)", "(2,)")),
]


@pytest.mark.parametrize("make,shapes", MISMATCHED)
def test_mismatched_shapes_show_both_shapes(
    backend: Backend, make: Callable[[], Any], shapes: tuple[str, str]
) -> None:
    with pytest.raises(ValueError) as info:
        make()
    for shape in shapes:
        assert shape in str(info.value), str(info.value)


def test_to_event_needs_enough_batch_dims(backend: Backend) -> None:
    with pytest.raises(ValueError, match="to_event"):
        dist.Normal(np.zeros(3), 1.0).to_event(2)


OUTSIDE: list[tuple[Callable[[], Any], Any]] = [
    (lambda: dist.Normal(0.0, 1.0), np.inf),
    (lambda: dist.HalfNormal(1.0), -1.0),
    (lambda: dist.HalfCauchy(1.0), -1.0),
    (lambda: dist.Exponential(1.0), -1.0),
    (lambda: dist.Gamma(2.0, 1.0), -1.0),
    (lambda: dist.Gamma(2.0, 1.0), 0.0),
    (lambda: dist.Chi2(2.0), -1.0),
    (lambda: dist.InverseGamma(2.0, 1.0), -1.0),
    (lambda: dist.LogNormal(0.0, 1.0), -1.0),
    (lambda: dist.Weibull(1.0, 2.0), -1.0),
    (lambda: dist.Beta(2.0, 2.0), 1.5),
    (lambda: dist.Uniform(0.0, 2.0), 3.0),
    (lambda: dist.Uniform(0.0, 2.0), -0.5),
    (lambda: dist.TruncatedNormal(0.0, 1.0, low=0.0, high=1.0), 2.0),
    (lambda: dist.TruncatedNormal(0.0, 1.0, low=0.0), -1.0),
    (lambda: dist.TruncatedNormal(0.0, 1.0, high=0.0), 1.0),
    (lambda: dist.FoldedDistribution(dist.Normal(0.0, 1.0)), -1.0),
    (lambda: dist.Dirichlet(np.ones(3)), np.array([0.5, 0.6, 0.1])),
    (lambda: dist.Dirichlet(np.ones(3)), np.array([1.5, -0.5, 0.0])),
    (lambda: dist.MultivariateNormal(np.zeros(2), np.eye(2)), np.array([np.nan, 0.0])),
    (lambda: dist.LKJCholesky(2, 1.0), np.array([[1.0, 0.0], [0.5, 0.5]])),
    (lambda: dist.Bernoulli(probs=0.5), 0.5),
    (lambda: dist.Bernoulli(logits=0.5), 2.0),
    (lambda: dist.Binomial(10, probs=0.5), 11.0),
    (lambda: dist.Binomial(10, logits=0.5), -1.0),
    (lambda: dist.Poisson(2.0), 1.5),
    (lambda: dist.Poisson(2.0), -1.0),
    (lambda: dist.Categorical(probs=np.full(3, 1 / 3)), 3),
    (lambda: dist.Categorical(logits=np.zeros(3)), -1),
    (lambda: dist.Categorical(logits=np.zeros(3)), 0.5),
    (lambda: dist.Geometric(probs=0.5), -1.0),
    (lambda: dist.NegativeBinomial(3.0, logits=0.0), 2.5),
    (lambda: dist.BetaBinomial(1.0, 1.0, 4), 5.0),
    (lambda: dist.DiscreteUniform(0, 3), 4.0),
    (lambda: dist.ImproperUniform(constraints.positive, (), ()), -1.0),
    (lambda: dist.Normal(np.zeros(2), 1.0).to_event(1), np.array([0.0, np.inf])),
    (lambda: dist.Exponential(1.0).expand([3]), -np.ones(3)),
]


@pytest.mark.parametrize("make,value", OUTSIDE)
def test_log_prob_outside_support_is_minus_inf(
    backend: Backend, make: Callable[[], Any], value: Any
) -> None:
    d = make()
    with pytest.warns(UserWarning, match="outside the support"):
        lp = np.asarray(d.log_prob(value))
    assert np.all(lp == -np.inf), lp
    dist.enable_validation(False)
    d = make()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lp = np.asarray(d.log_prob(value))
    assert np.all(lp == -np.inf), lp


def test_log_prob_is_finite_inside_support(backend: Backend) -> None:
    lp = np.asarray(dist.Beta(1.0, 1.0).log_prob(np.array([0.0, 1.0])))
    np.testing.assert_allclose(lp, 0.0, atol=1e-6)
    assert np.asarray(dist.Beta(1.0, 3.0).log_prob(0.0)) == pytest.approx(np.log(3.0))
    assert np.isfinite(np.asarray(dist.Exponential(1.0).log_prob(1e-30)))
    lp = np.asarray(dist.Uniform(0.0, 2.0).log_prob(np.array([0.0, 2.0])))
    np.testing.assert_allclose(lp, -np.log(2.0), rtol=1e-6)


def test_exactly_one_parametrization(backend: Backend) -> None:
    for cls in (dist.Bernoulli, dist.Categorical, dist.Geometric):
        with pytest.raises(ValueError, match="exactly one"):
            cls()
        with pytest.raises(ValueError, match="exactly one"):
            cls(probs=np.array([0.5, 0.5]), logits=np.zeros(2))
    with pytest.raises(ValueError, match="exactly one"):
        dist.MultivariateNormal(np.zeros(2))


def test_probs_and_logits_forms_agree(backend: Backend) -> None:
    p = np.array([0.2, 0.7])
    logits = np.log(p) - np.log1p(-p)
    for ours, theirs in [
        (dist.Bernoulli(probs=p), dist.BernoulliLogits(logits)),
        (dist.Binomial(5, probs=p), dist.BinomialLogits(logits, 5)),
        (dist.Geometric(probs=p), dist.GeometricLogits(logits)),
        (dist.NegativeBinomialProbs(3.0, p), dist.NegativeBinomial(3.0, logits=logits)),
    ]:
        v = np.array([1.0, 0.0])
        np.testing.assert_allclose(
            np.asarray(ours.log_prob(v)), np.asarray(theirs.log_prob(v)), rtol=1e-5
        )
        np.testing.assert_allclose(np.asarray(ours.logits), logits, rtol=1e-5)
        np.testing.assert_allclose(np.asarray(theirs.probs), p, rtol=1e-5)
        np.testing.assert_allclose(np.asarray(ours.mean), np.asarray(theirs.mean), rtol=1e-5)
    cat = dist.Categorical(logits=np.log(np.array([0.2, 0.3, 0.5])))
    np.testing.assert_allclose(np.asarray(cat.probs), [0.2, 0.3, 0.5], rtol=1e-5)
    assert isinstance(dist.BernoulliProbs(0.5), dist.Bernoulli)


def test_discrete_samples_are_integers(backend: Backend) -> None:
    # 3000 draws: the sample size of test_distributions, whose compiled samplers this reuses.
    key = backend.key(0)
    for d in [
        dist.Bernoulli(probs=0.5),
        dist.Binomial(4, probs=0.5),
        dist.BetaBinomial(1.0, 1.0, 4),
        dist.Categorical(probs=np.full(3, 1 / 3)),
        dist.Categorical(logits=np.zeros(3)),
        dist.Poisson(2.0),
        dist.DiscreteUniform(0, 3),
    ]:
        x = np.asarray(d.sample(key, (3000,)))
        assert np.issubdtype(x.dtype, np.integer), (type(d).__name__, x.dtype)
        assert np.asarray(d.support(x)).all()


# -- wrappers --------------------------------------------------------------------------------------


def test_independent_sums_log_prob(backend: Backend) -> None:
    base = dist.Normal(np.zeros((4, 3)), np.arange(1.0, 4.0))
    d = base.to_event(1)
    assert (d.batch_shape, d.event_shape) == ((4,), (3,))
    x = np.asarray(base.sample(backend.key(0), (2,)))
    np.testing.assert_allclose(
        np.asarray(d.log_prob(x)), np.asarray(base.log_prob(x)).sum(-1), rtol=1e-6
    )
    assert d.to_event(0) is d
    np.testing.assert_allclose(np.asarray(d.mean), np.zeros((4, 3)))
    assert d.support.event_dim == 1


def test_expand_broadcasts_log_prob(backend: Backend) -> None:
    base = dist.Exponential(np.array([1.0, 0.5, 1 / 3]))
    d = base.expand([5, 3])
    assert d.batch_shape == (5, 3)
    x = np.asarray(d.sample(backend.key(1)))
    assert x.shape == (5, 3)
    np.testing.assert_allclose(np.asarray(d.log_prob(x)), np.asarray(base.log_prob(x)), rtol=1e-6)
    assert np.asarray(d.log_prob(np.ones(3))).shape == (5, 3)
    np.testing.assert_allclose(np.asarray(d.mean), np.broadcast_to([1.0, 2.0, 3.0], (5, 3)))
    assert base.expand([3]) is base
    # Grown size-1 dims draw independent values.
    wide = np.asarray(dist.Normal(np.zeros((3, 1)), 1.0).expand([3, 1000]).sample(backend.key(2)))
    assert wide.shape == (3, 1000) and np.std(wide[0]) > 0.5


def test_expanding_an_independent_expands_its_base(backend: Backend) -> None:
    """NumPyro's rule: the reinterpreted dims stay events, the base takes the new batch
    dims, and the result is again an ``Independent`` (what a plate around a ``to_event``
    site records in its trace)."""
    base = dist.Exponential(np.ones((1, 5)))
    d = base.to_event(1).expand([2, 3])
    assert isinstance(d, dist.Independent) and isinstance(d.base_dist, dist.ExpandedDistribution)
    assert (d.batch_shape, d.event_shape) == ((2, 3), (5,))
    assert d.base_dist.batch_shape == (2, 3, 5)
    x = np.asarray(d.sample(backend.key(4)))
    assert x.shape == (2, 3, 5)
    np.testing.assert_allclose(
        np.asarray(d.log_prob(x)), np.asarray(base.log_prob(x)).sum(-1), rtol=1e-6
    )
    assert base.to_event(1).expand([1]).batch_shape == (1,)
    with pytest.raises(ValueError, match="expand"):
        dist.Exponential(np.ones((2, 5))).to_event(1).expand([3])


def test_mask_zeroes_log_prob_and_ignores_masked_values(backend: Backend) -> None:
    base = dist.Normal(np.zeros(3), 1.0)
    mask = np.array([True, False, True])
    d = base.mask(mask)
    x = np.array([0.5, np.nan, -1.0])
    lp = np.asarray(d.log_prob(x))
    expected = np.asarray(base.log_prob(np.nan_to_num(x)))
    np.testing.assert_allclose(lp, np.where(mask, expected, 0.0), rtol=1e-6)
    assert np.isfinite(lp).all()
    assert base.mask(True) is base
    assert np.asarray(base.mask(False).log_prob(np.zeros((2, 3)))).tolist() == [[0.0] * 3] * 2
    grown = dist.Normal(0.0, 1.0).mask(np.ones((2, 3), bool))
    assert grown.batch_shape == (2, 3)
    with pytest.raises(TypeError, match="boolean"):
        base.mask(np.ones(3))
    if backend.name == "jax":
        import jax

        grad = jax.grad(lambda v: d.log_prob(v).sum())(x)
        assert np.isfinite(np.asarray(grad)).all()


def test_delta_and_unit(backend: Backend) -> None:
    d = dist.Delta(np.array([1.0, 2.0]), log_density=0.5, event_dim=1)
    assert (d.batch_shape, d.event_shape) == ((), (2,))
    assert np.asarray(d.log_prob(np.array([1.0, 2.0]))) == 0.5
    assert np.asarray(d.log_prob(np.array([1.0, 3.0]))) == -np.inf
    assert np.asarray(d.sample(backend.key(0), (3,))).shape == (3, 2)
    u = dist.Unit(np.array([0.3, -1.0]))
    assert (u.batch_shape, u.event_shape) == ((2,), (0,))
    np.testing.assert_allclose(np.asarray(u.log_prob(np.empty((2, 0)))), [0.3, -1.0])


def test_enumerate_support(backend: Backend) -> None:
    assert np.asarray(dist.Bernoulli(probs=np.full(3, 0.5)).enumerate_support()).shape == (2, 3)
    values = np.asarray(dist.Categorical(probs=np.full((2, 4), 0.25)).enumerate_support(False))
    assert values.shape == (4, 1) and values[:, 0].tolist() == [0, 1, 2, 3]
    assert np.asarray(dist.Binomial(3, probs=0.5).enumerate_support()).tolist() == [0, 1, 2, 3]
    assert np.asarray(dist.BetaBinomial(1.0, 1.0, 2).enumerate_support()).tolist() == [0, 1, 2]
    assert np.asarray(dist.DiscreteUniform(2, 4).enumerate_support()).tolist() == [2, 3, 4]
    expanded = dist.Bernoulli(probs=0.5).expand([3])
    assert expanded.has_enumerate_support
    assert np.asarray(expanded.enumerate_support()).shape == (2, 3)
    with pytest.raises(NotImplementedError, match="same total_count"):
        dist.Binomial(np.array([2, 3]), probs=0.5).enumerate_support()
    with pytest.raises(NotImplementedError):
        dist.Normal(0.0, 1.0).enumerate_support()


def test_parameters_broadcast(backend: Backend) -> None:
    d = dist.Normal(np.zeros((3, 1)), np.ones(2))
    assert d.batch_shape == (3, 2)
    assert np.asarray(d.sample(backend.key(0), (4,))).shape == (4, 3, 2)
    assert np.asarray(d.log_prob(0.0)).shape == (3, 2)
    assert np.asarray(d.mean).shape == (3, 2) and np.asarray(d.variance).shape == (3, 2)
    s = dist.StudentT(np.ones((2, 1, 1)), np.zeros(3), 1.0)
    assert s.batch_shape == (2, 1, 3)
    lkj = dist.LKJCholesky(3, np.ones(4))
    assert (lkj.batch_shape, lkj.event_shape) == ((4,), (3, 3))


# -- JAX: validation and log_prob under jit, grad and vmap ----------------------------------------


def test_validation_does_not_break_jit(jax_backend: Backend) -> None:
    import jax

    @jax.jit
    def f(scale: Any, x: Any) -> Any:
        d = dist.Normal(0.0, scale)
        gamma = dist.Gamma(scale, 1.0).log_prob(x)
        return d.log_prob(x) + gamma + dist.Uniform(0.0, scale).log_prob(x)

    assert np.isfinite(np.asarray(f(2.0, 1.0)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # Out of support under jit: -inf, no warning (the value is not concrete).
        assert np.asarray(f(2.0, -1.0)) == -np.inf
        # A bad parameter under jit is not checked; the result is NaN, not an error.
        assert np.isnan(np.asarray(f(-2.0, 1.0)))

    batched = jax.vmap(lambda s: dist.Normal(0.0, s).log_prob(1.0))(np.array([1.0, 2.0]))
    assert np.asarray(batched).shape == (2,)
    keys = jax.random.split(jax.random.key(0), 3)
    draws = jax.vmap(lambda k: dist.MultivariateNormal(np.zeros(2), np.eye(2)).sample(k))(keys)
    assert draws.shape == (3, 2)
