"""Which backend the core computes with, and the switches NumPyro users expect.

The choice is process-wide: ``minippl.set_backend("numpy")``, or the ``MINIPPL_BACKEND``
environment variable read on first use; JAX is the default.
"""

from __future__ import annotations

import os

import backends
from backends import Backend

_current: Backend | None = None


def _default_name() -> str:
    return os.environ.get("MINIPPL_BACKEND", "jax")


# The default backend's package may have to set up the process before its library starts
# (the JAX backend's XLA flag, see backends/jax/__init__.py); the backend itself, and JAX,
# load on first use.
backends.prepare(_default_name())


def current() -> Backend:
    """The active backend, loading the default one on first use."""
    global _current
    if _current is None:
        _current = backends.load(_default_name())
    return _current


def set_backend(name: str) -> Backend:
    """Switch every later computation to the backend registered as ``name``.

    Raises ``ValueError`` naming the installed backends if ``name`` is not one of them.
    """
    global _current
    if _current is None or _current.name != name:
        _current = backends.load(name)
    return _current


def enable_x64(use_x64: bool = True) -> None:
    """Compute in 64-bit floats by default (JAX starts in 32-bit; NumPy is always 64-bit)."""
    current().enable_x64(use_x64)


def set_host_device_count(n: int) -> None:
    """Expose ``n`` CPU devices, so chains can run in parallel one per device; call it
    before any JAX work. Without it, minippl's ``"parallel"`` chains run on a CPU's cores
    on threads (NumPyro's run one after another); the NumPy backend runs them in processes."""
    current().set_host_device_count(n)
