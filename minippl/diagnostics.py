"""Convergence diagnostics for MCMC draws held as host NumPy arrays.

Two families live here.  The NumPyro-compatible ones (``effective_sample_size``,
``gelman_rubin``, ``split_gelman_rubin``, ``hpdi``, ``summary``, ``print_summary``)
reproduce ``numpyro.diagnostics`` so that tables printed by minippl read the same.
The rank-normalised ones (``rhat_rank``, ``ess_bulk``, ``ess_tail``, ``mcse_mean``)
reproduce ArviZ's defaults, which are the currently recommended diagnostics [2].

Arrays of draws are laid out as ``(chains, draws, *site_shape)`` unless stated otherwise.

References
----------
1. A. Gelman et al., *Bayesian Data Analysis*, 3rd ed., sections 11.4-11.5 (2013).
2. A. Vehtari, A. Gelman, D. Simpson, B. Carpenter, P.-C. Buerkner,
   "Rank-normalization, folding, and localization: an improved R-hat for assessing
   convergence of MCMC", *Bayesian Analysis* 16(2) (2021).
3. Stan Development Team, *Stan Reference Manual*, "Effective sample size" section.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import product
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "autocorrelation",
    "autocovariance",
    "effective_sample_size",
    "ess_bulk",
    "ess_tail",
    "format_divergences",
    "gelman_rubin",
    "hpdi",
    "mcse_mean",
    "print_summary",
    "rhat_rank",
    "split_gelman_rubin",
    "summary",
]

Array = NDArray[Any]


# --------------------------------------------------------------------------- NumPyro family


def autocovariance(x: ArrayLike, axis: int = 0, bias: bool = True) -> Array:
    """Autocovariance at every lag along ``axis``, computed with an FFT in O(n log n).

    Parameters
    ----------
    x : array of draws.
    axis : the axis holding the sequence.
    bias : divide every lag by ``n`` (the usual, positive semi-definite estimator) rather
        than by the number of terms in that lag's sum.
    """
    # Imported here: scipy is slow to import, and ``import minippl.infer`` (which imports
    # this module for ``print_summary``) should not pay for it before any draw exists.
    import scipy.fft

    seq = np.moveaxis(np.asarray(x), axis, -1)
    n = seq.shape[-1]
    # Centre in the input precision, then work in float64 (as NumPyro does).
    centred = (seq - seq.mean(axis=-1, keepdims=True)).astype(np.float64, copy=False)
    # Zero padding to >= 2n - 1 turns the FFT's circular correlation into a linear one.
    size = scipy.fft.next_fast_len(2 * n, real=True)
    spectrum = scipy.fft.rfft(centred, n=size, axis=-1)
    power = spectrum.real**2 + spectrum.imag**2
    acov = scipy.fft.irfft(power, n=size, axis=-1)[..., :n]
    acov = acov / n if bias else acov / np.arange(n, 0.0, -1.0)
    return np.moveaxis(acov, -1, axis)


def autocorrelation(x: ArrayLike, axis: int = 0, bias: bool = True) -> Array:
    """Autocorrelation at every lag along ``axis``: the autocovariance over its lag-0 value."""
    acov = autocovariance(x, axis=axis, bias=bias)
    with np.errstate(invalid="ignore", divide="ignore"):
        acorr: Array = acov / np.take(acov, [0], axis=axis)
    return acorr


def _variance_stats(x: Array) -> tuple[Array, Array]:
    """Mean within-chain variance W and the pooled estimate var+ of BDA3 [1] (11.3).

    With one chain there is no between-chain term and NumPyro reports var+ for both.
    """
    n = x.shape[1]
    within = x.var(axis=1, ddof=1).mean(axis=0)
    pooled = within * (n - 1) / n
    if x.shape[0] == 1:
        return pooled, pooled
    return within, pooled + x.mean(axis=1).var(axis=0, ddof=1)


def _combined_autocorrelation(x: Array, bias: bool = True) -> Array:
    """Multi-chain autocorrelation estimate rho_t of [3], with rho_0 set to exactly 1."""
    within, pooled = _variance_stats(x)
    mean_acov = autocovariance(x, axis=1, bias=bias).mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho: Array = 1.0 - (within - mean_acov) / pooled
    rho[0] = 1.0
    return rho


def _check_draws(x: ArrayLike, min_chains: int, min_draws: int) -> Array:
    arr = np.asarray(x)
    if arr.ndim < 2 or arr.shape[0] < min_chains or arr.shape[1] < min_draws:
        raise ValueError(
            f"expected shape (chains >= {min_chains}, draws >= {min_draws}, ...), got {arr.shape}"
        )
    return arr


def effective_sample_size(x: ArrayLike, bias: bool = True) -> Array:
    """NumPyro's multi-chain effective sample size, elementwise over the site dimensions.

    Pairs of consecutive autocorrelations are truncated at the first non-positive pair and
    made non-increasing (Geyer's initial monotone sequence); ESS = chains * draws / tau.
    """
    arr = _check_draws(x, min_chains=1, min_draws=2)
    rho = _combined_autocorrelation(arr, bias)
    pairs = rho[:-1:2] + rho[1::2]
    pairs[1:] = np.minimum.accumulate(np.clip(pairs[1:], 0.0, None), axis=0)
    tau = 2.0 * pairs.sum(axis=0) - 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        return arr.shape[0] * arr.shape[1] / tau  # type: ignore[no-any-return]


def gelman_rubin(x: ArrayLike) -> Array:
    """Potential scale reduction R-hat = sqrt(var+ / W) of BDA3 [1] (11.4); needs >= 2 chains."""
    within, pooled = _variance_stats(_check_draws(x, min_chains=2, min_draws=2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt(pooled / within)


def _split_chains(x: Array) -> Array:
    """Cut every chain into its first and last halves (the middle draw of an odd length goes)."""
    half = x.shape[1] // 2
    return np.concatenate([x[:, :half], x[:, x.shape[1] - half :]], axis=0)


def split_gelman_rubin(x: ArrayLike) -> Array:
    """R-hat over half-chains, which also flags a trend within a single chain [1]."""
    return gelman_rubin(_split_chains(_check_draws(x, min_chains=1, min_draws=4)))


def _hpdi_sorted(sorted_x: Array, prob: float) -> tuple[Array, Array]:
    """Narrowest window holding ``int(prob * n)`` steps of draws sorted along axis 0."""
    n = sorted_x.shape[0]
    span = int(prob * n)
    start = (sorted_x[span:] - sorted_x[: n - span]).argmin(axis=0)[None]
    low = np.take_along_axis(sorted_x, start, axis=0)
    return low, np.take_along_axis(sorted_x, start + span, axis=0)


def hpdi(x: ArrayLike, prob: float = 0.9, axis: int = 0) -> Array:
    """Highest posterior density interval: the narrowest interval holding mass ``prob``.

    Returns ``x``'s shape with ``axis`` replaced by 2 (lower bound, upper bound).
    """
    sorted_x = np.sort(np.moveaxis(np.asarray(x), axis, 0), axis=0)
    low, high = _hpdi_sorted(sorted_x, prob)
    return np.moveaxis(np.concatenate([low, high], axis=0), 0, axis)


def _as_sites(samples: Any, group_by_chain: bool) -> dict[str, Array]:
    """Name the sites as NumPyro does: dict keys, or ``Param:i`` for bare arrays."""
    if isinstance(samples, Mapping):
        # NumPyro adds the chain axis with a pytree map, which sorts dict keys.
        keys = list(samples) if group_by_chain else sorted(samples)
        sites = {k: np.asarray(samples[k]) for k in keys}
    elif isinstance(samples, list | tuple):
        sites = {f"Param:{i}": np.asarray(v) for i, v in enumerate(samples)}
    else:
        sites = {"Param:0": np.asarray(samples)}
    return sites if group_by_chain else {k: v[None] for k, v in sites.items()}


def summary(samples: Any, prob: float = 0.9, group_by_chain: bool = True) -> dict[str, Any]:
    """Per-site posterior summary: mean, std, median, HPDI bounds, n_eff and split R-hat.

    Parameters
    ----------
    samples : dict of arrays, a list of arrays or one array.
    prob : mass of the HPDI; its bounds are keyed like ``"5.0%"`` and ``"95.0%"``.
    group_by_chain : whether arrays are ``(chains, draws, ...)`` rather than ``(draws, ...)``.
    """
    lower, upper = f"{50 * (1 - prob):.1f}%", f"{50 * (1 + prob):.1f}%"
    table: dict[str, Any] = {}
    for name, value in _as_sites(samples, group_by_chain).items():
        if len(value) == 0:
            continue
        draws = value.reshape((-1,) + value.shape[2:])
        flat = np.sort(draws, axis=0)
        n = flat.shape[0]
        median = (flat[(n - 1) // 2] + flat[n // 2]) / 2
        # Sorting puts NaN last; report NaN there, as np.median would.
        median = np.where(np.isnan(flat[-1]), median.dtype.type(np.nan), median)
        low, high = _hpdi_sorted(flat, prob)
        table[name] = {
            "mean": draws.mean(axis=0),
            "std": draws.std(axis=0, ddof=1),
            "median": median,
            lower: low[0],
            upper: high[0],
            "n_eff": effective_sample_size(value),
            "r_hat": split_gelman_rubin(value),
        }
    return table


def print_summary(samples: Any, prob: float = 0.9, group_by_chain: bool = True) -> None:
    """Print :func:`summary` as NumPyro's table, one row per scalar element (``theta[0]``)."""
    sites = _as_sites(samples, group_by_chain)
    table = summary(sites, prob, group_by_chain=True)
    if not table:
        return
    # NumPyro sizes the name column from "name[d0-1,d1-1]" (so "mu[]" for scalars).
    labels = [f"{k}[{','.join(str(d - 1) for d in v.shape[2:])}]" for k, v in sites.items()]
    name_fmt = "{:>" + str(max(10, *map(len, labels))) + "}"
    columns = list(next(iter(table.values())))
    print()
    print((name_fmt + " {:>9}" * len(columns)).format("", *columns))
    row_fmt = name_fmt + " {:>9.2f}" * len(columns)
    for name, stats in table.items():
        shape = stats["mean"].shape
        for idx in product(*map(range, shape)):
            label = name + (f"[{','.join(map(str, idx))}]" if shape else "")
            print(row_fmt.format(label, *(v[idx] for v in stats.values())))
    print()


def format_divergences(n: int) -> str:
    """The line MCMC prints under the summary table."""
    return f"Number of divergences: {n}"


# --------------------------------------------------------------------------- ArviZ family


def _elementwise(func: Callable[[Array], float], x: ArrayLike) -> Array:
    """Apply a ``(chains, draws) -> float`` diagnostic to every site element of ``x``.

    A 1-D input is one chain.  The result has shape ``x.shape[2:]``.
    """
    arr = np.asarray(x)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim < 2:
        raise ValueError(f"expected shape (chains, draws, ...), got {arr.shape}")
    out = np.empty(arr.shape[2:])
    for idx in np.ndindex(*arr.shape[2:]):
        out[idx] = func(arr[(slice(None), slice(None), *idx)])
    return out


def _unusable(x: Array, min_chains: int) -> bool:
    """ArviZ answers NaN for any NaN draw, fewer than 4 draws or too few chains."""
    return bool(np.isnan(x).any()) or x.shape[0] < min_chains or x.shape[1] < 4


def _z_scale(x: Array) -> Array:
    """Rank-normalise [2]: pooled average ranks, Blom offset 3/8, through the normal ppf."""
    import scipy.special  # imported here, as in ``autocovariance``
    import scipy.stats

    ranks = scipy.stats.rankdata(x, method="average").reshape(x.shape)
    offset = 3.0 / 8.0
    return scipy.special.ndtri((ranks - offset) / (x.size - 2 * offset + 1))  # type: ignore[no-any-return]


def _geyer_ess(x: Array) -> float:
    """ArviZ's ESS of a (chains >= 2, draws) array, after Stan [3].

    Autocorrelations are kept in (even, odd) pairs while the pair sum stays positive, then
    made monotone; the last positive even term is added once, and tau is floored at
    1 / log10(size) to cap the ESS of antithetic chains.
    """
    x = x.astype(float)
    if np.max(x) - np.min(x) < np.finfo(float).resolution:
        return float(x.size)
    rho = _combined_autocorrelation(x)
    n = x.shape[1]
    kept = np.zeros(n)
    kept[:2] = rho[:2]
    even, odd = 1.0, float(rho[1])
    t = 1
    while t < n - 3 and even + odd > 0.0:
        even, odd = float(rho[t + 1]), float(rho[t + 2])
        if even + odd >= 0.0:
            kept[t + 1 : t + 3] = even, odd
        t += 2
    last = t - 2  # index of the last odd term inside the truncated sum
    if even > 0.0:
        kept[last + 1] = even
    for t in range(1, last - 1, 2):
        previous = kept[t - 1] + kept[t]
        if kept[t + 1] + kept[t + 2] > previous:
            kept[t + 1] = kept[t + 2] = previous / 2.0
    tau = -1.0 + 2.0 * kept[: last + 1].sum() + kept[last + 1 : last + 2].sum()
    tau = max(tau, 1.0 / np.log10(x.size))
    return float("nan") if np.isnan(kept).any() else x.size / tau


def rhat_rank(x: ArrayLike) -> Array:
    """Rank-normalised split R-hat [2]: the larger of the bulk and the folded (tail) R-hat."""

    def one(a: Array) -> float:
        if _unusable(a, min_chains=2):
            return float("nan")
        split = _split_chains(a)
        bulk = float(gelman_rubin(_z_scale(split)))
        tail = float(gelman_rubin(_z_scale(np.abs(split - np.median(split)))))
        return max(bulk, tail)

    return _elementwise(one, x)


def ess_bulk(x: ArrayLike) -> Array:
    """Bulk ESS [2]: the ESS of the rank-normalised split chains."""

    def one(a: Array) -> float:
        return float("nan") if _unusable(a, 1) else _geyer_ess(_z_scale(_split_chains(a)))

    return _elementwise(one, x)


def ess_tail(x: ArrayLike, prob: float | Sequence[float] = (0.05, 0.95)) -> Array:
    """Tail ESS [2]: the smaller ESS of the indicators ``x <= q`` at the two quantiles.

    ``prob`` is a (low, high) pair, or one probability p meaning (p, 1 - p).
    """
    low, high = (prob, 1 - prob) if isinstance(prob, float | int) else tuple(prob)

    def quantile_ess(a: Array, p: float) -> float:
        indicator = (a <= np.quantile(a, p)).astype(float)
        return _geyer_ess(_split_chains(indicator))

    def one(a: Array) -> float:
        if _unusable(a, min_chains=1):
            return float("nan")
        return min(quantile_ess(a, low), quantile_ess(a, high))

    return _elementwise(one, x)


def mcse_mean(x: ArrayLike) -> Array:
    """Monte Carlo standard error of the posterior mean: sd / sqrt(ESS of split chains)."""

    def one(a: Array) -> float:
        if _unusable(a, min_chains=1):
            return float("nan")
        return float(np.std(a, ddof=1)) / float(np.sqrt(_geyer_ess(_split_chains(a))))

    return _elementwise(one, x)
