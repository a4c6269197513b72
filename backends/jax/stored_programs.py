"""Compiled samplers kept on disk, so a warm process neither traces nor lowers them.

JAX's persistent cache is keyed by the *lowered* program: to find a sampler there, a fresh
process must first trace and lower the whole NUTS program, most of a warm start. Here the
compiled executable itself (``jax.experimental.serialize_executable``) is kept beside that
cache, in ``<cache>/programs``, under a key computed without tracing the sampler: the jaxpr
of the model's parts (cheap to trace), the kernel's settings, the structure, shapes and
dtypes of the program's arguments, JAX's version, configuration, devices and host CPU, and a
digest of minippl's own source. A change in any of them gives a new key, so a stale program
is never loaded; what is loaded is the very executable the ordinary path compiles, so it
draws the same numbers.

The executable is serialized rather than exported (``jax.export``): loading an exported
program still lowers a wrapper around it, initialises LAPACK and asks JAX's cache for the
executable, a few tenths of a second more per process.

JAX sets up its LAPACK kernels (function pointers taken from SciPy) while it *lowers* a
linear-algebra operation. A process that loads a program instead of lowering it never does,
and the program's first Cholesky would jump through a null pointer: each file therefore
records whether its program calls LAPACK, and loading such a file sets LAPACK up first
(the import of ``scipy.linalg``, a fifth of a second; programs without LAPACK do not
pay it).

An executable that JAX itself loaded from its cache serializes into one that cannot run
(XLA CPU drops its functions), so only freshly compiled programs are stored, and JAX's cache
is not given a copy of them. A program's file is touched when it is used; whenever one is
stored, files unused for :data:`UNUSED_DAYS` days are removed.

Part of the JAX backend's compiler (``compiler.py``, ``JaxCompiler.program``); the core asks
for programs through the protocol's ``Compiler`` and never sees JAX. A program whose parts
cannot be keyed (a kernel or function from outside minippl, say), or any failure to store,
falls back silently to the ordinary compiled program (logged at debug level).

A damaged cache never fails a run. Each file starts with :data:`FORMAT` and a SHA-256 of the
rest, checked before anything is unpickled, so a truncated, overwritten or older file never
reaches the loader: it is removed (one warning on the log per process) and the program is
compiled, and stored whole again where the folder can be written. Files are written to a
temporary name and renamed, so a reader (another process, or the next run after Ctrl-C)
sees a whole file or none. The checksum guards against damage, not against an attacker:
the files are trusted like JAX's own cache entries (both hold machine code), so keep the
cache folder private.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import logging
import os
import pickle
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax.experimental import serialize_executable as se

from backends.jax import prefetch
from backends.jax.program_keys import UnkeyableError, canonical, source_digest

__all__ = [
    "FORMAT",
    "StoredProgram",
    "compile_ahead",
    "expect_programs",
    "jaxpr_digest",
    "load",
    "remove_unused",
    "store",
    "write_atomically",
]

logger = logging.getLogger(__name__)

FORMAT = "minippl-stored-program-3"
"""Bumped whenever what is stored, or how keys are made, changes."""

_HEADER = f"{FORMAT}\n".encode()
"""A file starts with this, then the SHA-256 of the rest: checked before anything is loaded."""


class DamagedProgramError(ValueError):
    """A stored file that is not whole: another format, truncated, or overwritten."""


def _environment() -> tuple[Any, ...]:
    """What else shapes a lowered program: JAX's version, configuration and devices."""
    device = jax.devices()[0]
    config = (
        "jax_enable_x64",
        "jax_default_matmul_precision",
        "jax_numpy_rank_promotion",
        "jax_default_prng_impl",
        "jax_threefry_partitionable",
        "jax_softmax_custom_jvp",
    )
    return (
        FORMAT,
        jax.__version__,
        getattr(sys.modules.get("jaxlib"), "__version__", ""),
        np.__version__,
        device.platform,
        device.device_kind,
        getattr(device.client, "platform_version", ""),
        jax.device_count(),
        _host_cpu(),
        tuple((name, str(getattr(jax.config, name, None))) for name in config),
        os.environ.get("XLA_FLAGS", ""),
    )


@functools.lru_cache(maxsize=1)
def _host_cpu() -> str:
    """The host's processor and its features: a CPU executable is compiled for them."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            lines = [line for line in f if line.startswith(("model name", "flags", "Features"))]
        return hashlib.sha256("".join(sorted(set(lines))).encode()).hexdigest()
    except OSError:
        return f"{platform.machine()}:{platform.processor()}"


def _abstract(tree: Any) -> Any:
    """Arrays -> their shapes and dtypes (what a trace sees); other leaves as they are."""

    def leaf(x: Any) -> Any:
        if hasattr(x, "shape") and hasattr(x, "dtype"):
            return jax.ShapeDtypeStruct(tuple(x.shape), x.dtype)  # type: ignore[no-untyped-call]
        return x

    return jax.tree_util.tree_map(leaf, tree)


def jaxpr_digest(fn: Callable[..., Any], *args: Any) -> str:
    """Digest of ``fn``'s jaxpr at the shapes of ``args``: its text, the values of its
    constants and its output structure. Tracing a model is cheap; this is what stands for
    the model's code in a key."""
    closed, out = jax.make_jaxpr(fn, return_shape=True)(*_abstract(args))
    text = str(closed)
    if " at 0x" in text:
        raise UnkeyableError("the jaxpr names a Python object by its address")
    h = hashlib.sha256(text.encode())
    h.update(str(jax.tree_util.tree_structure(out)).encode())
    for const in closed.consts:
        h.update(repr(canonical(const)).encode())
    return h.hexdigest()


def _lookup_key(args: Sequence[Any]) -> Hashable:
    """What tells this call's program from another's: the arguments' structure, shapes,
    dtypes and weak types, and the x64 setting, which decides how a NumPy or Python value is
    typed. Cheap enough for every call (shapes and dtypes as they are, where formatting
    ``jax.typeof`` of each leaf costs about twenty times more); its ``repr`` names the
    program's file."""
    leaves, treedef = jax.tree_util.tree_flatten(tuple(args))
    kinds = tuple(
        [
            (x.shape, x.dtype, getattr(x, "weak_type", False)) if hasattr(x, "dtype") else type(x)
            for x in leaves
        ]
    )
    return (jax.config.jax_enable_x64, treedef, kinds)  # type: ignore[attr-defined]


class StoredProgram:
    """``jitted``, but its compiled executable kept in (and loaded from) ``folder`` when its
    key can be made.

    ``describe(args)`` returns what, besides the argument shapes, determines the program (it
    raises :class:`UnkeyableError` when something cannot be keyed); ``on_load`` is called when a
    program comes from disk instead of a trace.
    """

    def __init__(
        self,
        name: str,
        jitted: Any,
        folder: Path,
        describe: Callable[[tuple[Any, ...]], Any],
        on_load: Callable[[], None] = lambda: None,
    ) -> None:
        self.name = name
        self.jitted = jitted
        self.folder = folder
        self.describe = describe
        self.on_load = on_load
        self.programs: dict[Hashable, Callable[..., Any]] = {}
        self.paths: dict[Hashable, Path] = {}
        self.loaded = 0
        """Programs this object took from disk (for tests)."""

    def __call__(self, *args: Any) -> Any:
        try:
            program = self.prepare(*args)
        except Exception as err:  # noqa: BLE001 - anything odd: the ordinary program
            logger.debug("%s: not using a stored program (%s: %s)", self.name, type(err), err)
            return self.jitted(*args)
        return program(*args)

    def prepare(self, *args: Any) -> Callable[..., Any]:
        """The compiled program for arguments like ``args`` (arrays or their shapes),
        loaded or compiled now and kept for the calls that follow."""
        key = _lookup_key(args)
        program = self.programs.get(key)
        if program is None:
            program = self.programs[key] = self._resolve(key, args)
        return program

    def ready(self, *args: Any) -> bool:
        """Whether a call with ``args`` would compile nothing: its program is in memory or
        on disk."""
        try:
            key = _lookup_key(args)
            return key in self.programs or self._path(key, args).exists()
        except Exception:  # noqa: BLE001 - cannot be keyed: it would be compiled
            return False

    def _path(self, key: Hashable, args: tuple[Any, ...]) -> Path:
        """The file of the program for these arguments (computed once per ``key``: the
        description traces the model's parts)."""
        path = self.paths.get(key)
        if path is None:
            h = hashlib.sha256()
            for part in (_environment(), source_digest(), self.name, repr(key)):
                h.update(repr(part).encode())
            h.update(repr(self.describe(args)).encode())
            path = self.paths[key] = self.folder / f"{self.name}-{h.hexdigest()}.pkl"
        return path

    def _resolve(self, key: Hashable, args: tuple[Any, ...]) -> Callable[..., Any]:
        """The compiled program for these arguments: loaded, or compiled and stored now.

        What is stored is the executable exactly as ``jitted`` compiles it (donation and
        compiler options included), so its draws are those of the ordinary path.
        """
        try:
            path = self._path(key, args)
        except Exception as err:  # noqa: BLE001 - cannot be keyed: the ordinary program
            logger.debug("%s: not using a stored program (%s: %s)", self.name, type(err), err)
            return self.jitted  # type: ignore[no-any-return]
        try:
            prefetch.note_resolved(path)
            compiled = prefetch.take(path)
            if compiled is None and path.is_file():
                compiled = load(path)
            if compiled is not None:
                _mark_used(path)
                self.loaded += 1
                self.on_load()
                return compiled  # type: ignore[no-any-return]
        except Exception as err:  # noqa: BLE001 - never fail a run over the store
            _set_aside(path, err)  # then compiled, and stored whole again where it can be
        events = _compile_events()
        with _kept_here_only():
            compiled = self.jitted.lower(*args).compile()
        if not events.fresh():
            # Taken from JAX's cache: an executable deserialized there serializes into one
            # that cannot run (XLA CPU loses its functions), so it is never stored.
            logger.debug("%s: not stored (not freshly compiled)", self.name)
            return compiled  # type: ignore[no-any-return]
        try:
            store(path, compiled)
            remove_unused(self.folder)
        except Exception as err:  # noqa: BLE001
            logger.debug("%s: could not store the program (%s: %s)", self.name, type(err), err)
        return compiled  # type: ignore[no-any-return]


_warned = False


def _set_aside(path: Path, err: Exception) -> None:
    """A file that could not be loaded is removed (so the program is stored whole again),
    with one warning per process on the log: the run itself compiles the program."""
    global _warned
    with contextlib.suppress(OSError):
        path.unlink()
    level = logging.DEBUG if _warned else logging.WARNING
    _warned = True
    logger.log(level, "minippl: ignored the damaged stored program %s (%s)", path.name, err)


UNUSED_DAYS = 30
"""Stored programs and notes not used for this many days are removed when a new program is
stored: a model edited a hundred times would otherwise leave a hundred chain programs
(0.6-1.3 MB each) behind."""


def _mark_used(path: Path) -> None:
    """A file's modification time is its last use (loading alone would not change it)."""
    try:
        os.utime(path)
    except OSError:
        pass


def remove_unused(folder: Path, days: float = UNUSED_DAYS, now: float | None = None) -> int:
    """Delete the programs (``*.pkl``) and notes (``expect-*.txt``) in ``folder`` last used
    more than ``days`` days before ``now``; returns how many. Called when a program is stored,
    so a process that only loads never scans the folder."""
    now = time.time() if now is None else now
    cutoff = now - days * 86400.0
    removed = 0
    for entry in folder.iterdir():
        # A ``.tmp-`` file left by a process killed while writing: gone after an hour.
        stray = entry.name.startswith(".tmp-")
        if not (entry.suffix == ".pkl" or entry.name.startswith("expect-") or stray):
            continue
        try:
            if entry.stat().st_mtime < (now - 3600.0 if stray else cutoff):
                entry.unlink()
                removed += 1
        except OSError:
            continue
    return removed


def _kept_here_only() -> contextlib.AbstractContextManager[Any]:
    """While compiling a program stored here, JAX's own cache does not write it too.

    A second copy would cost a cold process its write and disk space, and it would be found
    instead of compiled once minippl's source changes, and an executable from JAX's cache
    cannot be stored here: the program would then never be stored again. JAX reads this
    setting per thread at write time; it is not part of any key. (A private module: if it
    moves, JAX simply keeps its copy.)"""
    try:
        from jax._src import config as jax_config

        never = jax_config.persistent_cache_min_compile_time_secs(float("inf"))
        return never  # type: ignore[no-any-return]
    except (ImportError, AttributeError):
        return contextlib.nullcontext()


def _calls_lapack(compiled: Any) -> bool:
    """Whether a compiled program calls one of jaxlib's LAPACK kernels (``lapack_*``)."""
    return "lapack_" in compiled.as_text()


def _set_up_lapack() -> None:
    """What JAX does before lowering a linear-algebra operation on the CPU (idempotent).

    A private function: if it moves, the error makes the caller compile the program
    instead, and lowering sets LAPACK up."""
    from jax._src.lax import linalg

    linalg.initialize_lapack()  # type: ignore[no-untyped-call]


def store(path: Path, compiled: Any) -> None:
    """Write ``compiled`` to ``path``, with whether it needs LAPACK set up to run, behind the
    format's header and a checksum of what follows."""
    payload = pickle.dumps((se.serialize(compiled), _calls_lapack(compiled)))
    write_atomically(path, _HEADER + hashlib.sha256(payload).digest() + payload)


def verified(data: bytes) -> bytes:
    """What a stored file holds after its header and checksum, once both are checked:
    nothing damaged, truncated or of another format reaches the unpickler."""
    if not data.startswith(_HEADER):
        raise DamagedProgramError(f"not a {FORMAT} file")
    digest, payload = data[len(_HEADER) : len(_HEADER) + 32], data[len(_HEADER) + 32 :]
    if hashlib.sha256(payload).digest() != digest:
        raise DamagedProgramError("its checksum does not match (truncated or overwritten)")
    return payload


def load(path: Path) -> Any:
    """The executable stored in ``path``, loaded and ready to run (its integrity checked)."""
    (blob, in_tree, out_tree), calls_lapack = pickle.loads(verified(path.read_bytes()))
    if calls_lapack:
        _set_up_lapack()
    return se.deserialize_and_load(blob, in_tree, out_tree)


def compile_ahead(program: Any, args: Callable[[], tuple[Any, ...]]) -> Callable[[], None]:
    """Compile ``program`` (a :class:`StoredProgram` or a ``jax.jit`` function) for
    ``args()`` on a thread of its own; returns what waits for it.

    XLA releases Python's lock while it compiles, so a compile here runs beside the
    caller's on another core. Tracing and lowering, though, are Python and would only take
    turns with the caller's: this returns once they are done (or the program came from
    disk), so the compile, the long part, starts as early as it can. A jitted function
    keeps what ``lower(...).compile()`` made (its trace, lowering and executable are
    cached), so the later call compiles nothing. Any error is logged and dropped: the later
    call raises it again, where it belongs.
    """
    lowered, done = threading.Event(), threading.Event()

    def work() -> None:
        try:
            shapes = args()
            if isinstance(program, StoredProgram):
                if not program.ready(*shapes):
                    program.jitted.lower(*shapes)  # cached for the compile in prepare()
                lowered.set()
                program.prepare(*shapes)
            else:
                compiling = program.lower(*shapes)
                lowered.set()
                compiling.compile()
        except Exception as err:  # noqa: BLE001 - the call itself will meet it
            logger.debug("compiling ahead failed (%s: %s)", type(err), err)
        finally:
            lowered.set()
            done.set()

    # The caller's context travels with the work (minippl's handler stack lives there).
    context = contextvars.copy_context()
    threading.Thread(target=context.run, args=(work,), name="minippl-compile-ahead").start()
    lowered.wait()

    def wait() -> None:
        done.wait()

    return wait


def expect_programs(folder: Path, hint: str) -> Callable[[], None]:
    """Start loading the programs the last run under ``hint`` used, in the background
    (:mod:`backends.jax.prefetch`); call what is returned when the run has succeeded."""
    return prefetch.expect_programs(folder, hint, load, write_atomically)


class _Events:
    """Counts of JAX's compilation-cache events on this thread since :func:`_compile_events`."""

    def __init__(self) -> None:
        self.requests = 0
        self.hits = 0

    def fresh(self) -> bool:
        """Compiled now, not loaded from JAX's cache. Unknown (no event seen: a JAX that
        names its events otherwise, say) counts as not fresh."""
        return self.requests > 0 and self.hits == 0


_local = threading.local()
_listening = False


def _on_event(event: str, **_: Any) -> None:
    events = getattr(_local, "events", None)
    if events is None:
        return
    if event == "/jax/compilation_cache/compile_requests_use_cache":
        events.requests += 1
    elif event == "/jax/compilation_cache/cache_hits":
        events.hits += 1


def _compile_events() -> _Events:
    """Start counting this thread's compilation-cache events (one listener per process)."""
    global _listening
    if not _listening:
        jax.monitoring.register_event_listener(_on_event)
        _listening = True
    _local.events = _Events()
    return _local.events  # type: ignore[no-any-return]


def write_atomically(path: Path, data: bytes) -> None:
    """Write atomically: a reader sees the whole file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
