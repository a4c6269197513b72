"""Reparameterizers for ``handlers.reparam``: the same model, in coordinates that sample well.

Tutorial: "Reparameterization: reparam" (``tutorial/s09_reparam.py``).

A reparameterizer is called by the ``reparam`` handler as ``(new_fn, value) = r(name, fn,
obs)``. The two here draw auxiliary noise at a new site and return ``(None, value)``: the
handler then turns the original site into a deterministic one holding ``value``, so the
trace keeps the name and the value the model computed with, and inference sees only the
noise site.

References
----------
1. M. I. Gorinova, D. Moore, M. D. Hoffman, "Automatic Reparameterisation of Probabilistic
   Programs", ICML 2020, sec. 3 (partial centering, eq. 3-4).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minippl.backend import current
from minippl.distributions import constraints
from minippl.distributions.distribution import Distribution, ExpandedDistribution, Independent
from minippl.distributions.util import Shape
from minippl.primitives import param, sample

__all__ = ["LocScaleReparam", "Reparam", "TransformReparam"]


class Reparam:
    """Base class: ``__call__(name, fn, obs) -> (new_fn, value)``.

    Returning ``(None, value)`` makes the site deterministic; returning ``(new_fn, value)``
    keeps it a sample site of ``new_fn`` observed at ``value``. The helpers strip and restore
    the ``expand``/``to_event`` wrappers that plates and ``to_event`` put around a
    distribution, so a reparameterizer sees the family it knows.
    """

    def __call__(self, name: str, fn: Distribution, obs: Any) -> tuple[Distribution | None, Any]:
        raise NotImplementedError

    @staticmethod
    def _unwrap(fn: Distribution) -> tuple[Distribution, Shape, int]:
        """``(base, batch_shape, event_dim)``: ``fn`` without its Expanded/Independent layers.

        ``_wrap(base, batch_shape, event_dim)`` rebuilds a distribution with ``fn``'s shapes.
        """
        shape, event_dim = fn.shape(), fn.event_dim
        while isinstance(fn, (ExpandedDistribution, Independent)):
            fn = fn.base_dist
        return fn, shape[: len(shape) - fn.event_dim], event_dim

    @staticmethod
    def _wrap(fn: Distribution, batch_shape: Shape, event_dim: int) -> Distribution:
        fn = fn.expand(batch_shape)
        if fn.event_dim < event_dim:
            fn = fn.to_event(event_dim - fn.event_dim)
        return fn

    @staticmethod
    def _latent_only(kind: str, name: str, obs: Any) -> None:
        if obs is not None:
            raise ValueError(
                f"{kind}: site {name!r} is observed; reparameterizers apply to latent sites "
                "only. Leave it out of the reparam config."
            )


class LocScaleReparam(Reparam):
    """Decenter a location-scale site: ``x ~ F(loc, scale)`` becomes noise at
    ``f"{name}_decentered"`` and the deterministic ``x`` computed from it.

    With centering ``c`` in [0, 1] (ref. 1, eq. 3-4) the noise is
    ``F(c * loc, scale ** c)`` and ``x = loc + scale ** (1 - c) * (noise - c * loc)``:
    ``c = 0`` is the non-centered form (``F(0, 1)`` noise, ``x = loc + scale * noise``),
    ``c = 1`` leaves the site unchanged. ``centered`` may be a float or an array (one per
    element); ``None`` learns it as the param ``f"{name}_centered"`` (in ``unit_interval``,
    starting at 0.5). ``shape_params`` names further constructor arguments copied as they
    are (``("df",)`` for ``StudentT``).

    The family must have real support and ``loc``/``scale`` attributes (Normal, StudentT,
    Cauchy, Laplace, ...), possibly expanded by plates or made an event with ``to_event``;
    anything else is a ``ValueError`` naming the site.
    """

    def __init__(
        self, centered: Any = None, shape_params: tuple[str, ...] | list[str] = ()
    ) -> None:
        if centered is not None:
            backend = current()
            if backend.is_concrete(centered):
                c = backend.xp.asarray(centered)
                if not bool(backend.xp.all((c >= 0) & (c <= 1))):
                    raise ValueError(
                        f"LocScaleReparam: centered must lie in [0, 1] (0 = non-centered, "
                        f"1 = centered), got {centered!r}"
                    )
        if isinstance(shape_params, str) or not all(isinstance(p, str) for p in shape_params):
            raise TypeError(
                f"LocScaleReparam: shape_params must be a tuple of names, got {shape_params!r}"
            )
        self.centered = centered
        self.shape_params = tuple(shape_params)

    def __call__(self, name: str, fn: Distribution, obs: Any) -> tuple[Distribution | None, Any]:
        self._latent_only("LocScaleReparam", name, obs)
        support = fn.support
        while isinstance(support, constraints.independent):
            support = support.base_constraint
        base, batch_shape, event_dim = self._unwrap(fn)
        if support is not constraints.real or not all(
            hasattr(base, attr) for attr in ("loc", "scale", *self.shape_params)
        ):
            raise ValueError(
                f"LocScaleReparam: site {name!r} has a {type(base).__name__} distribution "
                f"(support {support!r}), but decentering needs a location-scale family with "
                f"real support and attributes {', '.join(('loc', 'scale', *self.shape_params))}"
                " (Normal, StudentT with shape_params=('df',), Cauchy, ...). Leave the site "
                "out of the config, or write it as a TransformedDistribution and use "
                "TransformReparam."
            )
        centered = self.centered
        if isinstance(centered, (int, float)) and centered == 1:
            return fn, obs
        xp = current().xp
        family: Any = base  # checked above to have loc and scale
        loc, scale = family.loc, family.scale
        if centered is None:
            centered = param(
                f"{name}_centered",
                xp.full(fn.event_shape, 0.5),
                constraint=constraints.unit_interval,
            )
        params = {p: getattr(base, p) for p in self.shape_params}
        if _is_number(centered) and centered == 0:
            params["loc"], params["scale"] = xp.zeros_like(loc), xp.ones_like(scale)
        else:
            params["loc"], params["scale"] = loc * centered, scale**centered
        noise_fn = self._wrap(type(base)(**params), batch_shape, event_dim)
        noise = sample(f"{name}_decentered", noise_fn)
        # The same operations, in the same order, as NumPyro: equal bits on JAX.
        delta = noise - centered * loc
        return None, loc + xp.power(scale, 1 - centered) * delta


class TransformReparam(Reparam):
    """Draw a ``TransformedDistribution`` site's base noise at ``f"{name}_base"`` and push
    it through the transforms: the site becomes the deterministic ``transform(noise)``.

    Useful when the posterior is simple in the base space (a log-normal scale, an affine
    reparameterization written as ``TransformedDistribution(Normal(0, 1), AffineTransform(loc,
    scale))``). Any other distribution is a ``ValueError`` naming the site.
    """

    def __call__(self, name: str, fn: Distribution, obs: Any) -> tuple[Distribution | None, Any]:
        from minippl.distributions import TransformedDistribution

        self._latent_only("TransformReparam", name, obs)
        base, batch_shape, event_dim = self._unwrap(fn)
        if not isinstance(base, TransformedDistribution):
            raise ValueError(
                f"TransformReparam: site {name!r} has a {type(base).__name__} distribution; "
                "it needs a TransformedDistribution(base_dist, transforms). Write the site "
                "that way, or use LocScaleReparam for a location-scale family."
            )
        # Each transform may change the event rank (stick-breaking adds one dim, ...).
        base_event_dim = event_dim
        for t in reversed(base.transforms):
            base_event_dim += t.domain.event_dim - t.codomain.event_dim
        x = sample(f"{name}_base", self._wrap(base.base_dist, batch_shape, base_event_dim))
        for t in base.transforms:
            x = t(x)
        return None, x


def _is_number(x: Any) -> bool:
    """A Python or NumPy scalar (not an array, not a tracer): safe to compare with ``==``."""
    return isinstance(x, (int, float, np.generic))
