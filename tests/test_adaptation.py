"""Warmup adaptation: Stan's schedule, dual averaging, Welford, regularisation, shrinkage."""

from __future__ import annotations

import math

import numpy as np
import pytest

from backends import Backend
from minippl.infer.hmc.adaptation import (
    HMCAdaptState,
    WarmupAdapter,
    build_adaptation_schedule,
    dual_averaging_init,
    dual_averaging_update,
    find_reasonable_step_size,
    regularize_covariance,
    shrink_towards_diagonal,
    welford_covariance,
    welford_init,
    welford_update,
)
from minippl.infer.hmc.integrator import IntegratorState, velocity_verlet
from minippl.infer.hmc.metrics import euclidean_metric, make_layout

# --------------------------------------------------------------------------- schedule


def _windows(n: int) -> list[tuple[int, int]]:
    return [(w.start, w.end) for w in build_adaptation_schedule(n)]


def test_schedule_for_1000_warmup_steps() -> None:
    # [0-74][75-99][100-149][150-249][250-449][450-949][950-999], as Stan and NumPyro.
    assert _windows(1000) == [
        (0, 74),
        (75, 99),
        (100, 149),
        (150, 249),
        (250, 449),
        (450, 949),
        (950, 999),
    ]


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, [(0, -1)]),
        (19, [(0, 18)]),
        (20, [(0, 2), (3, 17), (18, 19)]),
        (100, [(0, 14), (15, 89), (90, 99)]),
        (150, [(0, 74), (75, 99), (100, 149)]),
        (300, [(0, 74), (75, 99), (100, 149), (150, 249), (250, 299)]),
    ],
)
def test_schedule_small_warmups(n: int, expected: list[tuple[int, int]]) -> None:
    # Under 20 steps: one window; under 150: buffers of 15% and 10% around one slow window.
    assert _windows(n) == expected


@pytest.mark.parametrize("n", [20, 37, 151, 299, 500, 1234, 5000])
def test_schedule_tiles_warmup_with_growing_slow_windows(n: int) -> None:
    windows = _windows(n)
    assert windows[0][0] == 0 and windows[-1][1] == n - 1
    assert all(a[1] + 1 == b[0] for a, b in zip(windows, windows[1:], strict=False))
    slow = [end - start + 1 for start, end in windows[1:-1]]
    assert slow == sorted(slow)


@pytest.mark.reference
@pytest.mark.parametrize("n", [0, 5, 20, 99, 150, 151, 300, 1000, 1234, 5000])
def test_schedule_matches_numpyro(n: int) -> None:
    hmc_util = pytest.importorskip("numpyro.infer.hmc_util")
    assert _windows(n) == [tuple(w) for w in hmc_util.build_adaptation_schedule(n)]


# --------------------------------------------------------------------------- dual averaging


def test_dual_averaging_one_step_by_hand(backend: Backend) -> None:
    # t=1: g_avg = g/11, x = mu - sqrt(1)/0.05 * g_avg, weight 1 so x_avg = x.
    mu = math.log(10 * 0.5)
    state = dual_averaging_update(dual_averaging_init(backend.xp.asarray(mu)), 0.3)
    x = mu - 20 * 0.3 / 11
    assert float(state.log_step_size) == pytest.approx(x)
    assert float(state.log_step_size_avg) == pytest.approx(x)
    assert int(state.t) == 1


def test_dual_averaging_reaches_target_acceptance(backend: Backend) -> None:
    # A smooth acceptance curve a(eps) = 1 / (1 + (eps/2)^4) crosses 0.8 at eps = sqrt(2).
    xp = backend.xp
    state = dual_averaging_init(xp.log(10 * xp.asarray(0.01)))
    for _ in range(300):
        eps = xp.exp(state.log_step_size)
        accept = 1 / (1 + (eps / 2) ** 4)
        state = dual_averaging_update(state, 0.8 - accept)
    assert float(xp.exp(state.log_step_size_avg)) == pytest.approx(math.sqrt(2), rel=0.01)


# --------------------------------------------------------------------------- covariance


@pytest.mark.parametrize("dense", [False, True])
def test_welford_matches_numpy(backend: Backend, dense: bool) -> None:
    draws = np.random.default_rng(0).normal(size=(40, 3)) @ np.array(
        [[1.0, 0.5, 0.0], [0.0, 2.0, 0.3], [0.0, 0.0, 0.5]]
    )
    state = welford_init(3, dense)
    for x in draws:
        state = welford_update(state, backend.xp.asarray(x))
    expected = np.cov(draws.T) if dense else np.var(draws, axis=0, ddof=1)
    np.testing.assert_allclose(backend.to_numpy(welford_covariance(state)), expected, rtol=1e-5)
    np.testing.assert_allclose(backend.to_numpy(state.mean), draws.mean(0), rtol=1e-5, atol=1e-6)


def test_stan_regularization(backend: Backend) -> None:
    cov = backend.xp.asarray([[2.0, 0.5], [0.5, 1.0]])
    out = backend.to_numpy(regularize_covariance(cov, backend.xp.asarray(20)))
    expected = (20 / 25) * np.array([[2.0, 0.5], [0.5, 1.0]]) + 1e-3 * (5 / 25) * np.eye(2)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    diag = backend.to_numpy(regularize_covariance(backend.xp.asarray([2.0, 1.0]), 20))
    np.testing.assert_allclose(diag, [0.8 * 2 + 2e-4, 0.8 + 2e-4], rtol=1e-6)


def test_shrinkage_makes_few_draws_full_rank(backend: Backend) -> None:
    # 25 draws in 60 dimensions: the sample covariance has rank 24. Shrunk, it keeps the
    # sample variances and is well conditioned.
    rng = np.random.default_rng(1)
    scales = np.logspace(-1, 1, 60)
    draws = rng.normal(size=(25, 60)) * scales
    cov = np.cov(draws.T)
    assert np.linalg.matrix_rank(cov) == 24
    shrunk = backend.to_numpy(shrink_towards_diagonal(backend.xp.asarray(cov), 25))
    np.testing.assert_allclose(np.diag(shrunk), np.diag(cov), rtol=1e-5)
    corr = shrunk / np.sqrt(np.outer(np.diag(shrunk), np.diag(shrunk)))
    assert np.linalg.eigvalsh(corr).min() > 0.5  # uncorrelated truth: mostly diagonal


def test_shrinkage_keeps_well_estimated_correlations(backend: Backend) -> None:
    # 5000 draws of a strongly correlated 3-d Gaussian: almost no shrinkage.
    rng = np.random.default_rng(2)
    true = np.array([[1.0, 0.9, 0.5], [0.9, 1.0, 0.4], [0.5, 0.4, 1.0]])
    draws = rng.multivariate_normal(np.zeros(3), true, size=5000)
    cov = np.cov(draws.T)
    shrunk = backend.to_numpy(shrink_towards_diagonal(backend.xp.asarray(cov), 5000))
    off = ~np.eye(3, dtype=bool)
    np.testing.assert_allclose(shrunk[off], cov[off], rtol=2e-3)


# --------------------------------------------------------------------------- step-size search


@pytest.mark.parametrize("start", [1e-3, 50.0])
def test_find_reasonable_step_size_brackets_the_crossing(backend: Backend, start: float) -> None:
    # Standard 2-d Gaussian, unit metric: from either side the search stops one doubling
    # past acceptance 0.8, at start * 2^k for an integer k.
    xp = backend.xp
    layout = make_layout(xp.zeros(2), False)
    metric = euclidean_metric(layout, xp.ones(2), xp.ones(2))

    def potential_and_grad(z: object) -> tuple[object, object]:
        return 0.5 * xp.sum(z * z), z  # type: ignore[operator]

    step = velocity_verlet(potential_and_grad, metric.velocity)
    z = xp.asarray([0.3, -0.2])
    state = IntegratorState(z, xp.zeros(2), 0.5 * xp.sum(z * z), z)
    eps = float(find_reasonable_step_size(step, metric, state, xp.asarray(start), backend.key(0)))
    k = math.log2(eps / start)
    assert k == pytest.approx(round(k)) and round(k) != 0
    assert 0.1 < eps < 5.0


# --------------------------------------------------------------------------- the adapter


def test_adapter_installs_each_slow_window_estimate(backend: Backend) -> None:
    # 300 warmup steps: slow windows 75-99, 100-149, 150-249. At each window's end the
    # inverse mass matrix is the regularised covariance of exactly that window's draws,
    # and dual averaging restarts at mu = log(10 * step_size). (The logic is backend-neutral;
    # JAX, where each variant compiles, runs the dense one only.)
    for dense in (False, True) if backend.name == "numpy" else (True,):
        check_window_estimates(backend, dense)


def check_window_estimates(backend: Backend, dense: bool) -> None:
    xp = backend.xp
    rng = np.random.default_rng(3)
    draws = rng.normal(size=(300, 3)) * np.array([0.5, 1.0, 3.0])
    layout = make_layout(xp.zeros(3), dense)
    adapter = WarmupAdapter(300, layout, dense_shrinkage=False)
    z0 = IntegratorState(xp.zeros(3), None, xp.asarray(0.0), xp.zeros(3))
    state: HMCAdaptState = adapter.init(z0, backend.key(0), xp.asarray(1.0))
    update = backend.jit(adapter.update)
    for t in range(300):
        at = IntegratorState(xp.asarray(draws[t]), None, xp.asarray(0.0), xp.zeros(3))
        state = update(xp.asarray(t), xp.asarray(0.7), at, state)
        if t in (99, 149, 249):
            start = {99: 75, 149: 100, 249: 150}[t]
            window = draws[start : t + 1]
            n = len(window)
            cov = np.cov(window.T) if dense else np.var(window, axis=0, ddof=1)
            jitter = 1e-3 * 5 / (n + 5) * (np.eye(3) if dense else 1.0)
            expected = n / (n + 5) * cov + jitter
            got = backend.to_numpy(state.inverse_mass_matrix)
            np.testing.assert_allclose(got, expected, rtol=1e-4)
            mu = float(state.ss_state.prox_center)
            assert mu == pytest.approx(math.log(10 * float(state.step_size)), rel=1e-5)
            assert int(state.ss_state.t) == 0
    # The last warmup step hands over the averaged iterate.
    assert float(state.step_size) == pytest.approx(
        math.exp(float(state.ss_state.log_step_size_avg)), rel=1e-5
    )
    assert int(state.window_idx) == 5
