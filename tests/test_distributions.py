"""Distributions against SciPy, on both backends.

* ``log_prob`` agrees with ``scipy.stats`` at random parameters and values: 1e-6 relative in
  float64, 1e-4 in float32 (relative to ``max(1, |expected|)``, so values near 0 are compared
  absolutely).
* Samples pass a Kolmogorov-Smirnov (continuous) or chi-square (discrete) test against SciPy
  at alpha = 1e-3; ``mean``/``variance`` equal SciPy's and match the sample moments.

All draws use fixed seeds, so every run sees the same numbers.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import scipy.stats as st

import minippl.distributions as dist
from backends import Backend
from minippl.distributions import transforms

ALPHA = 1e-3
N_SAMPLES = 3000


@pytest.fixture(autouse=True)
def _validation() -> Iterator[None]:
    """Tests run with validation on, as NumPyro users run theirs."""
    from minippl.distributions import distribution

    previous = distribution.validation_enabled()
    dist.enable_validation(True)
    yield
    dist.enable_validation(previous)


@pytest.fixture(params=["float32", "float64"])
def precision(request: pytest.FixtureRequest, backend: Backend) -> Iterator[tuple[Any, float]]:
    """(dtype, tolerance); float64 on JAX switches x64 on for the test and back off after."""
    if request.param == "float64":
        previous = _x64_on(backend, True)
        yield np.float64, 1e-6
        _x64_on(backend, previous)
    else:
        yield np.float32, 1e-4


def _x64_on(backend: Backend, on: bool) -> bool:
    if backend.name != "jax":
        return True
    import jax

    previous = bool(jax.config.jax_enable_x64)
    jax.config.update("jax_enable_x64", on)
    return previous


def assert_close(actual: Any, expected: Any, tol: float) -> None:
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    both_inf = np.isinf(expected) & (actual == expected)
    err = np.abs(actual - expected) / np.maximum(1.0, np.abs(expected))
    bad = ~both_inf & ~(err <= tol)
    assert not bad.any(), (
        f"max error {np.nanmax(np.where(both_inf, 0, err))} > {tol}\n"
        f"actual {actual[bad][:5]}\nexpected {expected[bad][:5]}"
    )


# -- log_prob against scipy ---------------------------------------------------------------------

U = np.random.default_rng


@dataclass
class LogProbCase:
    """A distribution, random parameters for it, and the SciPy log density to match."""

    name: str
    params: Callable[[np.random.Generator], dict[str, np.ndarray]]
    make: Callable[..., dist.Distribution]
    reference: Callable[..., np.ndarray]  # (value, **params) -> log density, in float64
    values: Callable[[np.random.Generator, dict[str, np.ndarray]], np.ndarray]
    kwargs: dict[str, Any] = field(default_factory=dict)


def _pos(lo: float, hi: float, n: int = 12) -> Callable[[np.random.Generator], np.ndarray]:
    return lambda rng: rng.uniform(lo, hi, n)


def _params(**gens: Callable[[np.random.Generator], np.ndarray]) -> Callable[..., Any]:
    return lambda rng: {k: g(rng) for k, g in gens.items()}


def _from(frozen: Callable[..., Any]) -> Callable[..., np.ndarray]:
    """Values drawn from the SciPy distribution at the case's parameters."""

    def draw(rng: np.random.Generator, p: dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(frozen(**p).rvs(random_state=rng), dtype=np.float64)

    return draw


def _reference(frozen: Callable[..., Any], discrete: bool = False) -> Callable[..., np.ndarray]:
    def ref(value: np.ndarray, **p: np.ndarray) -> np.ndarray:
        d = frozen(**p)
        return np.asarray(d.logpmf(value) if discrete else d.logpdf(value))

    return ref


def _case(
    name: str,
    make: Callable[..., dist.Distribution],
    params: Callable[..., Any],
    frozen: Callable[..., Any],
    discrete: bool = False,
    values: Callable[..., np.ndarray] | None = None,
) -> LogProbCase:
    return LogProbCase(
        name, params, make, _reference(frozen, discrete), values or _from(frozen)
    )


def _counts(rng: np.random.Generator, p: dict[str, np.ndarray]) -> np.ndarray:
    return rng.integers(0, p["n"].astype(int) + 1).astype(np.float64)


LOC = _pos(-3, 3)
SCALE = _pos(0.3, 3)
CONC = _pos(0.5, 5)
PROBS = _pos(0.05, 0.95)
LOGITS = _pos(-3, 3)

LOG_PROB_CASES = [
    _case("Normal", dist.Normal, _params(loc=LOC, scale=SCALE),
          lambda loc, scale: st.norm(loc, scale)),
    _case("HalfNormal", dist.HalfNormal, _params(scale=SCALE),
          lambda scale: st.halfnorm(scale=scale)),
    _case("Cauchy", dist.Cauchy, _params(loc=LOC, scale=SCALE),
          lambda loc, scale: st.cauchy(loc, scale)),
    _case("HalfCauchy", dist.HalfCauchy, _params(scale=SCALE),
          lambda scale: st.halfcauchy(scale=scale)),
    _case("StudentT", dist.StudentT, _params(df=_pos(1, 10), loc=LOC, scale=SCALE),
          lambda df, loc, scale: st.t(df, loc, scale)),
    _case("Laplace", dist.Laplace, _params(loc=LOC, scale=SCALE),
          lambda loc, scale: st.laplace(loc, scale)),
    _case("Logistic", dist.Logistic, _params(loc=LOC, scale=SCALE),
          lambda loc, scale: st.logistic(loc, scale)),
    _case("LogNormal", dist.LogNormal, _params(loc=_pos(-1, 1), scale=_pos(0.3, 1.5)),
          lambda loc, scale: st.lognorm(scale, scale=np.exp(loc))),
    _case("Exponential", dist.Exponential, _params(rate=SCALE),
          lambda rate: st.expon(scale=1 / rate)),
    _case("Gamma", dist.Gamma, _params(concentration=CONC, rate=SCALE),
          lambda concentration, rate: st.gamma(concentration, scale=1 / rate)),
    _case("InverseGamma", dist.InverseGamma, _params(concentration=CONC, rate=SCALE),
          lambda concentration, rate: st.invgamma(concentration, scale=rate)),
    _case("Beta", dist.Beta, _params(concentration1=CONC, concentration0=CONC),
          lambda concentration1, concentration0: st.beta(concentration1, concentration0),
          values=lambda rng, p: rng.uniform(0.01, 0.99, 12)),
    _case("Uniform", dist.Uniform, _params(low=_pos(-3, 0), high=_pos(0.5, 3)),
          lambda low, high: st.uniform(low, high - low)),
    _case("Chi2", dist.Chi2, _params(df=_pos(1, 8)), lambda df: st.chi2(df)),
    _case("Weibull", dist.Weibull, _params(scale=SCALE, concentration=_pos(0.5, 4)),
          lambda scale, concentration: st.weibull_min(concentration, scale=scale)),
    _case("Gumbel", dist.Gumbel, _params(loc=LOC, scale=SCALE),
          lambda loc, scale: st.gumbel_r(loc, scale)),
    _case("TruncatedNormal(two-sided)",
          lambda loc, scale, low, width: dist.TruncatedNormal(
              loc, scale, low=low, high=low + width),
          _params(loc=LOC, scale=SCALE, low=_pos(-2, 2), width=_pos(0.5, 3)),
          lambda loc, scale, low, width: st.truncnorm(
              (low - loc) / scale, (low + width - loc) / scale, loc, scale)),
    _case("TruncatedNormal(low)",
          lambda loc, scale, low: dist.TruncatedNormal(loc, scale, low=low),
          _params(loc=LOC, scale=SCALE, low=_pos(-2, 4)),
          lambda loc, scale, low: st.truncnorm((low - loc) / scale, np.inf, loc, scale)),
    _case("TruncatedNormal(high)",
          lambda loc, scale, high: dist.TruncatedNormal(loc, scale, high=high),
          _params(loc=LOC, scale=SCALE, high=_pos(-4, 2)),
          lambda loc, scale, high: st.truncnorm(-np.inf, (high - loc) / scale, loc, scale)),
    _case("FoldedNormal", lambda loc, scale: dist.FoldedDistribution(dist.Normal(loc, scale)),
          _params(loc=LOC, scale=SCALE),
          lambda loc, scale: st.foldnorm(np.abs(loc) / scale, scale=scale),
          values=lambda rng, p: rng.uniform(0.01, 5, 12)),
    _case("Transformed(Normal, affine+exp)",
          lambda loc, scale: dist.TransformedDistribution(
              dist.Normal(0.0, 1.0).expand([12]),
              [transforms.AffineTransform(loc, scale), transforms.ExpTransform()]),
          _params(loc=_pos(-1, 1), scale=_pos(0.3, 1.5)),
          lambda loc, scale: st.lognorm(scale, scale=np.exp(loc))),
    # discrete
    _case("Bernoulli(probs)", lambda probs: dist.Bernoulli(probs=probs), _params(probs=PROBS),
          lambda probs: st.bernoulli(probs), discrete=True),
    _case("Bernoulli(logits)", lambda logits: dist.Bernoulli(logits=logits),
          _params(logits=LOGITS), lambda logits: st.bernoulli(1 / (1 + np.exp(-logits))),
          discrete=True),
    _case("Binomial(probs)", lambda n, probs: dist.Binomial(n, probs=probs),
          _params(n=lambda rng: rng.integers(1, 30, 12).astype(float), probs=PROBS),
          lambda n, probs: st.binom(n, probs), discrete=True, values=_counts),
    _case("Binomial(logits)", lambda n, logits: dist.Binomial(n, logits=logits),
          _params(n=lambda rng: rng.integers(1, 30, 12).astype(float), logits=LOGITS),
          lambda n, logits: st.binom(n, 1 / (1 + np.exp(-logits))), discrete=True,
          values=_counts),
    _case("Poisson", dist.Poisson, _params(rate=_pos(0.5, 20)),
          lambda rate: st.poisson(rate), discrete=True),
    _case("NegativeBinomial(probs)", lambda n, probs: dist.NegativeBinomial(n, probs=probs),
          _params(n=_pos(0.5, 10), probs=PROBS),
          lambda n, probs: st.nbinom(n, 1 - probs), discrete=True),
    _case("NegativeBinomial(logits)", lambda n, logits: dist.NegativeBinomial(n, logits=logits),
          _params(n=_pos(0.5, 10), logits=LOGITS),
          lambda n, logits: st.nbinom(n, 1 / (1 + np.exp(logits))), discrete=True),
    _case("NegativeBinomial2", dist.NegativeBinomial2,
          _params(mean=_pos(0.5, 20), concentration=_pos(0.5, 10)),
          lambda mean, concentration: st.nbinom(
              concentration, concentration / (concentration + mean)),
          discrete=True),
    _case("GammaPoisson", dist.GammaPoisson, _params(concentration=CONC, rate=SCALE),
          lambda concentration, rate: st.nbinom(concentration, rate / (1 + rate)), discrete=True),
    _case("Geometric(probs)", lambda probs: dist.Geometric(probs=probs), _params(probs=PROBS),
          lambda probs: st.geom(probs, loc=-1), discrete=True),
    _case("Geometric(logits)", lambda logits: dist.Geometric(logits=logits),
          _params(logits=LOGITS), lambda logits: st.geom(1 / (1 + np.exp(-logits)), loc=-1),
          discrete=True),
    _case("BetaBinomial", lambda a, b, n: dist.BetaBinomial(a, b, n),
          _params(a=CONC, b=CONC, n=lambda rng: rng.integers(1, 30, 12).astype(float)),
          lambda a, b, n: st.betabinom(n, a, b), discrete=True, values=_counts),
    _case("DiscreteUniform", lambda low, width: dist.DiscreteUniform(low, low + width),
          _params(low=lambda rng: rng.integers(-5, 5, 12).astype(float),
                  width=lambda rng: rng.integers(0, 8, 12).astype(float)),
          lambda low, width: st.randint(low, low + width + 1), discrete=True),
]


def _cast(params: dict[str, np.ndarray], dtype: Any) -> dict[str, np.ndarray]:
    return {k: np.asarray(v, dtype=dtype) for k, v in params.items()}


@pytest.mark.parametrize("case", LOG_PROB_CASES, ids=lambda c: c.name)
def test_log_prob_matches_scipy(
    case: LogProbCase, backend: Backend, precision: tuple[Any, float]
) -> None:
    dtype, tol = precision
    rng = U(zlib.crc32(case.name.encode()))
    params = _cast(case.params(rng), dtype)
    values = np.asarray(case.values(rng, _cast(params, np.float64)), dtype=dtype)
    expected = case.reference(values.astype(np.float64), **_cast(params, np.float64))
    got = backend.jit(lambda p, v: case.make(**p).log_prob(v))(params, values)
    assert_close(got, expected, tol)


def test_categorical_log_prob_matches_scipy(backend: Backend, precision: tuple[Any, float]) -> None:
    dtype, tol = precision
    rng = U(0)
    probs = rng.dirichlet(np.ones(5), size=7).astype(dtype)
    logits = rng.normal(size=(7, 5)).astype(dtype)
    values = rng.integers(0, 5, size=(3, 7))
    p64 = probs.astype(np.float64)
    expected = np.log(np.take_along_axis(np.broadcast_to(p64, (3, 7, 5)), values[..., None], -1))
    got = backend.jit(lambda p, v: dist.Categorical(probs=p).log_prob(v))(probs, values)
    assert_close(got, expected[..., 0], tol)
    softmax = np.exp(logits - np.logaddexp.reduce(logits.astype(np.float64), -1, keepdims=True))
    picked = np.take_along_axis(np.broadcast_to(softmax, (3, 7, 5)), values[..., None], -1)
    expected = np.log(picked)
    got = backend.jit(lambda p, v: dist.Categorical(logits=p).log_prob(v))(logits, values)
    assert_close(got, expected[..., 0], tol)


def test_dirichlet_log_prob_matches_scipy(backend: Backend, precision: tuple[Any, float]) -> None:
    dtype, tol = precision
    rng = U(1)
    alpha = rng.uniform(0.5, 5, size=(6, 4))
    x = np.stack([rng.dirichlet(a) for a in alpha])
    x = np.clip(x, 1e-4, None)
    x = x / x.sum(-1, keepdims=True)
    expected = [st.dirichlet(a).logpdf(v) for a, v in zip(alpha, x, strict=True)]
    got = backend.jit(lambda a, v: dist.Dirichlet(a).log_prob(v))(
        alpha.astype(dtype), x.astype(dtype)
    )
    assert_close(got, np.array(expected), tol)


def _random_spd(rng: np.random.Generator, n: int) -> np.ndarray:
    a = rng.normal(size=(n, n))
    return a @ a.T + n * np.eye(n)


@pytest.mark.parametrize("form", ["covariance_matrix", "precision_matrix", "scale_tril"])
def test_multivariate_normal_log_prob_matches_scipy(
    backend: Backend, precision: tuple[Any, float], form: str
) -> None:
    dtype, tol = precision
    rng = U(2)
    loc = rng.normal(size=(4, 3))
    cov = np.stack([_random_spd(rng, 3) for _ in range(4)])
    value = rng.normal(size=(5, 4, 3)) * 2
    expected = np.stack(
        [st.multivariate_normal(loc[i], cov[i]).logpdf(value[:, i]) for i in range(4)], -1
    )
    matrix = {
        "covariance_matrix": cov,
        "precision_matrix": np.linalg.inv(cov),
        "scale_tril": np.linalg.cholesky(cov),
    }[form]

    def evaluate(loc: Any, matrix: Any, value: Any) -> Any:
        d = dist.MultivariateNormal(loc, **{form: matrix})
        assert d.batch_shape == (4,) and d.event_shape == (3,)
        return d.log_prob(value), d.covariance_matrix, d.precision_matrix

    lp, cov_got, prec_got = backend.jit(evaluate)(
        loc.astype(dtype), matrix.astype(dtype), value.astype(dtype)
    )
    assert_close(lp, expected, tol * 10 if dtype == np.float32 else tol)
    assert_close(cov_got, cov, 1e-3 if dtype == np.float32 else 1e-8)
    assert_close(prec_got, np.linalg.inv(cov), 1e-3 if dtype == np.float32 else 1e-8)


@pytest.mark.parametrize("concentration", [0.5, 1.0, 3.0])
def test_lkj_cholesky_2d_log_prob_matches_beta(
    backend: Backend, precision: tuple[Any, float], concentration: float
) -> None:
    # In 2D the only free coordinate is the correlation r = L[1, 0], and (r + 1) / 2 is
    # Beta(eta, eta); the density of L is that of r.
    dtype, tol = precision
    r = np.linspace(-0.95, 0.95, 9)
    chol = np.zeros((9, 2, 2))
    chol[:, 0, 0] = 1
    chol[:, 1, 0] = r
    chol[:, 1, 1] = np.sqrt(1 - r**2)
    expected = st.beta(concentration, concentration).logpdf((r + 1) / 2) - np.log(2)
    lkj = backend.jit(lambda c: dist.LKJCholesky(2, concentration).log_prob(c))
    got = lkj(chol.astype(dtype))
    assert_close(got, expected, tol)


def test_lkj_log_prob_is_lkj_cholesky_with_jacobian(backend: Backend) -> None:
    rng = U(3)
    eta = 1.7

    def evaluate(x: Any) -> Any:
        chol = transforms.CorrCholeskyTransform()(x)
        corr = chol @ backend.xp.swapaxes(chol, -1, -2)
        jac = transforms.CorrMatrixCholeskyTransform().log_abs_det_jacobian(corr, chol)
        lp_chol = dist.LKJCholesky(4, eta).log_prob(chol)
        return dist.LKJ(4, eta).log_prob(corr), lp_chol, jac, corr

    lp, lp_chol, jac, corr = (
        np.asarray(a, dtype=np.float64) for a in backend.jit(evaluate)(rng.normal(size=(5, 6)))
    )
    # The density of C is det(C)^(eta - 1) up to a constant; LKJCholesky's normalisation is
    # checked on its own in test_transforms.
    tol = 1e-4 if backend.name == "jax" else 1e-8
    assert_close(lp, lp_chol + jac, tol)
    logdet = np.linalg.slogdet(corr)[1]
    assert_close(lp - lp[0], (eta - 1) * (logdet - logdet[0]), tol)


def test_improper_uniform_log_prob(backend: Backend) -> None:
    d = dist.ImproperUniform(dist.constraints.positive, (2,), (3,))
    assert d.batch_shape == (2,) and d.event_shape == (3,)
    assert d.support.event_dim == 1
    lp = np.asarray(d.log_prob(np.ones((4, 2, 3))))
    assert lp.shape == (4, 2) and (lp == 0).all()
    with pytest.warns(UserWarning, match="outside the support"):
        lp = np.asarray(d.log_prob(-np.ones((2, 3))))
    assert (lp == -np.inf).all()
    with pytest.raises(NotImplementedError, match="no sampler"):
        d.sample(backend.key(0))
    simplex = dist.ImproperUniform(dist.constraints.simplex, (), (4,))
    assert simplex.support is dist.constraints.simplex


# -- samples against scipy --------------------------------------------------------------------


@dataclass
class SampleCase:
    """A distribution with scalar parameters and its SciPy twin (``None``: no 1-D twin)."""

    name: str
    make: Callable[[], dist.Distribution]
    frozen: Any
    moments: bool = True


# On JAX each test compiles what it runs. Samplers are drawn eagerly, so every test drawing
# the same shape reuses one compiled jax.random sampler (gamma, poisson and binomial take
# seconds to compile); the truncated ones, long chains of elementwise special functions,
# compile faster as one jitted program.
JITTED = ("Truncated",)


def _sc(name: str, make: Callable[[], dist.Distribution], frozen: Any, moments: bool = True) -> Any:
    return pytest.param(SampleCase(name, make, frozen, moments), id=name)


def _draw(backend: Backend, case: SampleCase, key: Any) -> np.ndarray:
    def draw(key: Any) -> Any:
        return case.make().sample(key, (N_SAMPLES,))

    jitted = any(word in case.name for word in JITTED)
    return np.asarray((backend.jit(draw) if jitted else draw)(key), dtype=np.float64)


def _trunc(loc: float, scale: float, low: float, high: float) -> Any:
    return st.truncnorm((low - loc) / scale, (high - loc) / scale, loc, scale)


SAMPLE_CASES = [
    _sc("Normal", lambda: dist.Normal(0.5, 2.0), st.norm(0.5, 2.0)),
    _sc("HalfNormal", lambda: dist.HalfNormal(2.0), st.halfnorm(scale=2.0)),
    _sc("Cauchy", lambda: dist.Cauchy(0.5, 2.0), st.cauchy(0.5, 2.0), moments=False),
    _sc("HalfCauchy", lambda: dist.HalfCauchy(2.0), st.halfcauchy(scale=2.0), moments=False),
    _sc("StudentT", lambda: dist.StudentT(7.0, 0.5, 2.0), st.t(7.0, 0.5, 2.0)),
    _sc("Laplace", lambda: dist.Laplace(0.5, 2.0), st.laplace(0.5, 2.0)),
    _sc("Logistic", lambda: dist.Logistic(0.5, 2.0), st.logistic(0.5, 2.0)),
    _sc("LogNormal", lambda: dist.LogNormal(0.3, 0.5), st.lognorm(0.5, scale=np.exp(0.3))),
    _sc("Exponential", lambda: dist.Exponential(2.0), st.expon(scale=0.5)),
    _sc("Gamma", lambda: dist.Gamma(2.5, 1.5), st.gamma(2.5, scale=1 / 1.5)),
    _sc("Gamma(small)", lambda: dist.Gamma(0.4, 1.0), st.gamma(0.4)),
    _sc("InverseGamma", lambda: dist.InverseGamma(6.0, 2.0), st.invgamma(6.0, scale=2.0)),
    _sc("Beta", lambda: dist.Beta(2.0, 3.0), st.beta(2.0, 3.0)),
    _sc("Beta(small)", lambda: dist.Beta(0.5, 0.7), st.beta(0.5, 0.7)),
    _sc("Uniform", lambda: dist.Uniform(-1.0, 2.0), st.uniform(-1.0, 3.0)),
    _sc("Chi2", lambda: dist.Chi2(3.0), st.chi2(3.0)),
    _sc("Weibull", lambda: dist.Weibull(2.0, 1.5), st.weibull_min(1.5, scale=2.0)),
    _sc("Gumbel", lambda: dist.Gumbel(0.5, 2.0), st.gumbel_r(0.5, 2.0)),
    _sc("TruncatedNormal", lambda: dist.TruncatedNormal(0.5, 2.0, low=-1.0, high=3.0),
        _trunc(0.5, 2.0, -1.0, 3.0)),
    _sc("TruncatedNormal(tail)", lambda: dist.TruncatedNormal(0.0, 1.0, low=2.5, high=4.0),
        _trunc(0.0, 1.0, 2.5, 4.0)),
    _sc("TruncatedNormal(low)", lambda: dist.TruncatedNormal(0.5, 2.0, low=1.0),
        _trunc(0.5, 2.0, 1.0, np.inf)),
    _sc("TruncatedNormal(high)", lambda: dist.TruncatedNormal(0.5, 2.0, high=0.0),
        _trunc(0.5, 2.0, -np.inf, 0.0)),
    _sc("TruncatedCauchy", lambda: dist.TruncatedCauchy(0.0, 1.0, low=-2.0, high=5.0),
        None, moments=False),
    _sc("FoldedNormal", lambda: dist.FoldedDistribution(dist.Normal(1.0, 2.0)),
        st.foldnorm(0.5, scale=2.0)),
    _sc("Transformed", lambda: dist.TransformedDistribution(
        dist.Normal(0.0, 1.0), [transforms.AffineTransform(1.0, 0.5), transforms.ExpTransform()]),
        st.lognorm(0.5, scale=np.e), moments=False),
    _sc("Bernoulli(probs)", lambda: dist.Bernoulli(probs=0.3), st.bernoulli(0.3)),
    _sc("Bernoulli(logits)", lambda: dist.Bernoulli(logits=-0.5),
        st.bernoulli(1 / (1 + np.exp(0.5)))),
    _sc("Binomial", lambda: dist.Binomial(10, probs=0.3), st.binom(10, 0.3)),
    _sc("Binomial(logits)", lambda: dist.Binomial(20, logits=1.0),
        st.binom(20, 1 / (1 + np.exp(-1.0)))),
    _sc("Categorical(probs)", lambda: dist.Categorical(probs=np.array([0.1, 0.2, 0.3, 0.4])),
        st.rv_discrete(values=(np.arange(4), [0.1, 0.2, 0.3, 0.4])), moments=False),
    _sc("Categorical(logits)", lambda: dist.Categorical(logits=np.array([0.0, 1.0, -1.0])),
        st.rv_discrete(values=(np.arange(3), np.exp([0.0, 1.0, -1.0]) / np.exp(
            [0.0, 1.0, -1.0]).sum())), moments=False),
    _sc("Poisson", lambda: dist.Poisson(3.5), st.poisson(3.5)),
    _sc("Poisson(large)", lambda: dist.Poisson(40.0), st.poisson(40.0)),
    _sc("NegativeBinomial(probs)", lambda: dist.NegativeBinomial(5.0, probs=0.3),
        st.nbinom(5.0, 0.7)),
    _sc("NegativeBinomial(logits)", lambda: dist.NegativeBinomial(3.0, logits=0.5),
        st.nbinom(3.0, 1 / (1 + np.exp(0.5)))),
    _sc("NegativeBinomial2", lambda: dist.NegativeBinomial2(4.0, 2.0), st.nbinom(2.0, 2 / 6)),
    _sc("Geometric(probs)", lambda: dist.Geometric(probs=0.3), st.geom(0.3, loc=-1)),
    _sc("Geometric(logits)", lambda: dist.Geometric(logits=-1.0),
        st.geom(1 / (1 + np.e), loc=-1)),
    _sc("BetaBinomial", lambda: dist.BetaBinomial(2.0, 3.0, 10), st.betabinom(10, 2.0, 3.0)),
    _sc("DiscreteUniform", lambda: dist.DiscreteUniform(1, 5), st.randint(1, 6)),
]


def _chi2_pvalue(samples: np.ndarray, frozen: Any) -> float:
    """Chi-square goodness of fit, with bins merged until each expects at least 5 draws."""
    n = samples.size
    lo, hi = int(frozen.ppf(1e-9)), int(frozen.ppf(1 - 1e-9))
    ks = np.arange(lo, hi + 1)
    expected = frozen.pmf(ks) * n
    expected[0] = frozen.cdf(ks[0]) * n
    expected[-1] = frozen.sf(ks[-1] - 1) * n
    observed = np.array([(samples == k).sum() for k in ks], dtype=float)
    observed[0] = (samples <= ks[0]).sum()
    observed[-1] = (samples >= ks[-1]).sum()
    obs_bins, exp_bins, acc_o, acc_e = [], [], 0.0, 0.0
    for o, e in zip(observed, expected, strict=True):
        acc_o, acc_e = acc_o + o, acc_e + e
        if acc_e >= 5:
            obs_bins.append(acc_o)
            exp_bins.append(acc_e)
            acc_o = acc_e = 0.0
    obs_bins[-1] += acc_o
    exp_bins[-1] += acc_e
    exp_arr = np.array(exp_bins) * (n / np.sum(exp_bins))
    return float(st.chisquare(obs_bins, exp_arr).pvalue)


def _check_moments(samples: np.ndarray, d: dist.Distribution, frozen: Any, tol: float) -> None:
    mean, var, kurt = (float(m) for m in frozen.stats(moments="mvk"))
    assert_close(d.mean, mean, tol)
    assert_close(d.variance, var, tol)
    n = samples.size
    assert abs(samples.mean() - mean) < 5 * np.sqrt(var / n)
    # The sample variance has standard error var * sqrt((excess kurtosis + 2) / n).
    assert abs(samples.var() - var) < 6 * var * np.sqrt((kurt + 2) / n)


@pytest.mark.parametrize("case", SAMPLE_CASES)
def test_samples_match_scipy(case: SampleCase, backend: Backend) -> None:
    d = case.make()
    samples = _draw(backend, case, backend.key(7))
    assert samples.shape == (N_SAMPLES,)
    assert np.asarray(d.support(samples)).all()
    if case.frozen is None:  # truncated Cauchy: compare with the truncated cdf directly
        base = st.cauchy(0.0, 1.0)
        lo, hi = base.cdf(-2.0), base.cdf(5.0)
        pvalue = st.kstest(samples, lambda x: (base.cdf(x) - lo) / (hi - lo)).pvalue
    elif d.is_discrete:
        pvalue = _chi2_pvalue(samples, case.frozen)
    else:
        pvalue = st.kstest(samples, case.frozen.cdf).pvalue
    assert pvalue > ALPHA, f"p-value {pvalue}"
    if case.moments:
        _check_moments(samples, d, case.frozen, 1e-5 if backend.name == "numpy" else 1e-4)


def test_dirichlet_samples(backend: Backend) -> None:
    alpha = np.array([0.7, 2.0, 3.5])
    d = dist.Dirichlet(alpha)
    samples = np.asarray(d.sample(backend.key(1), (N_SAMPLES,)), dtype=np.float64)
    assert samples.shape == (N_SAMPLES, 3)
    assert np.allclose(samples.sum(-1), 1, atol=1e-5)
    for i, a in enumerate(alpha):
        marginal = st.beta(a, alpha.sum() - a)
        assert st.kstest(samples[:, i], marginal.cdf).pvalue > ALPHA
    assert_close(d.mean, st.dirichlet(alpha).mean(), 1e-6)
    assert_close(d.variance, st.dirichlet(alpha).var(), 1e-6)
    assert np.allclose(samples.mean(0), alpha / alpha.sum(), atol=0.02)


@pytest.mark.parametrize("form", ["covariance_matrix", "precision_matrix", "scale_tril"])
def test_multivariate_normal_samples(backend: Backend, form: str) -> None:
    loc = np.array([1.0, -2.0, 0.5])
    cov = np.array([[2.0, 0.6, -0.3], [0.6, 1.0, 0.2], [-0.3, 0.2, 0.5]])
    matrix = {
        "covariance_matrix": cov,
        "precision_matrix": np.linalg.inv(cov),
        "scale_tril": np.linalg.cholesky(cov),
    }[form]
    d = dist.MultivariateNormal(loc, **{form: matrix})
    samples = np.asarray(d.sample(backend.key(7), (N_SAMPLES,)), dtype=np.float64)
    assert samples.shape == (N_SAMPLES, 3)
    # Each marginal and a fixed projection are Normal.
    for i in range(3):
        assert st.kstest(samples[:, i], st.norm(loc[i], np.sqrt(cov[i, i])).cdf).pvalue > ALPHA
    w = np.array([1.0, -1.0, 2.0])
    projected = st.norm(w @ loc, np.sqrt(w @ cov @ w))
    assert st.kstest(samples @ w, projected.cdf).pvalue > ALPHA
    assert_close(d.mean, loc, 1e-5)
    assert_close(d.variance, np.diag(cov), 1e-4)
    assert np.allclose(np.cov(samples.T), cov, atol=0.15)


@pytest.mark.parametrize("method", ["onion", "cvine"])
def test_lkj_cholesky_samples(backend: Backend, method: str) -> None:
    eta = 1.5
    d = dist.LKJCholesky(4, eta, sample_method=method)
    chol = np.asarray(d.sample(backend.key(3), (N_SAMPLES,)), dtype=np.float64)
    assert chol.shape == (N_SAMPLES, 4, 4)
    assert np.asarray(dist.constraints.corr_cholesky(chol)).mean() > 0.99
    corr = chol @ np.swapaxes(chol, -1, -2)
    # Every off-diagonal correlation is marginally 2 * Beta(m, m) - 1, m = eta + (D - 2) / 2.
    marginal = st.beta(eta + 1.0, eta + 1.0)
    for i, j in [(1, 0), (2, 0), (3, 1), (3, 2)]:
        assert st.kstest((corr[:, i, j] + 1) / 2, marginal.cdf).pvalue > ALPHA


def test_lkj_samples_are_correlation_matrices(backend: Backend) -> None:
    # Same dimension, concentration and sample shape as the LKJCholesky test: on JAX the
    # compiled Beta sampler is shared.
    d = dist.LKJ(4, 1.5)
    corr = np.asarray(d.sample(backend.key(4), (N_SAMPLES,)), dtype=np.float64)
    assert corr.shape == (N_SAMPLES, 4, 4)
    assert np.allclose(np.diagonal(corr, axis1=-2, axis2=-1), 1, atol=1e-5)
    assert np.allclose(corr, np.swapaxes(corr, -1, -2), atol=1e-6)
    assert (np.linalg.eigvalsh(corr)[:, 0] > 0).all()
    assert st.kstest((corr[:, 1, 0] + 1) / 2, st.beta(2.5, 2.5).cdf).pvalue > ALPHA


@pytest.mark.parametrize(
    "make",
    [
        lambda: dist.Bernoulli(probs=0.3),
        lambda: dist.Binomial(10, probs=0.3),
        lambda: dist.BetaBinomial(2.0, 3.0, 10),
        lambda: dist.Poisson(3.0),
        lambda: dist.Geometric(probs=0.4),
        lambda: dist.Categorical(probs=np.array([0.2, 0.8])),
        lambda: dist.NegativeBinomial2(3.0, 2.0),
        lambda: dist.DiscreteUniform(0, 4),
    ],
    ids=[
        "bernoulli",
        "binomial",
        "beta_binomial",
        "poisson",
        "geometric",
        "categorical",
        "negative_binomial2",
        "discrete_uniform",
    ],
)
def test_scalar_discrete_draw_is_an_array(make: Callable[[], Any], backend: Backend) -> None:
    """A discrete family with scalar parameters draws a 0-d array, not a Python number
    (the families cast their draws with ``.astype``, which a Python int lacks)."""
    draw = make().sample(backend.key(0))
    assert np.shape(draw) == () and hasattr(draw, "astype")
