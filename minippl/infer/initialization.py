"""Where a sampler starts: per-site initialisation strategies.

Tutorial: "Causal inference: do", where the email model is fitted (``tutorial/s08_causal_do.py``).

A strategy is a function of one site (a :class:`~minippl.messages.Message`) that returns the
site's initial *constrained* value, or ``None`` to leave the site alone. It is used as
``substitute(seed(model, key), substitute_fn=strategy)``: ``seed`` gives every latent site a
key first, and the strategy may draw with it. Called without a site, each strategy returns
itself with its options bound, so ``init_to_median(num_samples=31)`` is a strategy too
(NumPyro's convention).

Only continuous latent sample sites are initialised; observed sites, discrete sites, params
and deterministic sites return ``None``.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from minippl.backend import current
from minippl.messages import Message

__all__ = [
    "InitStrategy",
    "init_to_feasible",
    "init_to_median",
    "init_to_sample",
    "init_to_uniform",
    "init_to_value",
]

InitStrategy = Callable[..., Any]
"""``strategy(site) -> constrained value or None``; ``strategy()`` returns a bound strategy."""


def _is_latent(site: Message) -> bool:
    """A continuous latent sample site: the only kind a strategy initialises."""
    return (
        site.type == "sample"
        and not site.is_observed
        and not getattr(site.fn.support, "is_discrete", False)
    )


def _keep_existing(site: Message, strategy: str) -> Any:
    """A site that already has a value (set by a handler inside) keeps it, with a warning."""
    warnings.warn(
        f"{strategy}() leaves site {site.name!r} at the value it already has",
        UserWarning,
        stacklevel=4,
    )
    return site.value


def bijection_of(site: Message) -> Any:
    """``biject_to(site.fn.support)``, with an error that names the site when there is none."""
    from minippl.distributions.transforms import biject_to

    try:
        return biject_to(site.fn.support)
    except NotImplementedError as err:
        raise ValueError(
            f"site {site.name!r}: MCMC needs a bijection from unconstrained space to its "
            f"support {site.fn.support!r}, and none is registered ({err}). Continuous "
            "inference cannot handle discrete or manifold-valued latent sites directly."
        ) from None


def init_to_uniform(site: Message | None = None, radius: float = 2.0) -> Any:
    """A uniform draw in ``(-radius, radius)`` of each site's unconstrained space (default).

    Parameters
    ----------
    site : the site to initialise; ``None`` returns the strategy with ``radius`` bound.
    radius : half-width of the box in unconstrained space.
    """
    if site is None:
        return functools.partial(init_to_uniform, radius=radius)
    if not _is_latent(site):
        return None
    if site.value is not None:
        return _keep_existing(site, "init_to_uniform")
    backend = current()
    transform = bijection_of(site)
    shape = tuple(site.kwargs.get("sample_shape", ())) + tuple(
        transform.inverse_shape(site.fn.shape())
    )
    # The same draw as NumPyro's Uniform(-radius, radius), so the same key gives the same point.
    return transform(backend.uniform(site.kwargs["rng_key"], shape, minval=-radius, maxval=radius))


def init_to_feasible(site: Message | None = None) -> Any:
    """The point of each support that unconstrained zero maps to (``init_to_uniform(radius=0)``)."""
    if site is None:
        return init_to_feasible
    return init_to_uniform(site, radius=0.0)


def init_to_median(site: Message | None = None, num_samples: int = 15) -> Any:
    """The elementwise median of ``num_samples`` prior draws, taken in unconstrained space.

    Falls back to :func:`init_to_uniform` for a prior that cannot be sampled.
    """
    # A strategy opens with the same three steps as init_to_uniform (``duplicates`` pairs
    # them): bind its options, pass over non-latent sites, keep a value already given. They
    # stay written out so that each strategy reads alone, as NumPyro's do.
    if site is None:
        return functools.partial(init_to_median, num_samples=num_samples)
    if not _is_latent(site):
        return None
    if site.value is not None:
        return _keep_existing(site, "init_to_median")
    xp = current().xp
    sample_shape = (num_samples,) + tuple(site.kwargs.get("sample_shape", ()))
    try:
        draws = site.fn(rng_key=site.kwargs["rng_key"], sample_shape=sample_shape)
    except NotImplementedError:
        return init_to_uniform(site)
    transform = bijection_of(site)
    return transform(xp.median(transform.inv(draws), axis=0))


def init_to_sample(site: Message | None = None) -> Any:
    """One draw from the prior (``init_to_median`` of a single draw)."""
    if site is None:
        return init_to_sample
    return init_to_median(site, num_samples=1)


def init_to_value(site: Message | None = None, values: Mapping[str, Any] | None = None) -> Any:
    """The given constrained ``values`` by site name; :func:`init_to_uniform` for the others."""
    if site is None:
        return functools.partial(init_to_value, values={} if values is None else values)
    values = {} if values is None else values
    if site.type != "sample" or site.is_observed:
        return None
    if site.name is not None and site.name in values:
        return values[site.name]
    return init_to_uniform(site)


def strategy_parts(strategy: InitStrategy) -> tuple[Callable[..., Any], dict[str, Any]]:
    """The strategy's function and its bound options (``init_to_uniform`` -> radius 2)."""
    if isinstance(strategy, functools.partial):
        return strategy.func, dict(strategy.keywords)
    return strategy, {}


def bound_strategy(strategy: InitStrategy) -> InitStrategy:
    """The strategy with its options bound (``init_to_uniform`` -> ``init_to_uniform()``)."""
    return strategy if isinstance(strategy, functools.partial) else strategy()


def init_to_mean(site: Message | None = None) -> Any:
    """The prior mean of each site; the median of prior draws where the mean is not defined
    (or not finite, as for a Cauchy), as NumPyro does."""
    if site is None:
        return init_to_mean
    if not _is_latent(site):
        return None
    if site.value is not None:
        return _keep_existing(site, "init_to_mean")
    xp = current().xp
    try:
        mean = site.fn.mean
    except NotImplementedError:
        return init_to_median(site)
    if current().is_concrete(mean) and not bool(xp.all(xp.isfinite(mean))):
        return init_to_median(site)
    sample_shape = tuple(site.kwargs.get("sample_shape", ()))
    return xp.broadcast_to(mean, sample_shape + tuple(site.fn.shape()))


__all__ += ["init_to_mean"]
