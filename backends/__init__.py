"""Backends for minippl: a typed protocol and the implementations that satisfy it.

Backends are found through the ``minippl.backends`` entry-point group, so a third one
plugs in from its own package with no change here or in the core::

    [project.entry-points."minippl.backends"]
    mybackend = "mypackage.backend:MyBackend"
"""

from __future__ import annotations

from functools import cache
from importlib import import_module
from importlib.metadata import entry_points

from backends.protocol import Array, Backend, Key, PyTree, Shape
from backends.xla_cpu import apply_small_loop_flags

apply_small_loop_flags()  # before anything starts JAX: see backends/xla_cpu.py

__all__ = ["Array", "Backend", "Key", "PyTree", "Shape", "available", "load"]

# Used only when minippl is run from a source tree that was never installed, so that the
# two built-in backends are found even without package metadata.
_BUILTIN = {
    "jax": "backends.jax_backend:JaxBackend",
    "numpy": "backends.numpy_backend:NumpyBackend",
}


@cache
def _registered() -> tuple[tuple[str, str], ...]:
    """The entry points, read once per process (scanning them costs milliseconds)."""
    return tuple((ep.name, ep.value) for ep in entry_points(group="minippl.backends"))


def available() -> dict[str, str]:
    """Names of the installed backends, mapped to their ``module:Class`` targets."""
    found = dict(_BUILTIN)
    found.update(_registered())
    return found


@cache
def load(name: str) -> Backend:
    """The backend registered under ``name`` (one instance per process: backends are
    stateless)."""
    targets = available()
    if name not in targets:
        raise ValueError(
            f"unknown minippl backend {name!r}; installed backends: {sorted(targets)}. "
            "Register a new one under the 'minippl.backends' entry-point group."
        )
    module_name, _, attr = targets[name].partition(":")
    try:
        cls = getattr(import_module(module_name), attr)
    except ImportError as err:
        raise ImportError(
            f"minippl backend {name!r} is registered but cannot be imported ({err}); "
            f"install its dependencies or choose another of {sorted(targets)}"
        ) from err
    backend: Backend = cls()
    return backend
