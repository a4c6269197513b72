"""NumPyro's ``numpyro.infer.inspect``: which of a model's sites depend on which.

:func:`get_dependencies` says, for inference, which latent sites each site's distribution
is computed from (the prior graph) and which sites each latent one is tied to once the data
are given (the posterior graph); :func:`get_model_relations` is NumPyro's summary of the
model's graph, and :func:`render_model` draws it. All three find the dependencies by
perturbing one site at a time with the others pinned (``minippl/render.py`` explains the
method), so they work the same on every backend; NumPyro tracks provenance through JAX's
tracer instead.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

from minippl.handlers import seed, trace
from minippl.messages import Message
from minippl.render import distribution_name, find_parents, render_model

__all__ = ["get_dependencies", "get_model_relations", "render_model"]

Dependencies = dict[str, dict[str, set[str]]]
"""Site name to the sites it depends on, each with the plates across which it depends on
every element (an empty set: element by element, or no plate at all)."""


def get_dependencies(
    model: Callable[..., Any],
    model_args: tuple[Any, ...] | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
) -> dict[str, Dependencies]:
    """The prior and posterior dependencies among the sample sites of ``model``.

    ``"prior_dependencies"`` maps every sample site (latent or observed) to itself and the
    latent sites its distribution is computed from, in model order. ``"posterior_dependencies"``
    maps every latent site to itself and the sites it is tied to given the data: the sites
    computed from it, and the other parents of those sites (two causes of one observed
    effect are dependent once the effect is known: "moralization"). A plate in a set means
    the dependence runs across the plate's elements, as when a sum over a plate feeds a site
    outside it: then ``z[0]`` and ``z[1]`` are tied in the posterior.

    Deterministic sites are seen through (a site computed from ``deterministic("d", f(a))``
    depends on ``a``). ``Delta`` sites are left out, and, as in NumPyro, so is what flows
    through a latent one: a site computed from ``x ~ Delta(f(a))`` depends on neither.

    >>> def model():
    ...     a = minippl.sample("a", dist.Normal(0.0, 1.0))
    ...     with minippl.plate("p", 3):
    ...         z = minippl.sample("z", dist.Normal(a, 1.0))
    ...     minippl.sample("y", dist.Normal(z.sum(), 1.0), obs=0.0)
    >>> deps = get_dependencies(model)
    >>> deps["prior_dependencies"]["y"]
    {'y': set(), 'z': set()}
    >>> deps["posterior_dependencies"]["z"]
    {'z': {'p'}, 'y': set()}
    """
    args, kwargs = tuple(model_args or ()), dict(model_kwargs or {})
    base = trace(seed(model, rng_seed=0)).get_trace(*args, **kwargs)
    sites = [name for name, site in base.items() if _is_random(site)]
    observed = {name for name in sites if base[name].is_observed}
    latent = [name for name in sites if name not in observed]
    # Every latent sample site is pinned, point masses included (NumPyro substitutes them
    # too), so a dependence reaches a site only through deterministic computation.
    pinned = [name for name, site in base.items() if site.type == "sample" and not site.is_observed]
    parents = find_parents(
        model,
        args,
        kwargs,
        base,
        pinned,
        perturbed=latent,
        watched=sites,
        caller="get_dependencies",
    )
    prior: Dependencies = {
        name: {name: set(), **{parent: set() for parent in parents[name]}} for name in sites
    }
    posterior: Dependencies = {name: {} for name in latent}
    for child, upstream in prior.items():
        for parent in upstream:
            if parent not in observed:
                posterior[parent][child] = set()
    plates = {name: _plate_names(base[name]) for name in sites}
    _moralize(prior, posterior, observed, plates, sites)
    return {"prior_dependencies": prior, "posterior_dependencies": posterior}


def _moralize(
    prior: Dependencies,
    posterior: Dependencies,
    observed: set[str],
    plates: Mapping[str, set[str]],
    order: list[str],
) -> None:
    """Tie every two latent parents of one site (the site itself among them when latent),
    the later one under the earlier. They are tied across the plates both sit in and the
    child does not: the child then reads all of their elements together."""
    rank = {name: index for index, name in enumerate(order)}
    for child, upstream in prior.items():
        causes = [name for name in upstream if name not in observed]
        for later, earlier in itertools.product(causes, causes):
            if rank[later] >= rank[earlier]:
                across = posterior[earlier].setdefault(later, set())
                across |= (plates[later] & plates[earlier]) - plates[child]


def get_model_relations(
    model: Callable[..., Any],
    model_args: tuple[Any, ...] | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """NumPyro's summary of a model's graph, as a dict with the keys

    - ``"sample_sample"``: each sample or deterministic site to the sample and
      deterministic sites it is computed from directly;
    - ``"sample_param"``: each such site to the param sites it is computed from;
    - ``"sample_dist"``: each such site to its distribution's name (``"Deterministic"``);
    - ``"param_constraint"``: each param site to its constraint as text (``""`` if none);
    - ``"plate_sample"``: each plate to the sites in it, a plate whose sites cross another
      plate's without nesting split in two, the second named ``plate + "__CLONE"``;
    - ``"observed"``: the observed sample sites.

    :func:`minippl.render.get_model_relations` gives the same graph as the dataclass that
    :func:`render_model` draws from.

    >>> def model():
    ...     m = minippl.sample("m", dist.Normal(0.0, 1.0))
    ...     with minippl.plate("N", 3):
    ...         minippl.sample("y", dist.Normal(m, 1.0), obs=0.0)
    >>> relations = get_model_relations(model)
    >>> relations["sample_sample"], relations["plate_sample"], relations["observed"]
    ({'m': [], 'y': ['m']}, {'N': ['y']}, ['y'])
    """
    args, kwargs = tuple(model_args or ()), dict(model_kwargs or {})
    base = trace(seed(model, rng_seed=0)).get_trace(*args, **kwargs)
    sites = [name for name, site in base.items() if site.type in ("sample", "deterministic")]
    params = [name for name, site in base.items() if site.type == "param"]
    pinned = [name for name in base if name in sites or name in params]
    parents = find_parents(model, args, kwargs, base, pinned, caller="get_model_relations")
    return {
        "sample_sample": {name: [p for p in parents[name] if p in sites] for name in sites},
        "sample_param": {name: [p for p in parents[name] if p in params] for name in sites},
        "sample_dist": {name: distribution_name(base[name]) for name in sites},
        "param_constraint": {name: str(base[name].kwargs.get("constraint", "")) for name in params},
        "plate_sample": _plate_sites(base, sites),
        "observed": [name for name in sites if base[name].is_observed],
    }


def _plate_sites(base: Mapping[str, Message], sites: list[str]) -> dict[str, list[str]]:
    """Each plate's sites, in model order, with crossing plates split (see above)."""
    groups = {
        plate: {name for name in sites if plate in _plate_names(base[name])}
        for plate, site in base.items()
        if site.type == "plate"
    }
    while True:
        crossing = next(
            ((p, q) for p, q in itertools.combinations(groups, 2) if _cross(groups[p], groups[q])),
            None,
        )
        if crossing is None:
            break
        p, q = crossing
        groups[q], groups[q + "__CLONE"] = groups[q] & groups[p], groups[q] - groups[p]
    return {plate: [name for name in sites if name in group] for plate, group in groups.items()}


def _cross(a: set[str], b: set[str]) -> bool:
    """Two groups that share sites without one containing the other."""
    return bool(a & b) and bool(a - b) and bool(b - a)


def _plate_names(site: Message) -> set[str]:
    return {frame.name for frame in site.cond_indep_stack}


def _is_random(site: Message) -> bool:
    """A sample site that is not a point mass (NumPyro's sample sites for dependencies)."""
    return site.type == "sample" and distribution_name(site) != "Delta"
