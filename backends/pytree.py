"""A minimal pytree library for backends without one (NumPy).

Containers are dicts (keys sorted, as in JAX), lists, tuples and NamedTuples, and the
classes given to :func:`register_class` (the core's distributions); ``None`` is an empty
subtree; everything else is a leaf. This is all the core and the samplers build their
states from.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Flatten = Callable[[Any], tuple[Sequence[Any], Any]]
Unflatten = Callable[[Any, Sequence[Any]], Any]

_CLASSES: dict[type, tuple[Flatten, Unflatten]] = {}

_LEAF_TYPES = frozenset({np.ndarray, np.float64, np.int64, np.int32, np.bool_, float, int, bool})
"""Types that are always leaves, and the most common ones."""


def register_class(cls: type, flatten: Flatten, unflatten: Unflatten) -> None:
    """Make instances of ``cls`` nodes: ``flatten(obj) -> (children, aux)``,
    ``unflatten(aux, children) -> obj`` (the contract of JAX's ``register_pytree_node``)."""
    _CLASSES[cls] = (flatten, unflatten)


@dataclass(frozen=True)
class TreeDef:
    """The shape of a pytree: a container kind, its keys and its children's shapes."""

    kind: str  # "leaf", "none", "dict", "list", "tuple", "namedtuple" or "class"
    keys: tuple[Any, ...] = ()
    children: tuple[TreeDef, ...] = ()
    cls: Any = None

    @property
    def num_leaves(self) -> int:
        if self.kind == "leaf":
            return 1
        return sum(child.num_leaves for child in self.children)


_LEAF = TreeDef("leaf")
_NONE = TreeDef("none")
"""The two childless shapes, made once: a frozen dataclass costs a call per field to build,
and flattening a sampler's state meets dozens of leaves."""


def _is_namedtuple(x: object) -> bool:
    return isinstance(x, tuple) and hasattr(x, "_fields")


def tree_flatten(tree: Any) -> tuple[list[Any], TreeDef]:
    """Leaves in a fixed order, and the structure needed to rebuild the tree."""
    leaves: list[Any] = []

    def walk(node: Any) -> TreeDef:
        if type(node) in _LEAF_TYPES:
            leaves.append(node)
            return _LEAF
        if node is None:
            return _NONE
        if isinstance(node, dict):
            keys = tuple(sorted(node))
            return TreeDef("dict", keys, tuple(walk(node[k]) for k in keys), type(node))
        if _is_namedtuple(node):
            return TreeDef("namedtuple", (), tuple(walk(c) for c in node), type(node))
        if isinstance(node, (list, tuple)):
            kind = "list" if isinstance(node, list) else "tuple"
            return TreeDef(kind, (), tuple(walk(c) for c in node))
        if type(node) in _CLASSES:
            children, aux = _CLASSES[type(node)][0](node)
            return TreeDef("class", (aux,), tuple(walk(c) for c in children), type(node))
        leaves.append(node)
        return _LEAF

    treedef = walk(tree)
    return leaves, treedef


def tree_unflatten(treedef: TreeDef, leaves: Sequence[Any]) -> Any:
    """Inverse of :func:`tree_flatten`."""
    it = iter(leaves)

    def build(td: TreeDef) -> Any:
        if td.kind == "leaf":
            return next(it)
        if td.kind == "none":
            return None
        children = [build(c) for c in td.children]
        if td.kind == "dict":
            return td.cls(zip(td.keys, children, strict=True))
        if td.kind == "namedtuple":
            return td.cls(*children)
        if td.kind == "class":
            return _CLASSES[td.cls][1](td.keys[0], children)
        return children if td.kind == "list" else tuple(children)

    return build(treedef)


def tree_map(fn: Callable[..., Any], tree: Any, *rest: Any) -> Any:
    """Apply ``fn`` leaf-wise over trees of the same structure (leaves in the order of
    :func:`tree_flatten`).

    It walks the trees directly instead of flattening and rebuilding them: the samplers map
    over their states several times per leapfrog step, and on NumPy building the
    :class:`TreeDef` records cost as much as the arithmetic on the leaves. For the same
    reason the usual leaves (arrays and numbers) are recognised by their exact type first,
    before the containers are tried.
    """

    def walk(node: Any, *others: Any) -> Any:
        if type(node) in _LEAF_TYPES:
            return fn(node, *others)
        if node is None:
            return None
        if isinstance(node, dict):
            keys = sorted(node)
            if not others:
                mapped = {k: walk(node[k]) for k in keys}
                return mapped if type(node) is dict else type(node)(mapped)
            if any(len(o) != len(keys) for o in others):
                raise ValueError("tree_map: dicts with different keys")
            return type(node)((k, walk(node[k], *(o[k] for o in others))) for k in keys)
        if isinstance(node, (list, tuple)):
            if others:
                children = [walk(*items) for items in zip(node, *others, strict=True)]
            else:
                children = [walk(child) for child in node]
            if _is_namedtuple(node):
                return type(node)(*children)
            return children if isinstance(node, list) else tuple(children)
        if type(node) in _CLASSES:
            flatten, unflatten = _CLASSES[type(node)]
            parts, aux = flatten(node)
            rest = [flatten(o)[0] for o in others]
            return unflatten(aux, [walk(*items) for items in zip(parts, *rest, strict=True)])
        return fn(node, *others)

    return walk(tree, *rest)
