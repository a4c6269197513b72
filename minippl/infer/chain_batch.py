"""A batch of chains given to a kernel at once: how many keys, one chain's part of it, and
the error of a chain that found no starting point.

Shared by the kernels' ``init`` (HMC, NUTS) and :class:`~minippl.infer.MCMC`, which both
start a stack of chains in one vectorized program.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from backends import Key
from minippl.backend import current

__all__ = ["chain_params", "key_batch_size", "rerun_failed_chains"]


def key_batch_size(key: Key) -> int | None:
    """The number of keys in a stack of keys, or ``None`` for one key: a typed key of shape
    ``()``, or a raw key (unsigned integers) of shape ``(2,)``."""
    xp = current().xp
    shape = tuple(getattr(key, "shape", ()))
    dtype = getattr(key, "dtype", None)
    raw = dtype is not None and xp.issubdtype(dtype, xp.unsignedinteger)
    return shape[0] if len(shape) > (1 if raw else 0) else None


def chain_params(init_params: Any, chain: int) -> Any:
    """Chain ``chain``'s starting values from a stack of them (``None`` stays ``None``)."""
    if init_params is None:
        return None
    return current().tree_map(lambda x: x[chain], init_params)


def rerun_failed_chains(is_valid: Any, init_one: Callable[[int], Any]) -> None:
    """``init_one(chain)`` for every chain whose search for a starting point failed: run
    alone and eagerly, it raises an error naming the sites at fault."""
    for chain in np.flatnonzero(~np.asarray(current().to_numpy(is_valid))):
        init_one(int(chain))
