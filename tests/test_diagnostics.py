"""minippl.diagnostics against numpyro.diagnostics and ArviZ on the same seeded draws."""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from minippl import diagnostics as md

RTOL = 1e-6


def _ar1(rng: np.random.Generator, shape: tuple[int, ...], rho: float) -> np.ndarray:
    """Stationary AR(1) chains along axis 1 with unit innovations."""
    noise = rng.normal(size=shape)
    x = np.empty(shape)
    x[:, 0] = noise[:, 0] / np.sqrt(1 - rho**2)
    for t in range(1, shape[1]):
        x[:, t] = rho * x[:, t - 1] + noise[:, t]
    return x


def _datasets() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20240607)
    return {
        "iid": rng.normal(size=(4, 1000)),
        "ar1_odd_draws": _ar1(rng, (4, 1001), 0.9),
        "shifted_means": rng.normal(size=(3, 500)) + 2.0 * np.arange(3)[:, None],
        "multidim": _ar1(rng, (2, 300, 3, 2), 0.9),
        "float32": _ar1(rng, (2, 401, 4), 0.5).astype(np.float32),
        "single_chain": _ar1(rng, (1, 200), 0.9),
    }


DATA = _datasets()
MULTI_CHAIN = [k for k, v in DATA.items() if v.shape[0] > 1]


@pytest.fixture
def nd() -> Any:
    return pytest.importorskip("numpyro.diagnostics")


@pytest.fixture
def az() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return pytest.importorskip("arviz")


def _close(actual: Any, expected: Any) -> None:
    assert np.shape(actual) == np.shape(expected)
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=0)


def _stdout(func: Callable[..., None], *args: Any, **kwargs: Any) -> str:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        func(*args, **kwargs)
    return buffer.getvalue()


# --------------------------------------------------------------------------- NumPyro


@pytest.mark.reference
@pytest.mark.parametrize("name", list(DATA))
def test_effective_sample_size(nd: ModuleType, name: str) -> None:
    x = DATA[name]
    _close(md.effective_sample_size(x), nd.effective_sample_size(x))
    _close(md.effective_sample_size(x, bias=False), nd.effective_sample_size(x, bias=False))


@pytest.mark.reference
@pytest.mark.parametrize("name", list(DATA))
def test_split_gelman_rubin(nd: ModuleType, name: str) -> None:
    x = DATA[name]
    _close(md.split_gelman_rubin(x), nd.split_gelman_rubin(x))


@pytest.mark.reference
@pytest.mark.parametrize("name", MULTI_CHAIN)
def test_gelman_rubin(nd: ModuleType, name: str) -> None:
    x = DATA[name]
    _close(md.gelman_rubin(x), nd.gelman_rubin(x))


def test_rhat_flags_chains_with_different_means() -> None:
    assert md.gelman_rubin(DATA["shifted_means"]) > 1.5
    assert md.split_gelman_rubin(DATA["iid"]) < 1.01


@pytest.mark.reference
@pytest.mark.parametrize("name", list(DATA))
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("bias", [True, False])
def test_autocorrelation_and_autocovariance(
    nd: ModuleType, name: str, axis: int, bias: bool
) -> None:
    x = DATA[name]
    _close(md.autocovariance(x, axis=axis, bias=bias), nd.autocovariance(x, axis=axis, bias=bias))
    _close(md.autocorrelation(x, axis=axis, bias=bias), nd.autocorrelation(x, axis=axis, bias=bias))


def test_autocorrelation_of_ar1_decays_geometrically() -> None:
    acorr = md.autocorrelation(DATA["ar1_odd_draws"], axis=1).mean(axis=0)
    np.testing.assert_allclose(acorr[:4], 0.9 ** np.arange(4), atol=0.05)


@pytest.mark.reference
@pytest.mark.parametrize("name", list(DATA))
@pytest.mark.parametrize(("prob", "axis"), [(0.9, 0), (0.5, 1), (0.95, -1)])
def test_hpdi(nd: ModuleType, name: str, prob: float, axis: int) -> None:
    x = DATA[name]
    _close(md.hpdi(x, prob=prob, axis=axis), nd.hpdi(x, prob=prob, axis=axis))


@pytest.mark.reference
@pytest.mark.parametrize("prob", [0.9, 0.5, 0.89])
def test_summary_values(nd: ModuleType, prob: float) -> None:
    samples = {"mu": DATA["ar1_odd_draws"][:2], "theta": DATA["multidim"]}
    ours, theirs = md.summary(samples, prob=prob), nd.summary(samples, prob=prob)
    assert list(ours) == list(theirs)
    for site in theirs:
        assert list(ours[site]) == list(theirs[site])
        for stat in theirs[site]:
            _close(ours[site][stat], theirs[site][stat])


@pytest.mark.reference
def test_summary_without_chains_and_of_bare_arrays(nd: ModuleType) -> None:
    flat = {"b": DATA["iid"].reshape(-1), "a": DATA["multidim"].reshape(-1, 3, 2)}
    for samples, grouped in [(flat, False), (DATA["multidim"], True), ([DATA["iid"]], True)]:
        ours = md.summary(samples, group_by_chain=grouped)
        theirs = nd.summary(samples, group_by_chain=grouped)
        assert list(ours) == list(theirs)
        for site in theirs:
            for stat in theirs[site]:
                _close(ours[site][stat], theirs[site][stat])


@pytest.mark.reference
@pytest.mark.parametrize(
    ("samples", "kwargs"),
    [
        ({"mu": DATA["ar1_odd_draws"][:2, :300], "theta": DATA["multidim"]}, {}),
        ({"a_long_site_name": DATA["multidim"], "x": DATA["shifted_means"][:2]}, {}),
        ({"z": DATA["iid"].reshape(-1), "y": DATA["multidim"][0]}, {"group_by_chain": False}),
        (DATA["float32"], {"prob": 0.8}),
        ({"s": DATA["single_chain"]}, {"prob": 0.5}),
        ({}, {}),
    ],
)
def test_print_summary_text(nd: ModuleType, samples: Any, kwargs: dict[str, Any]) -> None:
    ours = _stdout(md.print_summary, samples, **kwargs)
    assert ours == _stdout(nd.print_summary, samples, **kwargs)
    assert ("n_eff" in ours) == (len(samples) > 0)


def test_print_summary_layout() -> None:
    lines = _stdout(md.print_summary, {"theta": DATA["multidim"]}).splitlines()
    assert lines[0] == ""
    assert lines[1].split() == ["mean", "std", "median", "5.0%", "95.0%", "n_eff", "r_hat"]
    assert [line.split()[0] for line in lines[2:-1]] == [
        f"theta[{i},{j}]" for i in range(3) for j in range(2)
    ]


def test_format_divergences() -> None:
    assert md.format_divergences(3) == "Number of divergences: {}".format(3)  # noqa: UP032


def test_too_few_draws_raise() -> None:
    with pytest.raises(ValueError):
        md.split_gelman_rubin(np.zeros((2, 3)))
    with pytest.raises(ValueError):
        md.gelman_rubin(np.zeros((1, 10)))


# --------------------------------------------------------------------------- ArviZ


def _arviz_elementwise(func: Callable[[np.ndarray], Any], x: np.ndarray) -> np.ndarray:
    """ArviZ's ndarray path takes (chains, draws) only: loop over the site elements."""
    out = np.empty(x.shape[2:])
    for idx in np.ndindex(*x.shape[2:]):
        out[idx] = func(x[(slice(None), slice(None), *idx)])
    return out


ARVIZ_CASES = [
    *DATA,
    "with_nan",
    "ties",
    "constant",
    "short",
]


def _arviz_data(name: str) -> np.ndarray:
    rng = np.random.default_rng(7)
    if name == "with_nan":
        x = rng.normal(size=(2, 50, 2))
        x[1, 3, 0] = np.nan
        return x
    if name == "ties":
        return np.round(2 * _ar1(rng, (3, 80), 0.7)) / 2  # many exact ties
    if name == "constant":
        return np.ones((2, 40))
    if name == "short":
        return rng.normal(size=(2, 5))
    return DATA[name]


@pytest.mark.parametrize("name", ARVIZ_CASES)
def test_rank_rhat_matches_arviz(az: ModuleType, name: str) -> None:
    x = _arviz_data(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = _arviz_elementwise(lambda a: az.rhat(a, method="rank"), x)
        _close(md.rhat_rank(x), expected)


@pytest.mark.parametrize("name", ARVIZ_CASES)
def test_bulk_and_tail_ess_match_arviz(az: ModuleType, name: str) -> None:
    x = _arviz_data(name)
    _close(md.ess_bulk(x), _arviz_elementwise(lambda a: az.ess(a, method="bulk"), x))
    _close(md.ess_tail(x), _arviz_elementwise(lambda a: az.ess(a, method="tail"), x))
    expected = _arviz_elementwise(lambda a: az.ess(a, method="tail", prob=(0.1, 0.8)), x)
    _close(md.ess_tail(x, prob=(0.1, 0.8)), expected)
    _close(
        md.ess_tail(x, prob=0.2),
        _arviz_elementwise(lambda a: az.ess(a, method="tail", prob=0.2), x),
    )


@pytest.mark.parametrize("name", ARVIZ_CASES)
def test_mcse_mean_matches_arviz(az: ModuleType, name: str) -> None:
    x = _arviz_data(name)
    _close(md.mcse_mean(x), _arviz_elementwise(lambda a: az.mcse(a, method="mean"), x))


def test_rank_diagnostics_on_one_dimensional_input(az: ModuleType) -> None:
    x = DATA["single_chain"][0]
    _close(md.ess_bulk(x), np.asarray(az.ess(x)))
    _close(md.mcse_mean(x), np.asarray(az.mcse(x)))
    assert np.isnan(md.rhat_rank(x))  # ArviZ needs two chains before splitting


def test_rank_diagnostics_detect_problems() -> None:
    assert md.rhat_rank(DATA["shifted_means"]) > 1.5
    assert md.rhat_rank(DATA["iid"]) < 1.01
    assert md.ess_bulk(DATA["ar1_odd_draws"]) < 0.2 * md.ess_bulk(DATA["iid"])
    assert md.ess_bulk(DATA["multidim"]).shape == (3, 2)
