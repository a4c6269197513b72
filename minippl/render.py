"""``render_model``: draw a model as a graph of its sites, plates and dependencies.

Tutorial: "Specifying the model" (``tutorial/s02_model.py``) and the collections email model
in "Causal inference: do" (``tutorial/s08_causal_do.py``).

The picture follows NumPyro's: one node per sample site (observed ones shaded), deterministic
sites dashed, params (with ``render_params=True``) as plain text, plates as boxes (graphviz
clusters) labelled with their name and size, and an arrow ``a -> b`` where site ``b``'s
distribution (or a deterministic ``b``'s value) is computed from ``a``'s value.

How the arrows are found: by perturbation, which works the same on every backend. NumPyro
instead tracks provenance through JAX's tracer, which needs JAX.

1. Run the model once under ``seed`` and ``trace``: the *base* values of all sites.
2. For each site ``s``, run it again with every site pinned to its base value except ``s``,
   which gets a different value: a fresh draw from its own distribution for a sample site
   (so it stays in the support), ``value + 0.01 * (1 + |value|)`` for a deterministic or
   param site (``+1`` for integers, ``not`` for booleans) and for a sample site whose every
   fresh draw equals its value (a point mass such as ``Delta``).
3. Site ``b`` depends directly on ``s`` when what reaches ``b`` changed: ``b``'s log density
   at its base value for a sample site, the value the model computed for a deterministic
   site. Pinning everything else cuts the indirect paths, so ``a -> b -> c`` gives no
   ``a -> c`` arrow.

Limits, by design: a dependence that the perturbation cannot move is missed (``x > 100``
where ``x`` stays below 100 either way); sites that exist only on some paths of the control
flow are drawn as they ran in the base run; a perturbed run that raises gives no arrows out
of that site (with a warning).

:func:`find_parents` is the method on its own, with a choice of which sites are pinned:
:mod:`minippl.infer.inspect` builds NumPyro's ``get_dependencies`` from it.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minippl.backend import current
from minippl.handlers import seed, trace
from minippl.messages import Message
from minippl.runtime import Messenger

__all__ = [
    "ModelRelations",
    "distribution_name",
    "find_parents",
    "get_model_relations",
    "render_model",
    "write_graph",
]

_TRIES = 8
"""Fresh draws tried for a sample site before its perturbation is given up."""


@dataclass
class SiteInfo:
    """What the graph needs to know about one site."""

    kind: str
    """``"sample"``, ``"deterministic"`` or ``"param"``."""
    distribution: str
    """The distribution's name, with wrappers (expand, to_event, mask) removed."""
    is_observed: bool
    plate: str | None
    """The innermost plate the site is in."""


@dataclass
class ModelRelations:
    """A model's sites, their plates and their direct dependencies."""

    sites: dict[str, SiteInfo] = field(default_factory=dict)
    parents: dict[str, list[str]] = field(default_factory=dict)
    """Site name to the sites its distribution (or value) is computed from, in model order."""
    plates: dict[str, tuple[int, str | None]] = field(default_factory=dict)
    """Plate name to its size and the plate it sits in (``None`` at the top level)."""


def get_model_relations(
    model: Callable[..., Any],
    model_args: tuple[Any, ...] = (),
    model_kwargs: Mapping[str, Any] | None = None,
    rng_seed: int = 0,
) -> ModelRelations:
    """Trace ``model`` and find its sites, plates and dependencies (see the module notes)."""
    kwargs = dict(model_kwargs or {})
    base = trace(seed(model, rng_seed=rng_seed)).get_trace(*model_args, **kwargs)
    relations = ModelRelations()
    for name, site in base.items():
        if site.type == "plate":
            relations.plates[name] = (int(site.args[0]), _innermost(site, relations.plates))
    for name, site in base.items():
        if site.type in ("sample", "deterministic", "param"):
            relations.sites[name] = SiteInfo(
                kind=site.type,
                distribution=distribution_name(site),
                is_observed=site.type == "sample" and site.is_observed,
                plate=_innermost(site, relations.plates),
            )
            relations.parents[name] = []
    relations.parents.update(
        find_parents(model, model_args, kwargs, base, list(relations.sites), rng_seed=rng_seed)
    )
    return relations


def find_parents(
    model: Callable[..., Any],
    model_args: tuple[Any, ...],
    model_kwargs: Mapping[str, Any],
    base: Mapping[str, Message],
    pinned: Sequence[str],
    *,
    perturbed: Sequence[str] | None = None,
    watched: Sequence[str] | None = None,
    rng_seed: int = 0,
    caller: str = "render_model",
) -> dict[str, list[str]]:
    """The direct dependencies among a model's sites, by perturbation (see the module notes).

    ``base`` is the model's trace under ``seed(rng_seed)``. Each of the ``perturbed`` sites
    (all ``pinned`` ones unless given) is moved in turn while the ``pinned`` sites keep their
    base values; a ``watched`` site (the ``pinned`` ones unless given) depends on it when what
    reaches the watched site changes. A site left unpinned passes dependencies through it, as
    a value computed afresh in every run. Returns, for each watched site, the sites it
    depends on, in model order.
    """
    perturbed = list(pinned if perturbed is None else perturbed)
    watched = list(pinned if watched is None else watched)
    parents: dict[str, list[str]] = {name: [] for name in watched}
    base_values = {name: base[name].value for name in pinned}
    reference = _fingerprints(model, model_args, model_kwargs, rng_seed, base_values, watched)
    for index, name in enumerate(perturbed):
        moved = _perturb(base[name], rng_seed + 1 + index)
        if moved is None:
            continue
        try:
            seen = _fingerprints(
                model, model_args, model_kwargs, rng_seed, {**base_values, name: moved}, watched
            )
        except Exception as error:  # a perturbed value the model cannot run with
            warnings.warn(
                f"{caller}: the model failed when site {name!r} was perturbed ({error}); "
                "no dependencies on it are found",
                RuntimeWarning,
                stacklevel=3,
            )
            continue
        for other, fingerprint in seen.items():
            if other != name and other in reference and not _equal(fingerprint, reference[other]):
                parents[other].append(name)
    order = list(base)
    for found in parents.values():
        found.sort(key=order.index)
    return parents


def render_model(
    model: Callable[..., Any],
    model_args: tuple[Any, ...] = (),
    model_kwargs: Mapping[str, Any] | None = None,
    filename: str | Path | None = None,
    render_distributions: bool = False,
    render_params: bool = False,
) -> Any:
    """A ``graphviz.Digraph`` of ``model`` run on ``model_args`` (NumPyro's signature).

    ``render_distributions`` adds a legend ``site ~ Distribution``; ``render_params`` draws
    param sites. With ``filename``, the graph is also written there (see :func:`write_graph`).
    The graph's DOT text is ``graph.source``; it needs the ``graphviz`` Python package but
    not the ``dot`` program, which only rendering to SVG or PNG does.
    """
    relations = get_model_relations(model, model_args, model_kwargs)
    graph = render_graph(relations, render_distributions, render_params)
    if filename is not None:
        write_graph(graph, filename)
    return graph


def render_graph(
    relations: ModelRelations, render_distributions: bool = False, render_params: bool = False
) -> Any:
    """Build the ``graphviz.Digraph`` for ``relations``."""
    graphviz = _import_graphviz()
    shown = {
        name: info
        for name, info in relations.sites.items()
        if info.kind != "param" or render_params
    }
    graph = graphviz.Digraph()
    clusters = {
        plate: graphviz.Digraph(name=f"cluster_{plate}")
        for plate in relations.plates
        if any(info.plate == plate for info in shown.values()) or _has_child(plate, relations)
    }
    for plate, cluster in clusters.items():
        size = relations.plates[plate][0]
        cluster.attr(label=f"{plate} ({size})", labeljust="r", labelloc="b")
    for name, info in shown.items():
        target = clusters.get(info.plate, graph) if info.plate is not None else graph
        if info.kind == "param":
            target.node(name, label=name, shape="plain")
        else:
            style = "filled,dashed" if info.kind == "deterministic" else "filled"
            fill = "grey" if info.is_observed else "white"
            target.node(name, label=name, shape="ellipse", style=style, fillcolor=fill)
    # Nest the clusters, innermost first, so each is complete when added to its parent.
    for plate in sorted(clusters, key=lambda p: -_depth(p, relations)):
        parent = relations.plates[plate][1]
        holder = clusters[parent] if parent in clusters else graph
        holder.subgraph(clusters[plate])
    for name in shown:
        for parent in relations.parents[name]:
            if parent in shown:
                graph.edge(parent, name)
    if render_distributions:
        legend = "".join(
            rf"{name} ~ {info.distribution}\l" for name, info in shown.items() if info.distribution
        )
        graph.node("distribution_description_node", label=legend, shape="plaintext")
    return graph


def write_graph(graph: Any, filename: str | Path) -> Path:
    """Write ``graph`` to ``filename`` and return the path written.

    A ``.svg``, ``.png`` or ``.pdf`` name is rendered with graphviz's ``dot`` program. Without
    ``dot`` on the PATH, or with any other suffix, the DOT source is written instead, to the
    same name with the suffix ``.gv`` (readable by any graphviz viewer).
    """
    path = Path(filename)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lstrip(".").lower()
    if suffix in ("svg", "png", "pdf") and shutil.which("dot") is not None:
        path.write_bytes(graph.pipe(format=suffix))
        return path
    if suffix in ("svg", "png", "pdf"):
        warnings.warn(
            f"render_model: graphviz's dot program is not installed, so {path.name} cannot be "
            f"drawn; writing the DOT source to {path.with_suffix('.gv').name} instead "
            "(install graphviz, e.g. apt-get install graphviz, to get pictures)",
            RuntimeWarning,
            stacklevel=2,
        )
    gv = path.with_suffix(".gv")
    gv.write_text(graph.source)
    return gv


# -- provenance by perturbation ------------------------------------------------------------


class _pin(Messenger):
    """Pin sample, deterministic and param sites to given values, and note what reached
    each watched one before it was pinned (its fingerprint): a sample site's log density at
    its pinned value (or its data, unpinned), a deterministic site's computed value."""

    def __init__(self, values: Mapping[str, Any], watched: Collection[str]) -> None:
        self.values = values
        self.watched = watched
        self.fingerprints: dict[str, Any] = {}
        super().__init__()

    def process_message(self, msg: Message) -> None:
        if msg.name is None or msg.type not in ("sample", "deterministic", "param"):
            return
        if msg.name in self.watched and msg.type == "sample":
            base = self.values.get(msg.name, msg.value)
            self.fingerprints[msg.name] = msg.fn.log_prob(base) if base is not None else None
        elif msg.name in self.watched and msg.type == "deterministic":
            self.fingerprints[msg.name] = msg.value
        if msg.name in self.values:
            msg.value = self.values[msg.name]


def _fingerprints(
    model: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    rng_seed: int,
    values: Mapping[str, Any],
    watched: Collection[str],
) -> dict[str, Any]:
    pin = _pin(values, set(watched))
    with pin:
        seed(model, rng_seed=rng_seed)(*args, **kwargs)
    return pin.fingerprints


def _perturb(site: Message, key_seed: int) -> Any:
    """A value for ``site`` different from its base value, or ``None`` if none was found."""
    backend = current()
    xp = backend.xp
    value = site.value
    if value is None:
        return None
    if site.type == "sample":
        for attempt in range(_TRIES):
            key = backend.key(key_seed * _TRIES + attempt)
            drawn = site.fn.sample(key)
            if not _equal(drawn, value):
                return drawn
        # Every draw was the same (a point mass): nudge the value instead, as below.
    array = xp.asarray(value)
    # By dtype kind: the NumPy backend's ``xp.integer`` is autograd's wrapper, not NumPy's.
    if array.dtype.kind == "b":
        return xp.logical_not(array)
    if array.dtype.kind in "iu":
        return array + 1
    return array + 0.01 * (1 + xp.abs(array))


def _equal(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    xp = current().xp
    a, b = xp.asarray(a), xp.asarray(b)
    return a.shape == b.shape and bool(xp.array_equal(a, b, equal_nan=True))


# -- plates and names ------------------------------------------------------------------------


def _innermost(site: Message, plates: Mapping[str, tuple[int, str | None]]) -> str | None:
    """The deepest of the known plates among the site's enclosing frames."""
    names = [frame.name for frame in site.cond_indep_stack if frame.name in plates]
    if not names:
        return None
    depth = {name: _chain_length(name, plates) for name in names}
    return max(names, key=lambda name: depth[name])


def _chain_length(plate: str, plates: Mapping[str, tuple[int, str | None]]) -> int:
    length, parent = 0, plates[plate][1]
    while parent is not None:
        length, parent = length + 1, plates[parent][1]
    return length


def _depth(plate: str, relations: ModelRelations) -> int:
    return _chain_length(plate, relations.plates)


def _has_child(plate: str, relations: ModelRelations) -> bool:
    return any(parent == plate for _, parent in relations.plates.values())


def distribution_name(site: Message) -> str:
    """The name of a site's distribution as the graph shows it (``"Deterministic"`` for a
    deterministic site, ``""`` for a param)."""
    if site.type == "deterministic":
        return "Deterministic"
    if site.type != "sample":
        return ""
    fn = site.fn
    while getattr(fn, "base_dist", None) is not None and type(fn).__name__ in (
        "ExpandedDistribution",
        "Independent",
        "MaskedDistribution",
    ):
        fn = fn.base_dist
    return type(fn).__name__


def _import_graphviz() -> Any:
    try:
        import graphviz
    except ImportError as error:
        raise ImportError(
            "render_model draws with the graphviz Python package: pip install graphviz "
            "(or pip install minippl[plots]). The graphviz program (dot) is optional: "
            "without it you still get the DOT source."
        ) from error
    return graphviz
