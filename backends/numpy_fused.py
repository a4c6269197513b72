"""The NumPy backend's fused formulas: each a single autograd node.

The core marks a few formulas that every potential evaluates (``minippl._fast.fusable``):
the normal and Cauchy log densities, the Bernoulli log probability, ``softplus`` and the
sigmoid's log slope (the log-Jacobian of the map to a probability), and the running sum of
the sites' log densities. Written with ``xp``, each records one autograd node per operation
(the normal log density six); here each is one node whose derivative is written out, so a
gradient walks fewer nodes. The values are computed by the same NumPy operations as the
formulas, in the same order, so they are the same numbers; the gradients are the same
derivatives, computed directly rather than composed operation by operation (they agree to
rounding, and the tests check both against the formulas and against finite differences).

Examples
--------
>>> import numpy as np
>>> from backends.numpy_autodiff import value_and_grad
>>> value, grad = value_and_grad(lambda m: FUSED["normal_log_density"](1.0, m, 2.0))(0.0)
>>> float(grad)  # d/dloc of log N(1 | loc, 2) at loc = 0: (1 - 0) / 2**2
0.25
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.special as sps

from backends import numpy_autodiff
from backends.numpy_autodiff import ratio_or_zero
from backends.numpy_nodes import broadcast_back, fuse

__all__ = ["FUSED"]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
_LOG_PI = math.log(math.pi)
xp = numpy_autodiff.xp


# -- the normal log density: -z**2 / 2 - log(scale) - log(2 pi) / 2, z = (value - loc) / scale


def _normal_forward(value: Any, loc: Any, scale: Any) -> tuple[Any, Any]:
    z = (value - loc) / scale
    return -0.5 * z**2 - np.log(scale) - _HALF_LOG_2PI, z


def _normal_plain(value: Any, loc: Any, scale: Any) -> Any:
    z = (value - loc) / scale
    return -0.5 * z**2 - xp.log(scale) - _HALF_LOG_2PI


# d/dz = -z; dz/dvalue = 1 / scale, dz/dloc = -1 / scale; d/dscale = (z**2 - 1) / scale.
normal_log_density = fuse(
    _normal_forward,
    (
        lambda g, z, value, loc, scale: -g * z / scale,
        lambda g, z, value, loc, scale: g * z / scale,
        lambda g, z, value, loc, scale: g * (z * z - 1.0) / scale,
    ),
    _normal_plain,
)


# -- the Cauchy log density: -log(pi) - log(scale) - log(1 + z**2) ------------------------------


def _cauchy_forward(value: Any, loc: Any, scale: Any) -> tuple[Any, Any]:
    z = (value - loc) / scale
    return -_LOG_PI - np.log(scale) - np.log1p(z**2), z


def _cauchy_plain(value: Any, loc: Any, scale: Any) -> Any:
    z = (value - loc) / scale
    return -_LOG_PI - xp.log(scale) - xp.log1p(z**2)


def _cauchy_slope(z: Any) -> Any:
    """d/dz of ``-log(1 + z**2)``."""
    return -2.0 * z / (1.0 + z * z)


cauchy_log_density = fuse(
    _cauchy_forward,
    (
        lambda g, z, value, loc, scale: g * _cauchy_slope(z) / scale,
        lambda g, z, value, loc, scale: -g * _cauchy_slope(z) / scale,
        lambda g, z, value, loc, scale: -g * (z * _cauchy_slope(z) + 1.0) / scale,
    ),
    _cauchy_plain,
)


# -- softplus: max(x, 0) + log1p(exp(-|x|)), whose derivative is the logistic sigmoid ------------


def _softplus_forward(x: Any) -> tuple[Any, Any]:
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x))), None


def _softplus_plain(x: Any) -> Any:
    return xp.maximum(x, 0.0) + xp.log1p(xp.exp(-xp.abs(x)))


softplus = fuse(_softplus_forward, (lambda g, saved, x: g * sps.expit(x),), _softplus_plain)


# -- the potential's running sum: total + sum(log_prob) --------------------------------------


def _add_up_forward(total: Any, log_prob: Any) -> tuple[Any, Any]:
    return total + np.sum(log_prob), None


def _add_up_plain(total: Any, log_prob: Any) -> Any:
    return total + xp.sum(log_prob)


add_up = fuse(
    _add_up_forward,
    (
        lambda g, saved, total, log_prob: g,
        lambda g, saved, total, log_prob: broadcast_back(g, np.shape(log_prob)),
    ),
    _add_up_plain,
)


# -- the sigmoid's log slope: -softplus(x) - softplus(-x), whose derivative is 1 - 2 sigmoid(x) --


def _log_sigmoid_slope_forward(x: Any) -> tuple[Any, Any]:
    return -_softplus_forward(x)[0] - _softplus_forward(-x)[0], None


def _log_sigmoid_slope_plain(x: Any) -> Any:
    return -softplus(x) - softplus(-x)


log_sigmoid_slope = fuse(
    _log_sigmoid_slope_forward,
    (lambda g, saved, x: g * (1.0 - 2.0 * sps.expit(x)),),
    _log_sigmoid_slope_plain,
)


# -- the Bernoulli log probability: xlogy(value, probs) + xlog1py(1 - value, -probs) ------------


def _bernoulli_forward(value: Any, probs: Any) -> tuple[Any, Any]:
    return sps.xlogy(value, probs) + sps.xlog1py(1 - value, -probs), None


def _bernoulli_plain(value: Any, probs: Any) -> Any:
    sp = numpy_autodiff.special
    return sp.xlogy(value, probs) + sp.xlog1py(1 - value, -probs)


# d/dprobs: value / probs - (1 - value) / (1 - probs), each term 0 where its factor is 0.
bernoulli_log_prob = fuse(
    _bernoulli_forward,
    (
        lambda g, saved, value, probs: sps.xlogy(g, probs) - sps.xlog1py(g, -probs),
        lambda g, saved, value, probs: (
            g * (ratio_or_zero(value, probs) - ratio_or_zero(1 - value, 1 - probs))
        ),
    ),
    _bernoulli_plain,
)


FUSED: dict[str, Callable[..., Any]] = {
    "normal_log_density": normal_log_density,
    "cauchy_log_density": cauchy_log_density,
    "softplus": softplus,
    "add_up": add_up,
    "log_sigmoid_slope": log_sigmoid_slope,
    "bernoulli_log_prob": bernoulli_log_prob,
}
"""The fused formulas by the names ``minippl._fast.fusable`` looks up."""
