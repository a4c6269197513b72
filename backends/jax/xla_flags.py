"""One XLA setting for the CPU: compile small loops as one function.

XLA's CPU runtime runs a compiled program as a list of *thunks*, one per fused kernel,
and pays a dispatch cost for each (a fraction of a microsecond). Inside a NUTS trajectory
on a small model a leaf is a few dozen tiny kernels, so the dispatches, not the
arithmetic, are most of the time. XLA can instead compile a whole ``while`` loop into one
function with no per-kernel dispatch (its "small while loop hoisting"), but only for loops
that touch under ``xla_cpu_small_while_loop_byte_threshold`` bytes, 1 KiB by default: the
NUTS loops of eight schools or the linear regression are larger than that; raised to
:data:`SMALL_LOOP_BYTES`, they are compiled whole (the speed it buys: ``__init__.py``).

Loops over larger data keep the thunk runtime, whose matrix kernels use every core. Loops
that contain a scatter, sort or custom call are never compiled this way (XLA's rule), which
is why the trajectory code writes its checkpoints with a select.

The setting is process-wide and read when JAX starts its CPU client, so it is added to
``XLA_FLAGS`` when the package ``backends.jax`` is imported (``import minippl`` does),
before any computation; a user who has already started JAX, or set the option themselves,
keeps what they have.
``MINIPPL_XLA_FLAGS=0`` turns it off. It also applies to any other JAX library in the
process. Nothing here imports JAX.
"""

from __future__ import annotations

import os
import sys

__all__ = ["SMALL_LOOP_BYTES", "apply_small_loop_flags", "flags_before", "small_loop_flags"]

SMALL_LOOP_BYTES = 1 << 20
"""Loops touching up to 1 MiB are compiled whole: data that fits in a core's cache, where
dispatch dominates; above it the arithmetic does, and multithreaded kernels serve better."""

_OPTION = "xla_cpu_small_while_loop_byte_threshold"
_EXTRA = "--xla_backend_extra_options="
_UNTOUCHED = object()
_before: object = _UNTOUCHED  # XLA_FLAGS as it was before we changed it (None: unset)


def small_loop_flags(flags: str) -> str:
    """``flags`` (an ``XLA_FLAGS`` value) with the small-loop threshold added, unless set."""
    if _OPTION in flags:
        return flags
    setting = f"{_OPTION}={SMALL_LOOP_BYTES}"
    words = flags.split()
    for i, word in enumerate(words):
        if word.startswith(_EXTRA):  # XLA keeps one list of extra options: join it
            words[i] = f"{word},{setting}" if word != _EXTRA else word + setting
            return " ".join(words)
    return " ".join([*words, _EXTRA + setting])


def _jax_started() -> bool:
    """Whether JAX has started a client (after which it ignores ``XLA_FLAGS``)."""
    if "jax" not in sys.modules:
        return False
    try:  # a private function: if it moves, assume JAX has started
        from jax._src import xla_bridge

        return bool(xla_bridge.backends_are_initialized())
    except (ImportError, AttributeError):
        return True


def apply_small_loop_flags() -> bool:
    """Add the setting to ``XLA_FLAGS`` unless turned off or too late (JAX has started).

    Returns whether the environment now asks for it.
    """
    if os.environ.get("MINIPPL_XLA_FLAGS", "1").strip().lower() in ("0", "false", "off", "no"):
        return False
    global _before
    if not _jax_started():
        current = os.environ.get("XLA_FLAGS")
        changed = small_loop_flags(current or "")
        if changed != current and _before is _UNTOUCHED:
            _before = current
        os.environ["XLA_FLAGS"] = changed
    return _OPTION in os.environ.get("XLA_FLAGS", "")


def flags_before(environ: dict[str, str]) -> dict[str, str]:
    """``environ`` with ``XLA_FLAGS`` as it was before this module added the setting: for
    a child process that should run JAX the way it runs without minippl."""
    if _before is _UNTOUCHED:
        return dict(environ)
    out = {k: v for k, v in environ.items() if k != "XLA_FLAGS"}
    if isinstance(_before, str):
        out["XLA_FLAGS"] = _before
    return out
