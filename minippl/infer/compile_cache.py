"""Compiled samplers that outlive the process that built them: where, and when.

Tutorial: "Causal inference: do", where the email model is fitted (``tutorial/s08_causal_do.py``).

Compiling is most of what a user waits for on a small model. Within a process, :class:`MCMC`
keeps its compiled program and a second ``run`` with the same shapes compiles nothing. Across
processes, the backend's compiler keeps compiled programs in a folder, so a fresh process
running the same model loads them instead of compiling (on JAX: JAX's persistent cache, and
whole executables beside it, ``backends/jax/compiler.py``; NumPy compiles nothing).

Nothing happens at import: an :class:`MCMC` object, when it is made and at each run, asks
the compiler to keep its programs (from its making on, so that the programs a script
compiles for its keys and data before the first run are kept too). The folder
is ``$MINIPPL_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/minippl/<backend>``
(``~/.cache/minippl/jax``); ``MINIPPL_COMPILE_CACHE=0`` turns it off, and
``MINIPPL_STORED_PROGRAMS=0`` keeps only JAX's cache, not the whole executables. Each run
also gives the compiler a cheap guess at its identity (:func:`run_hint`), so that the next
process can start loading the programs it used before it has traced anything.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from minippl.backend import current
from minippl.distributions.util import shape_of

__all__ = ["cache_dir", "enable_compile_cache", "run_hint"]


def _off(name: str) -> bool:
    return os.environ.get(name, "1").strip().lower() in ("0", "false", "off", "no")


def cache_dir() -> Path | None:
    """Where compiled programs are kept, or ``None`` when the cache is turned off."""
    if _off("MINIPPL_COMPILE_CACHE"):
        return None
    explicit = os.environ.get("MINIPPL_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "minippl" / current().name


def enable_compile_cache() -> None:
    """Have the active backend's compiler keep its programs in :func:`cache_dir` (each run
    calls it; the compiler does nothing when nothing changed)."""
    store = not _off("MINIPPL_STORED_PROGRAMS")
    current().compiler().keep_programs(cache_dir(), store)


def run_hint(
    model: Callable[..., Any] | None,
    settings: tuple[Any, ...],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
) -> str | None:
    """A guess, made without tracing, at "the same run as before": the model's code (its
    bytecode and names, not what it closes over), plain ``settings`` and the data's shapes
    and dtypes. It only decides which stored programs to start loading early; each program is
    still found by its full key, so two runs that share a hint cannot share a wrong program.
    ``None`` when the model has no code to go by."""
    code = getattr(model, "__code__", None)
    if code is None:
        return None
    leaves = current().tree_flatten((args, dict(kwargs)))[0]
    shapes = [(shape_of(x), str(getattr(x, "dtype", type(x).__name__))) for x in leaves]
    identity = (
        getattr(model, "__module__", ""),
        getattr(model, "__qualname__", ""),
        code.co_code,
        code.co_names,
    )
    return hashlib.sha256(repr((identity, settings, shapes)).encode()).hexdigest()[:32]
