"""The Gaussian with a low-rank-plus-diagonal covariance ``W W^T + diag(D)``.

Tutorial: "Variational inference: SVI from the handlers" (``tutorial/s14_svi.py``), where
``AutoLowRankMultivariateNormal`` uses it.

With ``W`` of shape ``(n, k)`` and ``k << n`` its density costs ``O(n k^2)`` rather than
``O(n^3)``: the log determinant by the matrix determinant lemma and the Mahalanobis term by
the Woodbury identity, both through the ``k x k`` capacitance ``C = I + W^T D^-1 W``.
A draw is ``loc + W eps_W + sqrt(D) eps_D`` with the two noises from ``split(key)``, as in
NumPyro (so the same key gives the same draw).

>>> import numpy as np
>>> from minippl.distributions.lowrank import LowRankMultivariateNormal
>>> d = LowRankMultivariateNormal(np.zeros(3), np.ones((3, 1)), np.ones(3))
>>> d.covariance_matrix.tolist()
[[2.0, 1.0, 1.0], [1.0, 2.0, 1.0], [1.0, 1.0, 2.0]]
"""

from __future__ import annotations

import math
from typing import Any

from minippl.backend import current
from minippl.distributions import constraints
from minippl.distributions.distribution import Distribution
from minippl.distributions.util import add_diag, broadcast_shapes, shape_of, solve_lower

Shape = tuple[int, ...]


class LowRankMultivariateNormal(Distribution):
    """``N(loc, cov_factor @ cov_factor.T + diag(cov_diag))`` on R^n."""

    arg_constraints = {
        "loc": constraints.real_vector,
        "cov_factor": constraints.independent(constraints.real, 2),
        "cov_diag": constraints.independent(constraints.positive, 1),
    }
    support = constraints.real_vector
    reparametrized_params = ("loc", "cov_factor", "cov_diag")

    def __init__(
        self, loc: Any, cov_factor: Any, cov_diag: Any, *, validate_args: bool | None = None
    ) -> None:
        xp = current().xp
        loc, cov_factor, cov_diag = xp.asarray(loc), xp.asarray(cov_factor), xp.asarray(cov_diag)
        n = shape_of(loc)[-1:]
        if len(n) != 1 or shape_of(cov_factor)[-2:-1] != n or shape_of(cov_diag)[-1:] != n:
            raise ValueError(
                "LowRankMultivariateNormal: loc (n,), cov_factor (n, k) and cov_diag (n,) must "
                f"agree on n; got {shape_of(loc)}, {shape_of(cov_factor)}, {shape_of(cov_diag)}"
            )
        batch = broadcast_shapes(
            shape_of(loc)[:-1], shape_of(cov_factor)[:-2], shape_of(cov_diag)[:-1]
        )
        self.loc, self.cov_factor, self.cov_diag = loc, cov_factor, cov_diag
        super().__init__(batch, n, validate_args=validate_args)

    @classmethod
    def _infer_shapes(cls, shapes: dict[str, Shape]) -> tuple[Shape, Shape]:
        loc, factor, diag = shapes["loc"], shapes["cov_factor"], shapes["cov_diag"]
        what = "LowRankMultivariateNormal"
        batch = broadcast_shapes(loc[:-1], factor[:-2], diag[:-1], what=what)
        return batch, broadcast_shapes(loc[-1:], factor[-2:-1], diag[-1:], what=what)

    @property
    def _capacitance_tril(self) -> Any:
        """Cholesky factor of ``I + W^T D^-1 W`` (k x k)."""
        xp = current().xp
        wt_dinv = xp.swapaxes(self.cov_factor, -1, -2) / self.cov_diag[..., None, :]
        return current().cholesky(add_diag(xp.matmul(wt_dinv, self.cov_factor), 1.0))

    @property
    def covariance_matrix(self) -> Any:
        xp = current().xp
        outer = xp.matmul(self.cov_factor, xp.swapaxes(self.cov_factor, -1, -2))
        return add_diag(outer, self.cov_diag)

    @property
    def scale_tril(self) -> Any:
        """A Cholesky factor of the covariance, from the well-conditioned
        ``D^1/2 (I + D^-1/2 W W^T D^-1/2) D^1/2``."""
        xp = current().xp
        sqrt_d = xp.sqrt(self.cov_diag)[..., None]
        scaled = self.cov_factor / sqrt_d
        inner = add_diag(xp.matmul(scaled, xp.swapaxes(scaled, -1, -2)), 1.0)
        return sqrt_d * current().cholesky(inner)

    def _log_det_covariance(self, cap: Any) -> Any:
        """``log|W W^T + D| = log|C| + log|D|`` (the determinant lemma), ``cap`` a Cholesky
        factor of ``C``."""
        xp = current().xp
        log_det_cap = 2 * xp.sum(xp.log(xp.diagonal(cap, axis1=-2, axis2=-1)), axis=-1)
        return log_det_cap + xp.sum(xp.log(self.cov_diag), axis=-1)

    def entropy(self) -> Any:
        """``n (1 + log 2 pi) / 2 + log|covariance| / 2``."""
        n = self.event_shape[0]
        log_det = self._log_det_covariance(self._capacitance_tril)
        h = 0.5 * n * (1.0 + math.log(2 * math.pi)) + 0.5 * log_det
        return current().xp.broadcast_to(h, self.batch_shape)

    @property
    def mean(self) -> Any:
        return current().xp.broadcast_to(self.loc, self.batch_shape + self.event_shape)

    @property
    def variance(self) -> Any:
        xp = current().xp
        raw = xp.sum(xp.square(self.cov_factor), axis=-1) + self.cov_diag
        return xp.broadcast_to(raw, self.batch_shape + self.event_shape)

    def sample(self, key: Any, sample_shape: Shape = ()) -> Any:
        backend = current()
        xp = backend.xp
        keys = backend.split(key)
        batch = tuple(sample_shape) + self.batch_shape
        eps_w = backend.normal(keys[0], batch + shape_of(self.cov_factor)[-1:])
        eps_d = backend.normal(keys[1], batch + shape_of(self.cov_diag)[-1:])
        along_w = xp.squeeze(xp.matmul(self.cov_factor, eps_w[..., None]), axis=-1)
        return self.loc + along_w + xp.sqrt(self.cov_diag) * eps_d

    def _log_prob(self, value: Any) -> Any:
        xp = current().xp
        diff = value - self.loc
        cap = self._capacitance_tril
        wt_dinv = xp.swapaxes(self.cov_factor, -1, -2) / self.cov_diag[..., None, :]
        projected = xp.squeeze(xp.matmul(wt_dinv, diff[..., None]), axis=-1)
        # Woodbury: x^T (W W^T + D)^-1 x = x^T D^-1 x - |C^-1/2 W^T D^-1 x|^2.
        solved = solve_lower(cap, projected[..., None])[..., 0]
        mahalanobis = xp.sum(xp.square(diff) / self.cov_diag, axis=-1) - xp.sum(
            xp.square(solved), axis=-1
        )
        log_det = self._log_det_covariance(cap)
        n = self.event_shape[0]
        return -0.5 * (n * math.log(2 * math.pi) + log_det + mahalanobis)
