"""A recorded site taken apart into arrays and structure, and put back together.

Tutorial: "Effect handlers meet compiled control flow" (``tutorial/s13_control_flow.py``).

A compiled loop or conditional (``lax.scan``, ``lax.cond``) can only hand arrays out of its
body. A trace holds more than arrays: names, distributions, constraints, flags. So a
step's trace leaves the body as two parts: a *skeleton* (everything that is not an array,
the same at every step) kept on the Python side, and the list of its array *leaves*, which
the loop stacks along a new leading axis. Outside, the skeleton is filled with the stacked
leaves (or, for ``cond``, with the leaves of the branch taken).

Distributions, constraints and transforms are taken apart through their attributes, so any
of them works without declaring its parameters; an object holding no array is kept whole,
which keeps singletons such as ``constraints.real`` the very same object.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from minippl.distributions.constraints import Constraint
from minippl.distributions.distribution import Distribution
from minippl.distributions.transforms import Transform
from minippl.messages import Message

_OPENED = (Distribution, Constraint, Transform)
"""The objects whose attributes are searched for arrays."""


class _Leaf:
    """Marks where an array sat in a skeleton."""

    def __repr__(self) -> str:
        return "<leaf>"


LEAF = _Leaf()


@dataclass(frozen=True)
class _Opened:
    """An object of one of the ``_OPENED`` kinds with arrays among its attributes."""

    cls: type
    attributes: dict[str, Any]


def is_array(x: object) -> bool:
    """An array of either backend (or a tracer, or an autograd box), or a float.

    Floats count as arrays: a parameter written ``Normal(0.0, 1.0)`` at the first step and
    ``Normal(level, 1.0)`` later must take the same place in the structure. Integers and
    booleans stay structure (counts, flags, dims).
    """
    kind = type(x)
    answer = _ARRAY_KINDS.get(kind)
    if answer is None:
        answer = _ARRAY_KINDS[kind] = _is_array_kind(x)
    return answer


def _is_array_kind(x: object) -> bool:
    """:func:`is_array`'s rule, asked once per type (a scan flattens every site at every step)."""
    if isinstance(x, bool | int):
        return False
    if isinstance(x, float):
        return True
    return hasattr(x, "shape") and hasattr(x, "dtype") and not isinstance(x, type)


_ARRAY_KINDS: dict[type, bool] = {}
""":func:`is_array`'s answer for each type met so far."""


def flatten(obj: Any) -> tuple[Any, list[Any]]:
    """``(skeleton, leaves)``: ``obj`` with every array replaced by :data:`LEAF`."""
    leaves: list[Any] = []
    skeleton = _strip(obj, leaves)
    return skeleton, leaves


def _strip(obj: Any, leaves: list[Any]) -> Any:
    kind = type(obj)
    # Plain dicts, lists and tuples by their type first: a scan takes every site of every
    # step apart, and they are most of what it meets.
    if kind is dict:
        return {k: _strip(v, leaves) for k, v in obj.items()}
    if kind is tuple or kind is list:
        parts = [_strip(v, leaves) for v in obj]
        return parts if kind is list else tuple(parts)
    if is_array(obj):
        leaves.append(obj)
        return LEAF
    if isinstance(obj, dict):
        return {k: _strip(v, leaves) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_strip(v, leaves) for v in obj]
    if isinstance(obj, tuple) and not hasattr(obj, "_fields"):
        return tuple(_strip(v, leaves) for v in obj)
    if isinstance(obj, _OPENED):
        found: list[Any] = []
        attributes = {k: _strip(v, found) for k, v in vars(obj).items()}
        if not found:
            return obj  # nothing to stack: keep the object itself
        leaves.extend(found)
        return _Opened(type(obj), attributes)
    return obj


def unflatten(skeleton: Any, leaves: list[Any]) -> Any:
    """The inverse of :func:`flatten`, with ``leaves`` (possibly stacked) put back."""
    it = iter(leaves)
    out = _fill(skeleton, it)
    if next(it, None) is not None:
        raise ValueError("unflatten: more leaves than the skeleton has places for")
    return out


# The inverse walk mirrors ``_strip`` case by case (``duplicates`` pairs them by shape): each
# case undoes the one above it.
def _fill(skeleton: Any, leaves: Iterator[Any]) -> Any:
    if skeleton is LEAF:
        return next(leaves)
    if isinstance(skeleton, dict):
        return {k: _fill(v, leaves) for k, v in skeleton.items()}
    if isinstance(skeleton, list):
        return [_fill(v, leaves) for v in skeleton]
    if isinstance(skeleton, tuple) and not hasattr(skeleton, "_fields"):
        return tuple(_fill(v, leaves) for v in skeleton)
    if isinstance(skeleton, _Opened):
        # Rebuilt without ``__init__``: the constructor may check or reshape parameters,
        # and the attributes it produced are exactly what was taken apart.
        obj: Any = object.__new__(skeleton.cls)
        vars(obj).update({k: _fill(v, leaves) for k, v in skeleton.attributes.items()})
        return obj
    return skeleton


# -- a whole trace ------------------------------------------------------------------------------

_RECORDED = ("sample", "deterministic")
"""What a control-flow body may contain and hand out (NumPyro's scan and cond: the same)."""

_STEP_ONLY = ("_scan_current_index",)
"""``infer`` entries that mean something inside one step only."""


def split_trace(trace: dict[str, Message]) -> tuple[list[Any], list[Any]]:
    """The sample and deterministic sites of a step's trace as ``(skeletons, leaves)``.

    A site's skeleton holds its name, type, flags, plates and the structure of its
    distribution; the leaves are its value, the distribution's arrays and any array in
    ``scale`` or ``infer``. The key is dropped: it has served its step.
    """
    skeletons: list[Any] = []
    leaves: list[Any] = []
    for site in trace.values():
        if site.type not in _RECORDED:
            continue
        infer = {k: v for k, v in site.infer.items() if k not in _STEP_ONLY}
        kwargs = {k: v for k, v in site.kwargs.items() if k != "rng_key"}
        fn_skeleton, fn_leaves = flatten(site.fn)
        parts = (site.value, site.scale, infer, kwargs, list(site.intermediates))
        skeleton, found = flatten(parts)
        meta = (site.type, site.name, site.is_observed, tuple(site.cond_indep_stack))
        skeletons.append((meta, fn_skeleton, len(fn_leaves), skeleton, len(found)))
        leaves.extend(fn_leaves)
        leaves.extend(found)
    return skeletons, leaves


FnMaker = Callable[[Any, list[Any]], Any]
"""Builds a site's distribution from its skeleton and its (possibly stacked) leaves."""


def join_trace(
    skeletons: list[Any], leaves: list[Any], make_fn: FnMaker = unflatten
) -> list[Message]:
    """The messages :func:`split_trace` took apart, with ``leaves`` put back in order."""
    messages: list[Message] = []
    start = 0
    for meta, fn_skeleton, fn_count, skeleton, count in skeletons:
        site_type, name, is_observed, frames = meta
        fn = make_fn(fn_skeleton, leaves[start : start + fn_count])
        start += fn_count
        value, scale, infer, kwargs, intermediates = unflatten(
            skeleton, leaves[start : start + count]
        )
        start += count
        kwargs["rng_key"] = None
        messages.append(
            Message(
                type=site_type,
                name=name,
                fn=fn,
                kwargs=kwargs,
                value=value,
                scale=scale,
                is_observed=is_observed,
                intermediates=intermediates,
                cond_indep_stack=list(frames),
                infer=infer,
            )
        )
    return messages


def describe(skeletons: list[Any]) -> list[tuple[Any, ...]]:
    """What must agree between two runs of a body: each site's type, name and leaf count."""
    return [(meta[0], meta[1], n_fn + n) for meta, _, n_fn, _, n in skeletons]
