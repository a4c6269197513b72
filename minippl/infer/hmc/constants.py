"""Every tuning constant of the HMC and NUTS samplers, in one place, with its source.

Tutorial: "Reparameterization: reparam", where NUTS meets the funnel (``tutorial/s09_reparam.py``).

References
----------
1. M. D. Hoffman, A. Gelman, "The No-U-Turn Sampler", JMLR 15 (2014), section 3.2
   (dual averaging) and algorithm 4 (initial step-size heuristic).
2. M. Betancourt, "A Conceptual Introduction to Hamiltonian Monte Carlo" (2017),
   appendix A.3-A.4 (multinomial sampling, divergences, the generalised U-turn criterion).
3. Stan Development Team, *Stan Reference Manual*, "HMC algorithm parameters" and
   "Adaptation" sections (windows, regularisation, tree depth, divergence threshold).
"""

from __future__ import annotations

__all__ = [
    "BASE_WINDOW",
    "DUAL_AVERAGING_GAMMA",
    "DUAL_AVERAGING_KAPPA",
    "DUAL_AVERAGING_T0",
    "INIT_BUFFER",
    "INIT_BUFFER_FRACTION",
    "MAX_DELTA_ENERGY",
    "MAX_TREE_DEPTH",
    "MIN_WINDOWED_WARMUP",
    "REGULARIZE_JITTER",
    "REGULARIZE_PRIOR_DRAWS",
    "STEP_SIZE_SEARCH_ACCEPT",
    "TARGET_ACCEPT_PROB",
    "TERM_BUFFER",
    "TERM_BUFFER_FRACTION",
]

# -- dual averaging of the step size [1, section 3.2] ----------------------------------------
DUAL_AVERAGING_T0 = 10.0
"""Stabilises the first iterations (damps the early, noisy acceptance statistics)."""
DUAL_AVERAGING_KAPPA = 0.75
"""Decay of the weight on new iterates in the running average of log step sizes."""
DUAL_AVERAGING_GAMMA = 0.05
"""How strongly the iterates are pulled back towards ``mu = log(10 * step_size)``."""
TARGET_ACCEPT_PROB = 0.8
"""Target mean acceptance statistic (NumPyro's and Stan's default ``delta``)."""
STEP_SIZE_SEARCH_ACCEPT = 0.8
"""The heuristic search doubles or halves until one leapfrog step crosses this acceptance [1]."""

# -- NUTS trajectories [2, appendix A.4; 3] ---------------------------------------------------
MAX_TREE_DEPTH = 10
"""At most ``2**10 - 1 = 1023`` leapfrog steps per transition."""
MAX_DELTA_ENERGY = 1000.0
"""A leaf whose energy exceeds the initial energy by more than this is a divergence."""

# -- Stan's windowed warmup [3, "Adaptation"] --------------------------------------------------
MIN_WINDOWED_WARMUP = 20
"""Below this many warmup steps there is one window: step-size adaptation only."""
INIT_BUFFER = 75
"""Fast initial buffer: only the step size adapts while the chain finds the typical set."""
BASE_WINDOW = 25
"""First slow window, where the mass matrix is estimated; each next one doubles."""
TERM_BUFFER = 50
"""Fast final buffer: the step size settles for the last mass matrix."""
INIT_BUFFER_FRACTION = 0.15
TERM_BUFFER_FRACTION = 0.10
"""Buffers as fractions of the warmup when 75 + 25 + 50 do not fit."""

# -- Stan's regularisation of the estimated covariance [3] -------------------------------------
REGULARIZE_PRIOR_DRAWS = 5.0
REGULARIZE_JITTER = 1e-3
"""``cov <- n/(n+5) * cov + 1e-3 * 5/(n+5) * I``: a weak prior of five draws at 1e-3 * I."""
