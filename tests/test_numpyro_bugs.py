"""The bugs NumPyro's own tests found in minippl (issue 22), one test or group per bug.

Each runs on both backends and fails without its fix (on the backend that had the bug);
where NumPyro gives the answer a user compares with, a ``reference`` test checks minippl
against it on the same inputs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import finite_differences
import numpy as np
import pytest

import minippl
import minippl.distributions as dist
from backends import Backend
from minippl import handlers
from minippl.infer import MCMC, NUTS

# -- bug 2: gradients of discrete log densities at integer values ------------------------------

_PROBS = np.array([0.3, 0.6])
_LOGITS = np.array([-0.4, 0.8])
_POSITIVE = np.array([1.5, 3.0])
_SIMPLEX = np.array([[0.2, 0.3, 0.5], [0.6, 0.1, 0.3]])
_COUNTS = [[1, 1, 2], [4, 0, 0]]

# Each discrete family as a function of one of its parameters, that parameter's value, and
# integer values (what ``sample`` returns) to score.
DISCRETE: dict[str, tuple[Callable[[Any], dist.Distribution], np.ndarray, Any]] = {
    "Bernoulli-probs": (lambda t: dist.Bernoulli(probs=t), _PROBS, [1, 0]),
    "Bernoulli-logits": (lambda t: dist.Bernoulli(logits=t), _LOGITS, [1, 0]),
    "Geometric-probs": (lambda t: dist.Geometric(probs=t), _PROBS, [2, 0]),
    "Geometric-logits": (lambda t: dist.Geometric(logits=t), _LOGITS, [2, 0]),
    "Binomial-probs": (lambda t: dist.Binomial(5, probs=t), _PROBS, [2, 5]),
    "Binomial-logits": (lambda t: dist.Binomial(5, logits=t), _LOGITS, [2, 5]),
    "Categorical-probs": (lambda t: dist.Categorical(probs=t), _SIMPLEX, [2, 0]),
    "Categorical-logits": (lambda t: dist.Categorical(logits=t), np.log(_SIMPLEX), [2, 0]),
    "Poisson-rate": (lambda t: dist.Poisson(t), _POSITIVE, [2, 0]),
    "GammaPoisson-concentration": (lambda t: dist.GammaPoisson(t, 2.0), _POSITIVE, [2, 0]),
    "GammaPoisson-rate": (lambda t: dist.GammaPoisson(2.0, t), _POSITIVE, [2, 0]),
    "NegativeBinomial-probs": (lambda t: dist.NegativeBinomialProbs(3.0, t), _PROBS, [2, 0]),
    "NegativeBinomial-logits": (lambda t: dist.NegativeBinomialLogits(3.0, t), _LOGITS, [2, 0]),
    "NegativeBinomial-total_count": (
        lambda t: dist.NegativeBinomialProbs(t, 0.4),
        _POSITIVE,
        [2, 0],
    ),
    "NegativeBinomial2-mean": (lambda t: dist.NegativeBinomial2(t, 2.0), _POSITIVE, [2, 0]),
    "NegativeBinomial2-concentration": (
        lambda t: dist.NegativeBinomial2(2.0, t),
        _POSITIVE,
        [2, 0],
    ),
    "BetaBinomial-concentration1": (lambda t: dist.BetaBinomial(t, 2.0, 5), _POSITIVE, [2, 5]),
    "BetaBinomial-concentration0": (lambda t: dist.BetaBinomial(2.0, t, 5), _POSITIVE, [2, 0]),
    "Multinomial-probs": (lambda t: dist.Multinomial(4, probs=t), _SIMPLEX, _COUNTS),
    "Multinomial-logits": (lambda t: dist.Multinomial(4, logits=t), np.log(_SIMPLEX), _COUNTS),
    "MixtureSameFamily-mixing": (
        lambda t: dist.MixtureSameFamily(
            dist.Categorical(probs=t), dist.Poisson(np.array([1.0, 2.0, 3.0]))
        ),
        _SIMPLEX,
        [2, 0],
    ),
    "Bernoulli-expanded": (lambda t: dist.Bernoulli(probs=t).expand((3, 2)), _PROBS, [1, 0]),
    "Bernoulli-to_event": (lambda t: dist.Bernoulli(probs=t).to_event(1), _PROBS, [1, 0]),
    "Bernoulli-masked": (
        lambda t: dist.Bernoulli(probs=t).mask(np.array([True, False])),
        _PROBS,
        [1, 0],
    ),
}


@pytest.mark.parametrize("case", sorted(DISCRETE))
def test_bug2_discrete_log_prob_gradient_at_integer_values(b64: Backend, case: str) -> None:
    """The gradient with respect to each parameter, at integer values, is the finite
    difference of the same log density (on JAX, xlogy's derivative rule multiplies the
    value's tangent, which for an integer value is a float0 that raises)."""
    make, theta, values = DISCRETE[case]
    xp = b64.xp
    value = xp.asarray(np.array(values))
    assert "int" in str(value.dtype)

    def total(t: Any) -> Any:
        return xp.sum(make(t).log_prob(value))

    grad = np.asarray(b64.grad(total)(xp.asarray(theta)))
    expected = finite_differences.value_and_grad(lambda t: total(xp.asarray(t)))(theta)[1]
    # JAX's betaln is accurate to about 1e-7 relative, which finite differences magnify.
    np.testing.assert_allclose(grad, expected, rtol=2e-3, atol=1e-6)


def test_bug2_gradient_of_sampled_value(backend: Backend) -> None:
    """The issue's case: the gradient of ``log_prob`` at a draw of the same distribution."""
    for make in (lambda p: dist.Bernoulli(probs=p), lambda p: dist.Geometric(probs=p)):
        k = make(0.3).sample(backend.key(0), (5,))
        grad = backend.grad(lambda p, k=k, make=make: backend.xp.sum(make(p).log_prob(k)))(0.3)
        assert np.isfinite(float(grad))


def beta_bernoulli(flips: Any) -> None:
    p = minippl.sample("p", dist.Beta(1.0, 1.0))
    with minippl.plate("flips", flips.shape[0]):
        minippl.sample("flip", dist.Bernoulli(probs=p), obs=flips)


def test_bug2_beta_bernoulli_under_nuts(backend: Backend) -> None:
    """7 heads in 10 integer flips under a flat prior: the posterior is Beta(8, 4), mean 2/3,
    sd 0.131; 400 draws put the mean within 0.05 (about four Monte Carlo errors)."""
    flips = backend.xp.asarray(np.array([1, 1, 0, 1, 1, 1, 0, 1, 0, 1]))
    mcmc = MCMC(NUTS(beta_bernoulli), num_warmup=300, num_samples=400, progress_bar=False)
    mcmc.run(backend.key(1), flips)
    draws = np.asarray(mcmc.get_samples()["p"])
    assert abs(draws.mean() - 8 / 12) < 0.05
    assert abs(draws.std() - np.sqrt(8 * 4 / (12**2 * 13))) < 0.03


def beta_geometric(failures: Any) -> None:
    p = minippl.sample("p", dist.Beta(1.0, 1.0))
    with minippl.plate("trials", failures.shape[0]):
        minippl.sample("failures", dist.Geometric(probs=p), obs=failures)


def dirichlet_multinomial(counts: Any) -> None:
    p = minippl.sample("p", dist.Dirichlet(np.ones(3)))
    with minippl.plate("rows", counts.shape[0]):
        minippl.sample("counts", dist.Multinomial(6, probs=p), obs=counts)


# A flat prior and integer data; the exact posterior mean of ``p`` (Beta(1 + 8, 1 + 11) for
# 11 failures before 8 successes, Dirichlet(1 + 5, 1 + 3, 1 + 4) for the counts' sums).
CONJUGATE = {
    "Geometric": (beta_geometric, [0, 2, 1, 4, 0, 3, 1, 0], 9 / 21),
    "Multinomial": (dirichlet_multinomial, [[3, 1, 2], [2, 2, 2]], np.array([6, 4, 5]) / 15),
}


@pytest.mark.parametrize("family", sorted(CONJUGATE))
def test_bug2_other_families_with_integer_data_under_nuts(backend: Backend, family: str) -> None:
    """The other families whose gradient failed, in a model: posterior sds about 0.11, so
    400 draws put the means within 0.05."""
    model, data, exact_mean = CONJUGATE[family]
    mcmc = MCMC(NUTS(model), num_warmup=300, num_samples=400, progress_bar=False)
    mcmc.run(backend.key(2), backend.xp.asarray(np.array(data)))
    draws = np.asarray(mcmc.get_samples()["p"])
    np.testing.assert_array_less(np.abs(draws.mean(0) - exact_mean), 0.05)


# (family at a probability or rate of 0 or 1, that parameter, a count, the derivative of the
# log mass there): the terms with a zero count drop out, the others are plain logs.
AT_THE_EDGES: dict[str, tuple[Callable[[Any], dist.Distribution], float, Any, float]] = {
    "Bernoulli-probs-0": (lambda p: dist.Bernoulli(probs=p), 0.0, 0, -1.0),
    "Bernoulli-probs-1": (lambda p: dist.Bernoulli(probs=p), 1.0, 1, 1.0),
    "Binomial-probs-0": (lambda p: dist.Binomial(3, probs=p), 0.0, 0, -3.0),
    "Binomial-probs-1": (lambda p: dist.Binomial(3, probs=p), 1.0, 3, 3.0),
    "Geometric-probs-1": (lambda p: dist.Geometric(probs=p), 1.0, 0, 1.0),
    "Poisson-rate-0": (lambda r: dist.Poisson(r), 0.0, 0, -1.0),
    "NegativeBinomial-probs-0": (lambda p: dist.NegativeBinomialProbs(2.0, p), 0.0, 0, -2.0),
    "Multinomial-probs-0": (lambda p: dist.Multinomial(2, probs=[p, 1 - p]), 0.0, [0, 2], -2.0),
}


@pytest.mark.parametrize("case", sorted(AT_THE_EDGES))
def test_bug2_discrete_gradient_at_a_probability_of_0_or_1(backend: Backend, case: str) -> None:
    """Where a parameter sits at its edge (a float32 sigmoid rounds to 1), the gradient is the
    true one: JAX's xlogy rule would take 0/0 for the term whose count is 0."""
    make, param, count, expected = AT_THE_EDGES[case]
    xp = backend.xp
    value = xp.asarray(np.array(count))
    grad = backend.grad(lambda p: xp.sum(make(p).log_prob(value)))(param)
    np.testing.assert_allclose(float(grad), expected, rtol=1e-6)


@pytest.mark.reference
@pytest.mark.parametrize("family", ["Bernoulli", "Geometric"])
def test_bug2_gradient_matches_numpyro(jax_backend: Backend, family: str) -> None:
    pytest.importorskip("numpyro")
    import jax
    import jax.numpy as jnp
    import numpyro.distributions as ndist

    k = jnp.array([0, 1, 1] if family == "Bernoulli" else [0, 1, 3])
    ours = jax.grad(lambda p: getattr(dist, family)(probs=p).log_prob(k).sum())(0.3)
    theirs = jax.grad(lambda p: getattr(ndist, family)(probs=p).log_prob(k).sum())(0.3)
    np.testing.assert_allclose(float(ours), float(theirs), rtol=1e-6)


# -- bug 4: NUTS on a potential function started from a bare array ------------------------------


def _shifted_gaussian(backend: Backend) -> Callable[[Any], Any]:
    """The potential of a standard normal around (1, 1)."""
    return lambda z: 0.5 * backend.xp.sum((z - 1.0) ** 2)


def test_bug4_potential_fn_with_an_array_init_params(backend: Backend) -> None:
    """The samples of an array-valued start are arrays, one row per draw (NumPyro's form),
    not a dict of sites."""
    kernel = NUTS(potential_fn=_shifted_gaussian(backend))
    mcmc = MCMC(kernel, num_warmup=200, num_samples=300, progress_bar=False)
    mcmc.run(backend.key(0), init_params=backend.xp.zeros(2), extra_fields=("potential_energy",))
    draws = np.asarray(mcmc.get_samples())
    assert draws.shape == (300, 2)
    # sd 1 and an ESS above 100: each mean within about 3.5 Monte Carlo errors.
    np.testing.assert_array_less(np.abs(draws.mean(0) - 1.0), 0.35)
    assert np.asarray(mcmc.get_extra_fields()["potential_energy"]).shape == (300,)


def test_bug4_potential_fn_with_an_array_per_chain(backend: Backend) -> None:
    kernel = NUTS(potential_fn=_shifted_gaussian(backend))
    mcmc = MCMC(
        kernel,
        num_warmup=50,
        num_samples=40,
        num_chains=2,
        chain_method="sequential",
        progress_bar=False,
    )
    mcmc.run(backend.key(1), init_params=backend.xp.zeros((2, 3)))
    assert np.asarray(mcmc.get_samples(group_by_chain=True)).shape == (2, 40, 3)
    assert np.asarray(mcmc.get_samples()).shape == (80, 3)


@pytest.mark.reference
def test_bug4_matches_numpyro_draw_for_draw(jax_backend: Backend, x64: None) -> None:
    """With Stan's extra U-turn checks and the dense shrinkage off, minippl's NUTS makes
    NumPyro's choices; on one potential in float64 the draws agree."""
    pytest.importorskip("numpyro")
    import jax
    import numpyro.infer

    potential = _shifted_gaussian(jax_backend)
    ours = MCMC(
        NUTS(potential_fn=potential, robust_u_turn=False, dense_shrinkage=False),
        num_warmup=100,
        num_samples=100,
        progress_bar=False,
    )
    ours.run(jax.random.key(0), init_params=jax.numpy.zeros(2))
    theirs = numpyro.infer.MCMC(
        numpyro.infer.NUTS(potential_fn=potential),
        num_warmup=100,
        num_samples=100,
        progress_bar=False,
    )
    theirs.run(jax.random.key(0), init_params=jax.numpy.zeros(2))
    np.testing.assert_allclose(
        np.asarray(ours.get_samples()), np.asarray(theirs.get_samples()), atol=1e-6
    )


# -- bug 5: an expansion of an expansion is checked against the inner shape --------------------

LEGAL_EXPANSIONS = [((2,), (3, 2)), ((1,), (3,)), ((2, 1), (4, 2, 3)), ((3,), (3,))]
ILLEGAL_EXPANSIONS = [((2,), (3,)), ((2,), (2, 1)), ((2, 3), (3,)), ((2,), ())]


@pytest.mark.parametrize("inner, outer", ILLEGAL_EXPANSIONS)
def test_bug5_expanding_an_expansion_to_a_shape_it_cannot_broadcast_to_raises(
    backend: Backend, inner: tuple[int, ...], outer: tuple[int, ...]
) -> None:
    """The message names both shapes; expanding the base alone would let (2,) grow to (3,)."""
    expanded = dist.Normal(0.0, 1.0).expand(inner)
    with pytest.raises(ValueError, match=re.escape(f"batch shape {inner} to {outer}")):
        expanded.expand(outer)


@pytest.mark.parametrize("inner, outer", LEGAL_EXPANSIONS)
def test_bug5_legal_expansions_of_an_expansion(
    backend: Backend, inner: tuple[int, ...], outer: tuple[int, ...]
) -> None:
    d = dist.Normal(backend.xp.asarray(0.5), 1.0).expand(inner).expand(outer)
    assert d.batch_shape == outer
    x = d.sample(backend.key(0), (4,))
    assert tuple(x.shape) == (4,) + outer
    np.testing.assert_allclose(
        np.asarray(d.log_prob(x)), np.asarray(dist.Normal(0.5, 1.0).log_prob(x)), rtol=1e-6
    )


@pytest.mark.reference
@pytest.mark.parametrize("inner, outer", LEGAL_EXPANSIONS + ILLEGAL_EXPANSIONS)
def test_bug5_expansions_match_numpyro(
    jax_backend: Backend, inner: tuple[int, ...], outer: tuple[int, ...]
) -> None:
    """The same expansions are legal, and those draw NumPyro's numbers for the same key."""
    pytest.importorskip("numpyro")
    import jax
    import numpyro.distributions as ndist

    try:
        theirs = ndist.Normal(0.5, 1.0).expand(inner).expand(outer)
    except ValueError:
        with pytest.raises(ValueError):
            dist.Normal(0.5, 1.0).expand(inner).expand(outer)
        return
    ours = dist.Normal(0.5, 1.0).expand(inner).expand(outer)
    assert ours.batch_shape == theirs.batch_shape
    key = jax.random.key(2)
    np.testing.assert_array_equal(np.asarray(ours.sample(key, (3,))), theirs.sample(key, (3,)))


# -- bug 6: validation of a concrete parameter inside jit ----------------------------------------

# Distributions with one concrete parameter outside its constraint, each built from ``d``:
# minippl's ``dist`` or NumPyro's.
INVALID: dict[str, Callable[[Any], Any]] = {
    "Normal-scale": lambda d: d.Normal(0.0, -1.0, validate_args=True),
    "Normal-array-scale": lambda d: d.Normal(0.0, np.array([1.0, -1.0]), validate_args=True),
    "Normal-number-scale-array-loc": lambda d: d.Normal(np.zeros(3), -1.0, validate_args=True),
    "Gamma-concentration": lambda d: d.Gamma(-1.0, 1.0, validate_args=True),
    "Bernoulli-probs": lambda d: d.Bernoulli(probs=1.5, validate_args=True),
    "Dirichlet-concentration": lambda d: d.Dirichlet(np.array([1.0, -1.0]), validate_args=True),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_bug6_invalid_concrete_parameter_raises_inside_jit(backend: Backend, case: str) -> None:
    """The check runs at once even while ``jit`` traces: a traced comparison of a constant
    cannot decide, and the density would come out NaN."""
    make = INVALID[case]
    with pytest.raises(ValueError, match="must satisfy the constraint"):
        backend.jit(lambda x: backend.xp.sum(make(dist).log_prob(x)))(0.5)


def test_bug6_global_validation_inside_jit(backend: Backend) -> None:
    with dist.validation_enabled():
        with pytest.raises(ValueError, match="'scale'"):
            backend.jit(lambda x: dist.Normal(0.0, -1.0).log_prob(x))(0.5)
        lp = backend.jit(lambda x: dist.Normal(0.0, 2.0).log_prob(x))(0.5)
    assert np.isclose(float(lp), -0.5 * np.log(2 * np.pi) - np.log(2.0) - 0.5**2 / 8)


def test_bug6_traced_parameter_stays_unchecked(jax_backend: Backend) -> None:
    """A parameter traced by ``jit`` has no value to check, as in NumPyro: no error, NaN."""
    import jax

    lp = jax.jit(lambda s: dist.Normal(0.0, s, validate_args=True).log_prob(0.5))(-1.0)
    assert np.isnan(float(lp))


@pytest.mark.reference
@pytest.mark.parametrize("case", sorted(INVALID))
def test_bug6_raises_inside_jit_as_numpyro(jax_backend: Backend, case: str) -> None:
    pytest.importorskip("numpyro")
    import jax
    import numpyro.distributions as ndist

    make = INVALID[case]
    for library in (ndist, dist):
        with pytest.raises(ValueError):
            jax.jit(lambda x, d=library: make(d).log_prob(x).sum())(0.5)


# -- bug 7: the Beta density's gradient at 0 and 1 with a concentration 1 -----------------------

# (concentration1, concentration0, value, d/dvalue log density): Beta(1, b) is b (1 - x)^(b-1)
# and Beta(a, 1) is a x^(a-1), so the derivatives have closed forms at the ends.
BETA_AT_THE_ENDS = [
    (1.0, 2.0, 0.0, -1.0),
    (1.0, 3.0, 0.0, -2.0),
    (2.0, 1.0, 1.0, 1.0),
    (3.0, 1.0, 1.0, 2.0),
    (1.0, 1.0, 0.0, 0.0),
    (1.0, 1.0, 1.0, 0.0),
]


@pytest.mark.parametrize("a, b, x, expected", BETA_AT_THE_ENDS)
def test_bug7_beta_gradient_at_the_ends(
    backend: Backend, a: float, b: float, x: float, expected: float
) -> None:
    """On JAX, xlogy's own derivative rule divides the concentration minus 1 (0) by the
    value (0): NaN."""
    grad = backend.grad(lambda v: dist.Beta(a, b).log_prob(v))(x)
    np.testing.assert_allclose(float(grad), expected, rtol=1e-6, atol=1e-6)


def test_bug7_dirichlet_gradient_on_a_face(backend: Backend) -> None:
    """The same term in the Dirichlet: on the face where the first and third coordinates are
    0, with concentration 1 there, the derivative in the value is (0, 1/x_2, 0)."""
    xp = backend.xp
    concentration = xp.asarray(np.array([1.0, 2.0, 1.0]))
    grad = backend.grad(lambda v: dist.Dirichlet(concentration).log_prob(v))(
        xp.asarray(np.array([0.0, 1.0, 0.0]))
    )
    np.testing.assert_allclose(np.asarray(grad), [0.0, 1.0, 0.0], atol=1e-6)


def test_bug7_beta_gradients_inside_are_unchanged(b64: Backend) -> None:
    """Away from the ends, with concentration 1 too, the gradients in the value and in both
    concentrations are the closed forms (the concentration 1 keeps its log(x) derivative)."""
    from scipy.special import digamma

    def log_density(params: Any) -> Any:
        return dist.Beta(params[0], params[1]).log_prob(params[2])

    for a, b, x in [(1.0, 2.0, 0.3), (2.5, 1.0, 0.9), (1.0, 1.0, 0.5)]:
        grad = np.asarray(b64.grad(log_density)(b64.xp.asarray(np.array([a, b, x]))))
        total = digamma(a + b)
        expected = [
            np.log(x) - digamma(a) + total,
            np.log1p(-x) - digamma(b) + total,
            (a - 1) / x - (b - 1) / (1 - x),
        ]
        np.testing.assert_allclose(grad, expected, rtol=1e-10)


def test_bug7_beta_gradient_of_a_value_shared_by_a_batch(backend: Backend) -> None:
    """One value scored by a batch of Betas, one of them at the edge: the gradient sums the
    batch's closed forms (on NumPy, autograd's ``where`` sends no gradient back to an
    argument smaller than its result, so the value is broadcast first)."""
    concentration1 = backend.xp.asarray(np.array([1.0, 3.0, 1.0]))
    grad = backend.grad(lambda v: backend.xp.sum(dist.Beta(concentration1, 2.0).log_prob(v)))
    # Beta(1, 2): -1/(1 - x); Beta(3, 2): 2/x - 1/(1 - x).
    np.testing.assert_allclose(float(grad(0.2)), 2 * -1.25 + (10 - 1.25), rtol=1e-6)
    edge = backend.grad(lambda v: backend.xp.sum(dist.Beta(1.0, backend.xp.ones(3)).log_prob(v)))
    np.testing.assert_allclose(float(edge(0.0)), 0.0, atol=1e-6)


@pytest.mark.reference
def test_bug7_beta_gradients_inside_match_numpyro(jax_backend: Backend) -> None:
    pytest.importorskip("numpyro")
    import jax
    import numpyro.distributions as ndist

    for a, b, x in [(1.0, 2.0, 1e-3), (2.0, 1.0, 0.999), (0.5, 3.0, 0.2)]:
        ours = jax.grad(lambda p: dist.Beta(p[0], p[1]).log_prob(p[2]))(jax.numpy.array([a, b, x]))
        theirs = jax.grad(lambda p: ndist.Beta(p[0], p[1]).log_prob(p[2]))(
            jax.numpy.array([a, b, x])
        )
        np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-5)


# -- bug 1's family: every handler given a number behaves the same built inside jit ---------------


def _regression(y: Any = None) -> Any:
    a = minippl.sample("a", dist.Normal(0.0, 1.0))
    with minippl.plate("n", 3):
        minippl.sample("y", dist.Normal(a, 1.0), obs=y)
    minippl.factor("f", 1.5)
    return a


def _plated(size: Any, subsample_size: Any = None) -> Any:
    with minippl.plate("p", size, subsample_size=subsample_size):
        return minippl.sample("z", dist.Normal(0.0, 1.0))


def _with_plate_stack() -> Any:
    with minippl.plate_stack("ps", [2, 3]):
        return minippl.sample("z", dist.Normal(0.0, 1.0))


# Each a model wrapped in a handler given numbers (Python and NumPy), called with the data.
WITH_NUMBERS: dict[str, Callable[[Any], Any]] = {
    "scale-float": lambda y: handlers.scale(_regression, scale=2.0)(y),
    "scale-int": lambda y: handlers.scale(_regression, scale=3)(y),
    "scale-array": lambda y: handlers.scale(_regression, scale=np.array([1.0, 2.0, 3.0]))(y),
    "mask-False": lambda y: handlers.mask(_regression, mask=False)(y),
    "mask-True": lambda y: handlers.mask(_regression, mask=True)(y),
    "mask-array": lambda y: handlers.mask(_regression, mask=np.array([True, False, True]))(y),
    "condition-float": lambda y: handlers.condition(_regression, data={"a": 0.5})(y),
    "condition-int": lambda y: handlers.condition(_regression, data={"a": 1})(y),
    "substitute-float": lambda y: handlers.substitute(_regression, data={"a": 0.5})(y),
    "do-float": lambda y: handlers.do(_regression, data={"a": 0.5})(y),
    "seed-int": lambda y: handlers.seed(_regression, rng_seed=3)(y),
    "seed-numpy-int": lambda y: handlers.seed(_regression, rng_seed=np.int32(3))(y),
    "plate-numpy-size": lambda y: _plated(np.int64(3)),
    "plate-subsample": lambda y: _plated(5, 2),
    "plate-numpy-subsample": lambda y: _plated(np.int64(5), np.int64(2)),
    "scale-over-subsample": lambda y: handlers.scale(lambda: _plated(5, 2), scale=0.5)(),
    "plate_stack": lambda y: _with_plate_stack(),
    "lift-prior": lambda y: handlers.lift(
        lambda: minippl.param("w", 1.0) * minippl.sample("q", dist.Normal(0.0, 1.0)),
        prior={"w": dist.Normal(0.0, 1.0)},
    )(),
    "param-substituted": lambda y: handlers.substitute(
        lambda: minippl.param("w", 2.0), data={"w": 3.0}
    )(),
}


def _log_joint_and_values(backend: Backend, run: Callable[[Any], Any], y: Any) -> Any:
    """Every site's weighted log density (scale and mask applied) and value, seeded."""
    xp = backend.xp
    trace = handlers.trace(handlers.seed(run, 0)).get_trace(y)
    out = {}
    for name, site in trace.items():
        if site["type"] == "sample":
            log_prob = site["fn"].log_prob(site["value"])
            if site["scale"] is not None:
                log_prob = log_prob * site["scale"]
            out[name] = (xp.sum(log_prob), site["value"])
        elif site["type"] == "param":
            out[name] = site["value"]
    return out


@pytest.mark.parametrize("case", sorted(WITH_NUMBERS))
def test_handlers_given_numbers_inside_jit_act_as_eagerly(backend: Backend, case: str) -> None:
    """NumPyro's handlers are built inside compiled functions; a check on a number there
    must decide on the host, not on a traced comparison (bug 1 is ``scale``'s)."""
    run = WITH_NUMBERS[case]
    y = backend.xp.asarray(np.array([0.1, -0.2, 0.3]))
    eager = _log_joint_and_values(backend, run, y)
    compiled = backend.jit(lambda y: _log_joint_and_values(backend, run, y))(y)
    assert eager and set(eager) == set(compiled)
    leaves = zip(backend.tree_flatten(compiled)[0], backend.tree_flatten(eager)[0], strict=True)
    for got, expected in leaves:
        np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-6)


# Each a handler given a concrete number it must refuse, and the error it raises eagerly.
REFUSED: dict[str, tuple[Callable[[], Any], type[Exception], str]] = {
    "scale-zero": (lambda: handlers.scale(_regression, scale=0.0), ValueError, "positive"),
    "scale-negative-entry": (
        lambda: handlers.scale(_regression, scale=np.array([1.0, -1.0, 1.0])),
        ValueError,
        "positive",
    ),
    "mask-int": (
        lambda: handlers.mask(_regression, mask=np.array([1, 0, 1])),
        ValueError,
        "boolean",
    ),
    "seed-too-large": (lambda: handlers.seed(_regression, rng_seed=2**70), ValueError, "2\\*\\*63"),
    "seed-float": (lambda: handlers.seed(_regression, rng_seed=1.5), TypeError, "rng_seed"),
    "plate-size-zero": (lambda: _plated(0), ValueError, "size"),
    "plate-size-float": (lambda: _plated(3.0), TypeError, "size"),
    "plate-subsample-too-large": (lambda: _plated(3, 5), ValueError, "subsample_size"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_handlers_refuse_bad_numbers_inside_jit_as_eagerly(backend: Backend, case: str) -> None:
    build, error, message = REFUSED[case]
    with pytest.raises(error, match=message):
        build()
    with pytest.raises(error, match=message):
        backend.jit(lambda x: (build(), x)[1])(backend.xp.zeros(()))


@pytest.mark.reference
def test_handlers_given_numbers_inside_jit_match_numpyro(jax_backend: Backend) -> None:
    """The log joint of a model under scale, mask and condition, all built inside ``jit``."""
    numpyro = pytest.importorskip("numpyro")
    import jax
    import numpyro.distributions as ndist
    from numpyro.infer.util import log_density as numpyro_log_density

    from minippl.infer.util import log_density

    def model(ppl: Any, d: Any, y: Any) -> None:
        a = ppl.sample("a", d.Normal(0.0, 1.0))
        with ppl.plate("n", 3):
            ppl.sample("y", d.Normal(a, 1.0), obs=y)

    def wrapped(ppl: Any, d: Any) -> Callable[[Any], None]:
        h = ppl.handlers
        inner = h.mask(lambda y: model(ppl, d, y), mask=np.array([True, False, True]))
        return h.condition(h.scale(inner, scale=2.0), data={"a": 0.5})

    def ours(y: Any) -> Any:
        return log_density(wrapped(minippl, dist), (y,), {}, {})[0]

    def theirs(y: Any) -> Any:
        return numpyro_log_density(wrapped(numpyro, ndist), (y,), {}, {})[0]

    y = jax.numpy.array([0.1, -0.2, 0.3])
    np.testing.assert_allclose(float(jax.jit(ours)(y)), float(jax.jit(theirs)(y)), rtol=1e-6)
