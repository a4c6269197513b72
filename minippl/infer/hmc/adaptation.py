"""Warmup: dual averaging of the step size and windowed estimation of the mass matrix.

Tutorial: "Reparameterization: reparam", where NUTS meets the funnel (``tutorial/s09_reparam.py``).

Warmup follows Stan's schedule [3]: a fast initial buffer where only the step size adapts,
slow windows of doubling length where draws also feed a Welford estimate of the posterior
covariance (which becomes the inverse mass matrix at each window's end, after which the
step-size adaptation restarts), and a fast final buffer. Dual averaging [1] drives the mean
acceptance statistic to ``target_accept_prob``; its averaged iterate is used at the end.

Dense mass matrices and few draws
---------------------------------
A ``D x D`` covariance estimated from ``n < D`` draws is singular; Stan's regularisation
only lifts the null space to ``1e-3 * 5/(n+5)``, so the early windows hand the sampler a
metric that is nearly flat in most directions, and the trees grow to hundreds of leapfrog
steps until a late window finally has enough draws. Here each dense block is first shrunk
towards its own diagonal, ``(1 - lam) * S + lam * diag(S)``, with ``lam`` the oracle
approximating shrinkage (OAS) [4] of the sample *correlation* matrix towards the identity:
close to 1 when the draws cannot resolve the correlations (``n`` small against ``D``, or no
correlation), falling as the evidence grows. The variances are kept as estimated, so an
early dense metric falls back towards the diagonal one instead of being singular, and the
last windows (hundreds of draws) are barely changed. ``dense_shrinkage=False`` restores
NumPyro's estimate.

Measured on a 100-d Gaussian with covariance ``Q diag(s) Q^T``, ``s`` log-spaced over
``[0.1, 10]`` (condition number 100), ``Q`` a random rotation; 1000 warmup and 500 sampling
iterations, 4 chains, JAX in float64, NUTS with ``dense_mass=True`` (mean leapfrog steps per
iteration; the windows are Stan's for 1000 warmup steps)::

                              warmup  sampling | 0-74  75-99 100-149 150-249 250-449 450-949
    NumPyro 0.22               249.5    14.8   | 40.3  36.6  974.5   973.2   449.6    17.8
    no shrinkage (= NumPyro)   263.6    14.8   | 40.3  36.2  951.8   971.4   526.8    17.7
    with shrinkage (default)    22.5    14.9   | 39.1  35.5   47.1    31.6    22.3    15.9
    diagonal, for comparison    36.7    33.9   | 41.3  36.8   47.3    41.4    35.9    33.6

Without shrinkage the windows fed by 25 and 50 draws saturate the tree depth (1023 steps);
with it, dense warmup costs 11x fewer gradients, less than diagonal warmup, and the
sampling phase is as good (same steps per draw; minimum ESS 2955 against 2602 unshrunk).

References
----------
1. M. D. Hoffman, A. Gelman, "The No-U-Turn Sampler", JMLR 15 (2014), section 3.2
   (dual averaging) and algorithm 4 (initial step size).
2. Y. Nesterov, "Primal-dual subgradient methods for convex problems", Math. Programming
   120 (2009), eq. (3.4).
3. Stan Development Team, *Stan Reference Manual*, "HMC algorithm parameters / Adaptation"
   (windows 75/25/50, doubling slow windows, regularisation ``(n/(n+5)) cov + 1e-3 5/(n+5)``).
4. Y. Chen, A. Wiesel, Y. C. Eldar, A. O. Hero, "Shrinkage algorithms for MMSE covariance
   estimation", IEEE Trans. Signal Processing 58(10) (2010), eq. (23), in the form
   scikit-learn's ``oas`` uses (without the ``2/p`` terms, negligible for large ``p``).
5. B. P. Welford, "Note on a method for calculating corrected sums of squares and
   products", Technometrics 4(3) (1962).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from backends import Array, Key
from minippl.backend import current
from minippl.infer.hmc.constants import (
    BASE_WINDOW,
    DUAL_AVERAGING_GAMMA,
    DUAL_AVERAGING_KAPPA,
    DUAL_AVERAGING_T0,
    INIT_BUFFER,
    INIT_BUFFER_FRACTION,
    MIN_WINDOWED_WARMUP,
    REGULARIZE_JITTER,
    REGULARIZE_PRIOR_DRAWS,
    STEP_SIZE_SEARCH_ACCEPT,
    TARGET_ACCEPT_PROB,
    TERM_BUFFER,
    TERM_BUFFER_FRACTION,
)
from minippl.infer.hmc.integrator import IntegratorState, Step, int_array
from minippl.infer.hmc.metrics import (
    Block,
    MassLayout,
    Metric,
    blockwise,
    initial_inverse_mass_matrix,
    mass_matrix_factors,
)

__all__ = [
    "AdaptWindow",
    "DualAveragingState",
    "HMCAdaptState",
    "StepSizeSearch",
    "WarmupAdapter",
    "WelfordState",
    "build_adaptation_schedule",
    "dual_averaging_init",
    "dual_averaging_update",
    "find_reasonable_step_size",
    "regularize_covariance",
    "shrink_towards_diagonal",
    "welford_covariance",
    "welford_init",
    "welford_update",
]


# --------------------------------------------------------------------------- dual averaging


class DualAveragingState(NamedTuple):
    """Nesterov's dual averaging on ``log(step_size)`` [1, 2]."""

    log_step_size: Array
    """The current iterate ``x_t``, used during warmup."""
    log_step_size_avg: Array
    """The weighted average of the iterates, used once warmup ends."""
    grad_avg: Array
    """Running mean of ``target - accept_prob``."""
    t: Array
    prox_center: Array
    """``mu = log(10 * step_size)``: iterates are pulled towards a step size 10x larger."""


def dual_averaging_init(prox_center: Array) -> DualAveragingState:
    """A fresh scheme centred on ``prox_center``."""
    xp = current().xp
    zero = xp.zeros((), dtype=current().float_dtype())
    return DualAveragingState(zero, zero, zero, int_array(0), prox_center)


def dual_averaging_update(
    state: DualAveragingState,
    g: Array,
    t0: float = DUAL_AVERAGING_T0,
    kappa: float = DUAL_AVERAGING_KAPPA,
    gamma: float = DUAL_AVERAGING_GAMMA,
) -> DualAveragingState:
    """One step with statistic ``g = target - accept_prob`` (positive: step too large)."""
    x_t, x_avg, g_avg, t, prox_center = state
    t = t + 1
    g_avg = (1 - 1 / (t + t0)) * g_avg + g / (t + t0)
    # argmin_x of the averaged linear model plus a proximal term growing like sqrt(t) [2].
    x_t = prox_center - (t**0.5) / gamma * g_avg
    # Average the *new* iterate, with weight t^-kappa [1, eq. 6] (BlackJAX averages the old).
    weight = t ** (-kappa)
    x_avg = (1 - weight) * x_avg + weight * x_t
    return DualAveragingState(x_t, x_avg, g_avg, t, prox_center)


# --------------------------------------------------------------------------- Welford


class WelfordState(NamedTuple):
    """Running mean and sum of squared deviations (a vector, or a matrix when dense) [5]."""

    mean: Array
    m2: Array
    n: Array


def welford_init(size: int, dense: bool) -> WelfordState:
    xp = current().xp
    dtype = current().float_dtype()
    m2 = xp.zeros((size, size) if dense else (size,), dtype=dtype)
    return WelfordState(xp.zeros(size, dtype=dtype), m2, int_array(0))


def welford_update(state: WelfordState, x: Array) -> WelfordState:
    """Fold in one draw ``x``; numerically stable, one pass."""
    xp = current().xp
    mean, m2, n = state
    n = n + 1
    before = x - mean
    mean = mean + before / n
    after = x - mean
    m2 = m2 + before * after if m2.ndim == 1 else m2 + xp.outer(after, before)
    return WelfordState(mean, m2, n)


def welford_covariance(state: WelfordState) -> Array:
    """The unbiased sample (co)variance ``m2 / (n - 1)``."""
    return state.m2 / (state.n - 1)


def regularize_covariance(cov: Array, n: Array) -> Array:
    """Stan's ``n/(n+5) * cov + 1e-3 * 5/(n+5) * I``: a weak prior towards ``1e-3 * I``."""
    xp = current().xp
    prior = REGULARIZE_PRIOR_DRAWS
    scaled = (n / (n + prior)) * cov
    jitter = REGULARIZE_JITTER * (prior / (n + prior))
    if cov.ndim == 1:
        return scaled + jitter
    return scaled + jitter * xp.eye(cov.shape[-1], dtype=cov.dtype)


def shrink_towards_diagonal(cov: Array, n: Array) -> Array:
    """``(1 - lam) * cov + lam * diag(cov)``, ``lam`` the OAS intensity of the correlation [4].

    With ``R`` the correlation matrix of ``cov`` (so ``tr R = p``),
    ``lam = min(1, (tr R^2 + p^2) / ((n + 1) (tr R^2 - p)))``: the estimated share of
    ``R``'s off-diagonal mass that is sampling noise.
    """
    xp = current().xp
    p = cov.shape[-1]
    var = xp.diagonal(cov)
    sd = xp.sqrt(var)
    corr = cov / (sd[:, None] * sd[None, :])
    tr_r2 = xp.sum(corr * corr)
    num = tr_r2 + p * p
    den = (n + 1) * (tr_r2 - p)
    lam = xp.where(den > 0, xp.minimum(num / xp.where(den > 0, den, 1.0), 1.0), 1.0)
    return (1 - lam) * cov + lam * xp.diag(var)


# --------------------------------------------------------------------------- schedule


class AdaptWindow(NamedTuple):
    """Warmup iterations ``start..end`` (both included)."""

    start: int
    end: int


def build_adaptation_schedule(num_steps: int) -> list[AdaptWindow]:
    """Stan's windows: a fast buffer, doubling slow windows, a fast buffer [3].

    ``num_steps=1000`` gives ``[0-74][75-99][100-149][150-249][250-449][450-949][950-999]``.
    A slow window that could not be followed by one twice its size (``3 * size`` would
    overrun the final buffer) stretches to the final buffer instead.
    """
    if num_steps < MIN_WINDOWED_WARMUP:
        return [AdaptWindow(0, num_steps - 1)]
    init_buffer, term_buffer, window = INIT_BUFFER, TERM_BUFFER, BASE_WINDOW
    if init_buffer + window + term_buffer > num_steps:
        init_buffer = int(INIT_BUFFER_FRACTION * num_steps)
        term_buffer = int(TERM_BUFFER_FRACTION * num_steps)
        window = num_steps - init_buffer - term_buffer
    schedule = [AdaptWindow(0, init_buffer - 1)]
    term_start = num_steps - term_buffer
    start = init_buffer
    while start < term_start:
        size = window
        if 3 * size <= term_start - start:
            window = 2 * size
        else:
            size = term_start - start
        schedule.append(AdaptWindow(start, start + size - 1))
        start += size
    schedule.append(AdaptWindow(term_start, num_steps - 1))
    return schedule


# --------------------------------------------------------------------------- step size search


def find_reasonable_step_size(
    step: Step, metric: Metric, state: IntegratorState, step_size: Array, key: Key
) -> Array:
    """Double or halve ``step_size`` until one leapfrog step crosses acceptance 0.8 [1, alg. 4].

    Each trial draws a fresh momentum. The search goes up while ``exp(-dH) > 0.8`` and down
    otherwise (a NaN energy goes down), and returns the first step size past the crossing.
    It also stops at the float range's ends.
    """
    bk = current()
    xp = bk.xp
    log_target = math.log(STEP_SIZE_SEARCH_ACCEPT)
    finfo = xp.finfo(step_size.dtype)

    def body(carry: tuple[Array, Array, Array, Key]) -> tuple[Array, Array, Array, Key]:
        eps, _, direction, key = carry
        key, momentum_key = bk.split(key)
        eps = (2.0**direction) * eps
        r = metric.sample_momentum(momentum_key)
        new = step(IntegratorState(state.z, r, state.potential_energy, state.z_grad), eps)
        energy = state.potential_energy + metric.kinetic_energy(r)
        delta = new.potential_energy + metric.kinetic_energy(new.r) - energy
        next_direction = xp.where(log_target < -delta, int_array(1), int_array(-1))
        return eps, direction, next_direction, key

    def keep_going(carry: tuple[Array, Array, Array, Key]) -> Array:
        eps, last, direction, _ = carry
        not_tiny = (eps > finfo.tiny) | (direction >= 0)
        not_huge = (eps < finfo.max) | (direction <= 0)
        return not_tiny & not_huge & ((last == 0) | (direction == last))

    eps, _, _, _ = bk.while_loop(keep_going, body, (step_size, int_array(0), int_array(0), key))
    return eps


# --------------------------------------------------------------------------- the adapter


class HMCAdaptState(NamedTuple):
    """What warmup carries between iterations (NumPyro's field names)."""

    step_size: Array
    inverse_mass_matrix: Any
    """Per block: a vector (diagonal) or matrix (dense); a dict keyed by site-name tuples."""
    mass_matrix_sqrt: Any
    """Lower Cholesky factor of ``M`` (dense) or ``1/sqrt`` of the inverse (diagonal)."""
    mass_matrix_sqrt_inv: Any
    ss_state: DualAveragingState
    mm_state: Any
    """Per block :class:`WelfordState` of the current slow window."""
    window_idx: Array
    rng_key: Key


StepSizeSearch = Callable[[Array, Any, Any, Key], Array]
"""``(step_size, inverse_mass_matrix, mass_matrix_sqrt, key) -> step_size`` at some point."""


def _unzip(layout: MassLayout, tree: Any) -> tuple[Any, Any]:
    if not layout.keyed:
        first, second = tree
        return first, second
    return {k: v[0] for k, v in tree.items()}, {k: v[1] for k, v in tree.items()}


@dataclass(frozen=True)
class WarmupAdapter:
    """Step-size and mass-matrix adaptation over ``num_adapt_steps`` warmup iterations."""

    num_adapt_steps: int
    layout: MassLayout
    adapt_step_size: bool = True
    adapt_mass_matrix: bool = True
    target_accept_prob: float = TARGET_ACCEPT_PROB
    regularize_mass_matrix: bool = True
    dense_shrinkage: bool = True

    @property
    def schedule(self) -> list[AdaptWindow]:
        return build_adaptation_schedule(self.num_adapt_steps)

    def _welford_init(self) -> Any:
        return blockwise(self.layout, lambda b: welford_init(b.size, b.dense))

    def _factors(self, inverse_mass_matrix: Any) -> tuple[Any, Any]:
        factors = blockwise(self.layout, lambda b, m: mass_matrix_factors(m), inverse_mass_matrix)
        return _unzip(self.layout, factors)

    def _estimate(self, block: Block, state: WelfordState) -> Array:
        cov = welford_covariance(state)
        if block.dense and self.dense_shrinkage:
            cov = shrink_towards_diagonal(cov, state.n)
        if self.regularize_mass_matrix:
            cov = regularize_covariance(cov, state.n)
        return cov

    def init(
        self,
        z_info: IntegratorState,
        rng_key: Key,
        step_size: Array,
        inverse_mass_matrix: Any = None,
        search: StepSizeSearch | None = None,
    ) -> HMCAdaptState:
        """The state before the first warmup iteration (``search`` is the optional heuristic)."""
        xp = current().xp
        rng_key, search_key = current().split(rng_key)
        inverse = initial_inverse_mass_matrix(self.layout, inverse_mass_matrix)
        sqrt, sqrt_inv = self._factors(inverse)
        if self.adapt_step_size and search is not None:
            step_size = search(step_size, inverse, sqrt, search_key)
        return HMCAdaptState(
            step_size=step_size,
            inverse_mass_matrix=inverse,
            mass_matrix_sqrt=sqrt,
            mass_matrix_sqrt_inv=sqrt_inv,
            ss_state=dual_averaging_init(xp.log(10 * step_size)),
            mm_state=self._welford_init(),
            window_idx=int_array(0),
            rng_key=rng_key,
        )

    def _end_window(
        self, state: HMCAdaptState, search_key: Key, search: StepSizeSearch | None
    ) -> HMCAdaptState:
        """Install the window's covariance estimate and restart dual averaging."""
        xp = current().xp
        inverse, sqrt, sqrt_inv = (
            state.inverse_mass_matrix,
            state.mass_matrix_sqrt,
            state.mass_matrix_sqrt_inv,
        )
        mm_state, step_size, ss_state = state.mm_state, state.step_size, state.ss_state
        if self.adapt_mass_matrix:
            inverse = blockwise(self.layout, self._estimate, state.mm_state)
            sqrt, sqrt_inv = self._factors(inverse)
            mm_state = self._welford_init()
        if self.adapt_step_size:
            if search is not None:
                step_size = search(step_size, inverse, sqrt, search_key)
            # log(10) + log(eps), not log(10 eps): finite even for a huge eps.
            ss_state = dual_averaging_init(xp.log(10.0) + xp.log(step_size))
        return state._replace(
            step_size=step_size,
            inverse_mass_matrix=inverse,
            mass_matrix_sqrt=sqrt,
            mass_matrix_sqrt_inv=sqrt_inv,
            ss_state=ss_state,
            mm_state=mm_state,
        )

    def update(
        self,
        t: Array,
        accept_prob: Array,
        z_info: IntegratorState,
        state: HMCAdaptState,
        search: StepSizeSearch | None = None,
    ) -> HMCAdaptState:
        """Adapt after warmup iteration ``t``, whose new point is ``z_info`` (flat)."""
        bk = current()
        xp = bk.xp
        rng_key, search_key = bk.split(state.rng_key)
        step_size, ss_state = state.step_size, state.ss_state
        if self.adapt_step_size:
            ss_state = dual_averaging_update(ss_state, self.target_accept_prob - accept_prob)
            # The last warmup step hands over the averaged iterate, which is less noisy.
            last = t == (self.num_adapt_steps - 1)
            step_size = xp.exp(xp.where(last, ss_state.log_step_size_avg, ss_state.log_step_size))
            finfo = xp.finfo(step_size.dtype)
            step_size = xp.clip(step_size, finfo.tiny, finfo.max)

        schedule = self.schedule
        num_windows = len(schedule)
        window_idx = state.window_idx
        in_slow_window = (0 < window_idx) & (window_idx < num_windows - 1)
        mm_state = state.mm_state
        if self.adapt_mass_matrix:
            mm_state = bk.apply_if(
                in_slow_window,
                lambda s: blockwise(
                    self.layout, lambda b, w: welford_update(w, b.take(z_info.z)), s
                ),
                mm_state,
            )
        ends = xp.asarray([w.end for w in schedule])
        at_window_end = t == ends[xp.minimum(window_idx, num_windows - 1)]
        state = HMCAdaptState(
            step_size,
            state.inverse_mass_matrix,
            state.mass_matrix_sqrt,
            state.mass_matrix_sqrt_inv,
            ss_state,
            mm_state,
            xp.where(at_window_end, window_idx + 1, window_idx),
            rng_key,
        )
        result: HMCAdaptState = bk.apply_if(
            at_window_end & in_slow_window,
            lambda s: self._end_window(s, search_key, search),
            state,
        )
        return result
