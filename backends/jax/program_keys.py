"""Keys for compiled programs kept on disk: a setting's full content as a hashable form.

A program may be stored and found again only under a key that states everything it depends
on. :func:`canonical` writes a setting out by value (plain values, containers, arrays by
content, minippl's own functions and objects); what it cannot see into (a user's function
or object) it refuses with :class:`UnkeyableError`, and the caller then does not store.
minippl's own code enters a key through :func:`source_digest`. No backend is imported here:
the core and the backends that store programs both use it.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["UnkeyableError", "canonical", "source_digest"]

_PACKAGES = ("minippl", "backends")


class UnkeyableError(Exception):
    """A value whose effect on a program cannot be stated in a key: do not store."""


def _is_ours(module: str | None) -> bool:
    """Code from minippl (or its backends): covered by :func:`source_digest`."""
    return bool(module) and str(module).split(".")[0] in _PACKAGES


def canonical(value: Any) -> Any:
    """A deterministic, content-complete text-able form of a setting, or :class:`UnkeyableError`.

    Plain values, containers, arrays (by content), functions and objects of minippl's own
    classes (their code is in :func:`source_digest`) are accepted; anything else (a user's
    function or object, whose code and state a key cannot see) is refused.
    """
    if value is None or isinstance(value, bool | int | float | complex | str | bytes):
        return (type(value).__name__, value)
    if isinstance(value, np.generic) or (hasattr(value, "shape") and hasattr(value, "dtype")):
        host = np.ascontiguousarray(np.asarray(value))
        digest = hashlib.sha256(host.tobytes()).hexdigest()
        return ("array", host.shape, str(host.dtype), digest)
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return (_qualname(type(value)), tuple(canonical(v) for v in value))
    if isinstance(value, list | tuple):
        return (type(value).__name__, tuple(canonical(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple((canonical(k), canonical(v)) for k, v in value.items()))
    if isinstance(value, functools.partial):
        return ("partial", canonical(value.func), canonical(value.args), canonical(value.keywords))
    if isinstance(value, types.FunctionType | types.BuiltinFunctionType | type):
        if _is_ours(value.__module__) and "<locals>" not in value.__qualname__:
            return ("function", _qualname(value))
        raise UnkeyableError(f"{value!r} is not minippl's")
    cls = type(value)
    if _is_ours(cls.__module__) and "<locals>" not in cls.__qualname__:
        if dataclasses.is_dataclass(value):
            fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
            return (_qualname(cls), canonical(fields))
        if hasattr(value, "__dict__") and not hasattr(cls, "__slots__"):
            return (_qualname(cls), canonical(dict(vars(value))))
    raise UnkeyableError(f"cannot key a {cls.__module__}.{cls.__qualname__}")


def _qualname(obj: Any) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


@functools.lru_cache(maxsize=1)
def source_digest() -> str:
    """Digest of every Python file of minippl and its backends: new code, new keys."""
    h = hashlib.sha256()
    for package in _PACKAGES:
        module = sys.modules.get(package)
        if module is None or getattr(module, "__file__", None) is None:
            continue
        root = Path(str(module.__file__)).parent
        for path in sorted(root.rglob("*.py")):
            h.update(str(path.relative_to(root.parent)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()
