"""The benchmark models, each written once as a function of ``(ppl, dist)``.

``build(ppl, dist)`` returns the model function; ``ppl`` is ``numpyro`` or ``minippl`` and
``dist`` its distributions module, so every library samples the same priors and
likelihood.  ``data()`` makes the arguments from a fixed seed (float64 NumPy arrays; the
JAX samplers get them as float32, the NumPy backend as they are).  BlackJAX gets its log
density from the NumPyro model through ``numpyro.infer.util.initialize_model``.

The models use only what both libraries have (``Normal``, ``HalfNormal``, ``HalfCauchy``,
``Beta``, ``Bernoulli``, ``plate``, ``deterministic``, ``factor``).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["MODELS", "SMALL", "Data", "ModelSpec", "email_csv_path", "get", "logistic_data"]

Model = Callable[..., None]


@dataclass(frozen=True)
class Data:
    """Positional and keyword arguments of one model call."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    def cast(self, dtype: Any) -> Data:
        """The same data with every floating array cast to ``dtype`` (ints stay as they are)."""

        def one(x: Any) -> Any:
            if isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating):
                return x.astype(dtype)
            return x

        return Data(
            tuple(one(a) for a in self.args), {k: one(v) for k, v in self.kwargs.items()}, self.note
        )


@dataclass(frozen=True)
class ModelSpec:
    """One benchmark model: how to build it, its data, and its sampler settings."""

    name: str
    description: str
    build: Callable[[Any, Any], Model]
    data: Callable[[], Data]
    small: bool
    target_accept: float = 0.8
    dense_mass: bool = False
    numpy_ok: bool = False
    """Whether the NumPy backend runs it: it runs NUTS eagerly in Python (gradients by
    autograd), so only the models with few parameters *and* few rows."""


# --------------------------------------------------------------------------- eight schools

_Y_SCHOOLS = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
_SIGMA_SCHOOLS = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])


def _eight_schools_data() -> Data:
    return Data((8, _SIGMA_SCHOOLS.copy()), {"y": _Y_SCHOOLS.copy()})


def eight_schools_centered(ppl: Any, dist: Any) -> Model:
    """The guide's eight schools, centred: theta ~ Normal(mu, tau) (a funnel)."""

    def model(J: int, sigma: Any, y: Any = None) -> None:
        mu = ppl.sample("mu", dist.Normal(0.0, 5.0))
        tau = ppl.sample("tau", dist.HalfCauchy(5.0))
        with ppl.plate("J", J):
            theta = ppl.sample("theta", dist.Normal(mu, tau))
            ppl.sample("obs", dist.Normal(theta, sigma), obs=y)

    return model


def eight_schools_noncentered(ppl: Any, dist: Any) -> Model:
    """Eight schools, non-centred by hand (what ``LocScaleReparam(centered=0)`` produces)."""

    def model(J: int, sigma: Any, y: Any = None) -> None:
        mu = ppl.sample("mu", dist.Normal(0.0, 5.0))
        tau = ppl.sample("tau", dist.HalfCauchy(5.0))
        with ppl.plate("J", J):
            theta_decentered = ppl.sample("theta_decentered", dist.Normal(0.0, 1.0))
            theta = ppl.deterministic("theta", mu + tau * theta_decentered)
            ppl.sample("obs", dist.Normal(theta, sigma), obs=y)

    return model


# --------------------------------------------------------------------------- linear regression


def _linear_data() -> Data:
    # The guide's data: 50 points on [-2, 2], intercept 1, slope 2, noise 0.5.
    rng = np.random.default_rng(0)
    x = np.linspace(-2.0, 2.0, 50)
    y = 1.0 + 2.0 * x + 0.5 * rng.standard_normal(50)
    return Data((x,), {"y": y})


def linear_regression(ppl: Any, dist: Any) -> Model:
    """The guide's linear model, conditioned on its synthetic data."""

    def model(x: Any, y: Any = None) -> None:
        intercept = ppl.sample("intercept", dist.Normal(0.0, 10.0))
        slope = ppl.sample("slope", dist.Normal(0.0, 5.0))
        sigma = ppl.sample("sigma", dist.HalfNormal(1.0))
        mu = ppl.deterministic("mu", intercept + slope * x)
        with ppl.plate("data", x.shape[0]):
            ppl.sample("obs", dist.Normal(mu, sigma), obs=y)

    return model


# --------------------------------------------------------------------------- collections email

_EMAIL_COLUMNS = ("payments", "email", "opened", "agreement", "credit_limit", "risk_score")


_REPO = Path(__file__).resolve().parents[1]
SHIPPED_EMAIL_CSV = _REPO / "tutorial" / "data" / "collections_email.csv"
"""The copy the tutorial ships (``tutorial/data/SOURCE.md`` says where it comes from)."""


def email_csv_path() -> Path:
    """Where ``collections_email.csv`` is looked for: ``MINIPPL_DATA_DIR``, else the copy
    shipped in ``tutorial/data``."""
    env = os.environ.get("MINIPPL_DATA_DIR")
    return Path(env) / "collections_email.csv" if env else SHIPPED_EMAIL_CSV


def _where(path: Path) -> str:
    """A folder as the result files name it: relative to the repository when inside it, so
    that no machine's absolute path lands in a committed result."""
    try:
        return path.relative_to(_REPO).as_posix()
    except ValueError:
        return str(path)


def _email_data() -> Data:
    path = email_csv_path()
    if path.exists():
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        cols = {c: np.array([float(r[c]) for r in rows]) for c in _EMAIL_COLUMNS}
        note = f"collections_email.csv from {_where(path.parent)}"
    else:
        # A synthetic stand-in with the same columns and roughly the same marginals.
        rng = np.random.default_rng(7)
        n = 5000
        email = (rng.random(n) < 0.49).astype(float)
        credit = rng.gamma(6.0, 200.0, n)
        risk = np.clip(rng.normal(0.48, 0.1, n), 0.05, 0.95)
        noise = 40.0 * rng.standard_normal(n)
        payments = 10.0 * np.round((490.0 + 4.0 * email + 0.15 * credit + noise) / 10.0)
        cols = {"payments": payments, "email": email, "credit_limit": credit, "risk_score": risk}
        note = f"{path} not found: a synthetic stand-in with the same columns (seed 7)"
        print(f"[benchmarks] {note}")
    return Data(
        (cols["credit_limit"], cols["risk_score"]),
        {"email": cols["email"], "payments": cols["payments"]},
        note,
    )


def email_regression(ppl: Any, dist: Any) -> Model:
    """The guide's collections-email causal model (5,000 rows)."""

    def model(credit_limit: Any, risk_score: Any, email: Any = None, payments: Any = None) -> None:
        n_obs = credit_limit.shape[0]
        email_prob = ppl.sample("email_prob", dist.Beta(1.0, 1.0))
        email = ppl.sample(
            "email", dist.Bernoulli(email_prob).expand([n_obs]).to_event(1), obs=email
        )
        b_intercept = ppl.sample("b_intercept", dist.Normal(500.0, 100.0))
        b_email = ppl.sample("b_email", dist.Normal(0.0, 10.0))
        b_credit = ppl.sample("b_credit", dist.Normal(0.0, 10.0))
        b_risk = ppl.sample("b_risk", dist.Normal(0.0, 10.0))
        sigma = ppl.sample("sigma", dist.HalfNormal(10.0))
        mu = b_intercept + b_email * email + b_credit * credit_limit + b_risk * risk_score
        with ppl.plate("data", n_obs):
            ppl.sample("payments", dist.Normal(mu, sigma), obs=payments)

    return model


# --------------------------------------------------------------------------- logistic regression


def logistic_data(rows: int = 10_000, features: int = 100, seed: int = 1) -> Data:
    """Standard normal design, coefficients N(0, 0.5^2), labels from the logistic link."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, features))
    beta = 0.5 * rng.standard_normal(features)
    y = (rng.random(rows) < 1.0 / (1.0 + np.exp(-(X @ beta - 0.3)))).astype(float)
    return Data((X,), {"y": y})


def logistic_regression(ppl: Any, dist: Any) -> Model:
    """Bayesian logistic regression: coefficients N(0, 1), intercept N(0, 5)."""

    def model(X: Any, y: Any = None) -> None:
        features = X.shape[1]
        beta = ppl.sample("beta", dist.Normal(0.0, 1.0).expand([features]).to_event(1))
        alpha = ppl.sample("alpha", dist.Normal(0.0, 5.0))
        with ppl.plate("data", X.shape[0]):
            ppl.sample("y", dist.Bernoulli(logits=X @ beta + alpha), obs=y)

    return model


# --------------------------------------------------------------------------- correlated Gaussian


def gaussian_data(dim: int = 100, condition: float = 100.0, seed: int = 2) -> Data:
    """A random rotation of variances log-spaced over ``condition``: the precision minus I."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    half = 0.5 * np.log10(condition)
    variances = np.logspace(-half, half, dim)
    precision = (q / variances) @ q.T
    return Data((precision - np.eye(dim),))


def correlated_gaussian(ppl: Any, dist: Any) -> Model:
    """x ~ N(0, P^-1), written as a N(0, I) prior plus ``factor(-x'(P - I)x / 2)``.

    Neither a multivariate normal nor an improper prior is needed, so the model reads the
    same in every library; the density is exactly the Gaussian with precision P.
    """

    def model(precision_minus_identity: Any) -> None:
        dim = precision_minus_identity.shape[0]
        x = ppl.sample("x", dist.Normal(0.0, 1.0).expand([dim]).to_event(1))
        ppl.factor("correlation", -0.5 * (x @ precision_minus_identity @ x))

    return model


# --------------------------------------------------------------------------- hierarchical


def hierarchical_data(groups: int = 100, rows: int = 2000, seed: int = 3) -> Data:
    """Varying intercepts and two varying slopes over ``groups`` groups."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, groups, rows)
    X = np.column_stack([np.ones(rows), rng.standard_normal((rows, 2))])
    coef = np.array([1.0, 0.5, -0.5]) + np.array([0.7, 0.4, 0.3]) * rng.standard_normal((groups, 3))
    y = np.sum(X * coef[group], axis=1) + 0.8 * rng.standard_normal(rows)
    return Data((X, group, groups), {"y": y})


def hierarchical_regression(ppl: Any, dist: Any) -> Model:
    """Non-centred varying-coefficient regression: 3 x groups + 7 parameters (307 here)."""

    def model(X: Any, group: Any, groups: int, y: Any = None) -> None:
        k = X.shape[1]
        mu = ppl.sample("mu", dist.Normal(0.0, 5.0).expand([k]).to_event(1))
        tau = ppl.sample("tau", dist.HalfNormal(1.0).expand([k]).to_event(1))
        sigma = ppl.sample("sigma", dist.HalfNormal(1.0))
        z = ppl.sample("z", dist.Normal(0.0, 1.0).expand([groups, k]).to_event(2))
        coef = mu + tau * z
        with ppl.plate("data", X.shape[0]):
            ppl.sample("y", dist.Normal((X * coef[group]).sum(-1), sigma), obs=y)

    return model


# --------------------------------------------------------------------------- registry

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec(
            "eight_schools_c",
            "eight schools, centred (dim 10)",
            eight_schools_centered,
            _eight_schools_data,
            small=True,
            target_accept=0.9,
        ),
        ModelSpec(
            "eight_schools_nc",
            "eight schools, non-centred (dim 10)",
            eight_schools_noncentered,
            _eight_schools_data,
            small=True,
            target_accept=0.9,
            numpy_ok=True,
        ),
        ModelSpec(
            "linreg",
            "the guide's linear regression (50 rows, dim 3)",
            linear_regression,
            _linear_data,
            small=True,
            numpy_ok=True,
        ),
        ModelSpec(
            "email",
            "collections-email regression (5,000 rows, dim 6)",
            email_regression,
            _email_data,
            small=True,
        ),
        ModelSpec(
            "logistic",
            "logistic regression (10,000 rows x 100 features, dim 101)",
            logistic_regression,
            logistic_data,
            small=False,
        ),
        ModelSpec(
            "gauss100_dense",
            "correlated Gaussian (dim 100, condition 100), dense mass",
            correlated_gaussian,
            gaussian_data,
            small=False,
            dense_mass=True,
        ),
        ModelSpec(
            "hier",
            "hierarchical regression (100 groups, 2,000 rows, dim 307)",
            hierarchical_regression,
            hierarchical_data,
            small=False,
        ),
    ]
}

SMALL = tuple(name for name, spec in MODELS.items() if spec.small)


def get(name: str) -> ModelSpec:
    """The model registered as ``name`` (a ``KeyError`` lists the known names)."""
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(MODELS)}") from None
