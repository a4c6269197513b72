"""``Wishart`` and ``WishartCholesky``: distributions over covariance matrices.

With ``nu`` degrees of freedom and scale ``S = L L^T`` (``p x p``), ``X ~ Wishart(nu, S)`` is
the scatter matrix of ``nu`` draws from ``Normal(0, S)``; ``WishartCholesky`` is the law of
the Cholesky factor of such an ``X``. Draws use Bartlett's decomposition [1, section 3.2.1]:
``X = (L A)(L A)^T`` with ``A`` lower triangular, ``A_ii^2 ~ chi2(nu - i)`` (``i`` from 0)
and ``A_ij ~ Normal(0, 1)`` below the diagonal. Names and parameters are NumPyro's; draws are
not NumPyro's numbers for the same key.

1. R. J. Muirhead, "Aspects of Multivariate Statistical Theory", Wiley, 1982.
"""

from __future__ import annotations

import math
from typing import Any

from minippl.backend import current
from minippl.distributions import constraints
from minippl.distributions.constraints import Constraint
from minippl.distributions.distribution import Distribution
from minippl.distributions.util import (
    Shape,
    broadcast_shapes,
    cholesky_of_inverse,
    float_type_of,
    multigammaln,
    shape_of,
    tri_logabsdet,
)

__all__ = ["Wishart", "WishartCholesky"]


def _scale_tril(scale_matrix: Any, rate_matrix: Any, scale_tril: Any) -> Any:
    """The lower Cholesky factor of the scale, from whichever form was given."""
    given = [m is not None for m in (scale_matrix, rate_matrix, scale_tril)]
    if sum(given) != 1:
        raise ValueError("Wishart: give exactly one of scale_matrix, rate_matrix, scale_tril")
    backend = current()
    if scale_tril is not None:
        return backend.xp.asarray(scale_tril)
    if scale_matrix is not None:
        return backend.cholesky(backend.xp.asarray(scale_matrix))
    return cholesky_of_inverse(backend.xp.asarray(rate_matrix))


class WishartCholesky(Distribution):
    """The lower Cholesky factor ``C`` of ``X ~ Wishart(concentration, L L^T)``.

    Its log density is the Wishart's at ``C C^T`` plus the log-Jacobian of ``C -> C C^T``,
    ``p log 2 + sum_i (p - i) log C_ii`` (``i`` from 0).
    """

    arg_constraints: dict[str, Constraint] = {
        "concentration": constraints.positive,
        "scale_tril": constraints.lower_cholesky,
    }
    support: Constraint = constraints.lower_cholesky
    reparametrized_params = ("scale_tril",)

    def __init__(
        self,
        concentration: Any,
        scale_matrix: Any = None,
        rate_matrix: Any = None,
        scale_tril: Any = None,
        *,
        validate_args: bool | None = None,
    ) -> None:
        tril = _scale_tril(scale_matrix, rate_matrix, scale_tril)
        self.concentration = concentration
        self.scale_tril = tril
        batch = broadcast_shapes(shape_of(concentration), tril.shape[:-2], what="Wishart")
        super().__init__(batch, tril.shape[-2:], validate_args=validate_args)

    @property
    def dim(self) -> int:
        return int(self.event_shape[-1])

    def _log_prob(self, value: Any) -> Any:
        backend = current()
        xp = backend.xp
        p, nu = self.dim, xp.asarray(self.concentration)
        # tr(S^-1 X) = ||L^-1 C||_F^2 for X = C C^T.
        whitened = backend.solve_triangular(self.scale_tril, value, lower=True)
        trace = xp.sum(whitened**2, axis=(-2, -1))
        log_det_x_half = tri_logabsdet(value)  # log |C| = log|X| / 2
        log_wishart = (
            (nu - p - 1) * log_det_x_half
            - 0.5 * trace
            - 0.5 * nu * p * math.log(2.0)
            - nu * tri_logabsdet(self.scale_tril)
            - multigammaln(0.5 * nu, p)
        )
        diag = xp.diagonal(value, axis1=-2, axis2=-1)
        powers = xp.arange(p, 0, -1, dtype=diag.dtype)  # p - i, for i = 0 .. p-1
        log_jacobian = p * math.log(2.0) + xp.sum(powers * xp.log(diag), axis=-1)
        return log_wishart + log_jacobian

    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        backend = current()
        xp = backend.xp
        p = self.dim
        shape = tuple(sample_shape) + self.batch_shape
        keys = backend.split(key)
        nu = xp.broadcast_to(xp.asarray(self.concentration), shape)
        # Bartlett: chi2(nu - i) on the diagonal (chi2(k) = 2 Gamma(k / 2)), normals below.
        dofs = xp.expand_dims(nu, -1) - xp.arange(p)
        diag = xp.sqrt(2.0 * backend.gamma(keys[0], 0.5 * dofs, shape + (p,)))
        below = xp.tril(backend.normal(keys[1], shape + (p, p)), k=-1)
        bartlett = below + diag[..., None] * xp.eye(p)
        return self.scale_tril @ bartlett


# Wishart repeats WishartCholesky's parameters and signature (``duplicates`` pairs them): it is
# the public constructor for the matrices themselves, and passes them on to its factor.
class Wishart(Distribution):
    """Positive definite matrices: the scatter of ``concentration`` Normal(0, S) draws.

    >>> import numpy as np
    >>> import minippl.distributions as dist
    >>> d = dist.Wishart(5.0, scale_matrix=np.eye(2))
    >>> d.event_shape, np.asarray(d.mean).tolist()
    ((2, 2), [[5.0, 0.0], [0.0, 5.0]])
    """

    arg_constraints: dict[str, Constraint] = {
        "concentration": constraints.positive,
        "scale_tril": constraints.lower_cholesky,
    }
    support: Constraint = constraints.positive_definite
    reparametrized_params = ("scale_tril",)

    def __init__(
        self,
        concentration: Any,
        scale_matrix: Any = None,
        rate_matrix: Any = None,
        scale_tril: Any = None,
        *,
        validate_args: bool | None = None,
    ) -> None:
        self._factor = WishartCholesky(
            concentration, scale_matrix, rate_matrix, scale_tril, validate_args=False
        )
        self.concentration = concentration
        self.scale_tril = self._factor.scale_tril
        super().__init__(
            self._factor.batch_shape, self._factor.event_shape, validate_args=validate_args
        )

    def _log_prob(self, value: Any) -> Any:
        backend = current()
        factor = backend.cholesky(value)
        p = self._factor.dim
        # The factor's density less its Jacobian term is the Wishart density of C C^T.
        diag = backend.xp.diagonal(factor, axis1=-2, axis2=-1)
        powers = backend.xp.arange(p, 0, -1, dtype=diag.dtype)
        log_jacobian = p * math.log(2.0) + backend.xp.sum(powers * backend.xp.log(diag), axis=-1)
        return self._factor._log_prob(factor) - log_jacobian

    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        factor = self._factor.sample(key, sample_shape)
        return factor @ current().xp.swapaxes(factor, -2, -1)

    def _scale(self) -> Any:
        tril = self.scale_tril
        return tril @ current().xp.swapaxes(tril, -2, -1)

    @property
    def mean(self) -> Any:
        xp = current().xp
        nu = xp.asarray(self.concentration)[..., None, None]
        return xp.broadcast_to(nu * self._scale(), self.batch_shape + self.event_shape)

    @property
    def variance(self) -> Any:
        """``Var X_ij = nu (S_ij^2 + S_ii S_jj)``."""
        xp = current().xp
        nu = xp.asarray(self.concentration)[..., None, None]
        s = self._scale()
        diag = xp.diagonal(s, axis1=-2, axis2=-1)
        spread = s**2 + diag[..., :, None] * diag[..., None, :]
        return xp.broadcast_to(nu * spread, self.batch_shape + self.event_shape)

    def entropy(self) -> Any:
        """``-E log p(X)``: the log density is linear in ``log|X|`` and ``tr(S^-1 X)``, whose
        means are ``psi_p(nu / 2) + p log 2 + log|S|`` and ``nu p``, which gives

        ``(p + 1)/2 log|S| + p (p + 1)/2 log 2 + log Gamma_p(nu / 2)
        - (nu - p - 1)/2 psi_p(nu / 2) + nu p / 2``,

        with ``psi_p(a) = sum_i digamma(a - i / 2)`` (``i`` from 0 to ``p - 1``) the
        derivative of ``log Gamma_p``.

        >>> import numpy as np
        >>> import minippl.distributions as dist
        >>> round(float(dist.Wishart(3.0, scale_matrix=np.eye(1)).entropy()), 4)  # chi2(3)
        2.0541
        """
        xp, sp = current().xp, current().special
        p, nu = self._factor.dim, xp.asarray(self.concentration)
        half_steps = 0.5 * xp.arange(p, dtype=float_type_of(nu))
        multidigamma = xp.sum(sp.digamma(xp.expand_dims(0.5 * nu, -1) - half_steps), axis=-1)
        h = (
            (p + 1) * tri_logabsdet(self.scale_tril)  # log|L| = log|S| / 2
            + 0.5 * p * (p + 1) * math.log(2.0)
            + multigammaln(0.5 * nu, p)
            - 0.5 * (nu - p - 1) * multidigamma
            + 0.5 * nu * p
        )
        return xp.broadcast_to(h, self.batch_shape)
