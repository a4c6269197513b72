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

from backends.protocol import Array, Backend, Compiler, Computed, Key, PyTree, Shape

__all__ = [
    "Array",
    "Backend",
    "Compiler",
    "Computed",
    "Key",
    "PyTree",
    "Shape",
    "available",
    "load",
    "prepare",
]

# The two backends that ship with minippl, found here without reading package metadata
# (which costs milliseconds, and which an editable install keeps as it was when installed).
_BUILTIN = {
    "jax": "backends.jax.backend:JaxBackend",
    "numpy": "backends.numpy_backend:NumpyBackend",
}


@cache
def _registered() -> tuple[tuple[str, str], ...]:
    """The entry points, read once per process."""
    return tuple((ep.name, ep.value) for ep in entry_points(group="minippl.backends"))


def available() -> dict[str, str]:
    """Names of the installed backends, mapped to their ``module:Class`` targets."""
    found = dict(_registered())
    found.update(_BUILTIN)
    return found


def _target(name: str) -> str:
    target = _BUILTIN.get(name) or available().get(name)
    if target is None:
        raise ValueError(
            f"unknown minippl backend {name!r}; installed backends: {sorted(available())}. "
            "Register a new one under the 'minippl.backends' entry-point group."
        )
    return target


def prepare(name: str) -> None:
    """Import the package that holds backend ``name``, without creating the backend or
    starting its library: a backend may set up the process there, where it must come
    first (the JAX backend adds an XLA flag, read once when JAX starts; see
    ``backends/jax/__init__.py``). An unknown or broken backend is left for :func:`load`
    to report."""
    try:
        package = _target(name).partition(":")[0].rpartition(".")[0]
        if package:
            import_module(package)
    except (ValueError, ImportError):
        return


@cache
def load(name: str) -> Backend:
    """The backend registered under ``name`` (one instance per process)."""
    module_name, _, attr = _target(name).partition(":")
    try:
        cls = getattr(import_module(module_name), attr)
    except ImportError as err:
        raise ImportError(
            f"minippl backend {name!r} is registered but cannot be imported ({err}); "
            f"install its dependencies or choose another of {sorted(available())}"
        ) from err
    backend: Backend = cls()
    return backend
