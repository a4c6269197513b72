"""The persistent compilation cache: compiled samplers outlive the process that built them.

Tutorial: "Causal inference: do", where the email model is fitted (``tutorial/s08_causal_do.py``).

Compiling is most of what a user waits for on a small model. Within a process, :class:`MCMC`
keeps its compiled program and a second ``run`` with the same shapes compiles nothing. Across
processes, the backend's persistent cache (JAX's compilation cache) stores every compiled
program on disk, so a fresh process running the same model loads it instead of compiling.

It is on by default. The folder is ``$MINIPPL_CACHE_DIR`` if set, else
``$XDG_CACHE_HOME/minippl/jax`` (``~/.cache/minippl/jax``); ``MINIPPL_COMPILE_CACHE=0`` turns
it off. A folder the user configured in JAX directly is left as it is (the backend checks).

Where the backend can (``stored_program``; on JAX :mod:`backends.jax_programs`), it also
keeps the samplers' compiled programs themselves in ``<folder>/programs``
(``MINIPPL_STORED_PROGRAMS=0`` turns that part off), so a warm process need not trace them
to find them in the cache. The last run's programs are named in a note under a cheap guess
at its identity (:func:`run_hint`), so that the next process can start loading them before
it has traced anything (``backends/program_prefetch.py``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from minippl.backend import current
from minippl.distributions.util import shape_of

__all__ = ["cache_dir", "enable_compile_cache", "program_dir", "run_hint"]

_configured: dict[str, str | None] = {}


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


def enable_compile_cache() -> Path | None:
    """Point the active backend's persistent cache at :func:`cache_dir` (idempotent).

    Returns the folder in use, or ``None`` when the cache is off. Failing to create the
    folder (a read-only home, say) turns the cache off rather than failing the run.
    """
    backend = current()
    folder = cache_dir()
    wanted = None if folder is None else str(folder)
    if backend.name in _configured and _configured[backend.name] == wanted:
        return folder
    if folder is not None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            folder, wanted = None, None
    backend.enable_compilation_cache(wanted)
    _configured[backend.name] = wanted
    return folder


def program_dir(folder: Path | None) -> Path | None:
    """Where the backend keeps compiled samplers beside the persistent cache in ``folder``:
    only where it can (JAX with one device: a program's key does not say how its arguments
    are laid out over devices), and not when ``MINIPPL_STORED_PROGRAMS=0``."""
    if folder is None or _off("MINIPPL_STORED_PROGRAMS"):
        return None
    return folder / "programs" if current().can_store_programs() else None


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
