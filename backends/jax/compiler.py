"""The JAX backend's :class:`~backends.protocol.Compiler`: the programs ``jax.jit`` makes,
started sooner.

Compiling is most of what a user waits for on a small model, and on a warm start most of
that is tracing and lowering programs only to find them in JAX's persistent cache. So:

- :meth:`JaxCompiler.keep_programs` points JAX's persistent cache at minippl's folder, and
  keeps whole executables beside it (``stored_programs.py``) under keys computed without
  tracing the sampler (``program_keys.py``);
- :meth:`JaxCompiler.expect` starts loading the executables the last run like this one
  used, while the process traces its model (``prefetch.py``);
- :meth:`JaxCompiler.ahead` compiles a program on a thread of its own (XLA compiles
  without holding Python's lock) while the caller does something else;
- :meth:`JaxCompiler.own_loop` gives a part of a chain program a loop of its own, which
  XLA's CPU compiler turns into one function.

None of it changes a draw: a stored or prefetched program is the executable ``jax.jit``
compiles, found only under a key that names everything it was built from.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import jax

from backends.plain_compiler import nothing
from backends.protocol import Backend, Computed, Description

__all__ = ["JaxCompiler"]

_ONE_CHAIN_ON_CPU = contextvars.ContextVar("minippl_one_chain_on_cpu", default=False)
"""Set while a chain program that runs one chain, unbatched, is traced for a CPU."""


def key_of(description: Description) -> tuple[Any, ...]:
    """A description in the form a key is made of: settings by value
    (:func:`~backends.jax.program_keys.canonical`), :class:`Computed` parts by the digest of
    their jaxpr."""
    from backends.jax.program_keys import canonical
    from backends.jax.stored_programs import jaxpr_digest

    def digest(part: Computed) -> str:
        args = [_one_row(a) if i in part.batched else a for i, a in enumerate(part.args)]
        return jaxpr_digest(part.fn, *args)

    return tuple(
        digest(part) if isinstance(part, Computed) else canonical(part) for part in description
    )


def _one_row(tree: Any) -> Any:
    """The shapes of one row of every array of ``tree`` (the leading axis dropped)."""

    def row(x: Any) -> Any:
        if not hasattr(x, "shape"):
            return x
        return jax.ShapeDtypeStruct(tuple(x.shape)[1:], x.dtype)  # type: ignore[no-untyped-call]

    return jax.tree_util.tree_map(row, tree)


class JaxCompiler:
    """:class:`~backends.protocol.Compiler` on JAX (one per :class:`JaxBackend`)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.folder: Path | None = None
        """Where whole executables are kept, or ``None`` (not asked, or several devices)."""
        self._kept: tuple[Path | None, bool] | None = None
        self._cache_dir_set: str | None = None

    # -- keeping programs across processes -------------------------------------------------
    def keep_programs(self, folder: Path | None, store: bool) -> None:
        if self._kept == (folder, store):
            return
        self._kept = (folder, store)
        if folder is not None:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError:  # a read-only home, say: run without a cache rather than fail
                folder = None
        self._use_persistent_cache(None if folder is None else str(folder))
        # A stored program's key does not say how its arguments lie over several devices.
        usable = folder is not None and store and jax.device_count() == 1
        self.folder = folder / "programs" if usable and folder is not None else None

    def _use_persistent_cache(self, path: str | None) -> None:
        """Point JAX's compilation cache at ``path`` (``None``: off), unless the user
        pointed it somewhere themselves."""
        configured = jax.config.jax_compilation_cache_dir  # type: ignore[attr-defined]
        if configured and configured != self._cache_dir_set:
            return
        jax.config.update("jax_compilation_cache_dir", path)  # type: ignore[no-untyped-call]
        self._cache_dir_set = path
        if path is not None:
            # Keep every program, however quick to compile or small: a sampler's start-up
            # is many small programs, and all of them count.
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # type: ignore[no-untyped-call]
            jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)  # type: ignore[no-untyped-call]

    def program(
        self,
        name: str,
        fn: Callable[..., Any],
        *,
        describe: Callable[[tuple[Any, ...]], Description] | None = None,
        donate_argnums: Sequence[int] = (),
        optimize: bool = True,
        on_load: Callable[[], None] | None = None,
    ) -> Callable[..., Any]:
        jitted = self.backend.jit(fn, donate_argnums=donate_argnums, optimize=optimize)
        if describe is None or self.folder is None:
            return jitted
        from backends.jax.stored_programs import StoredProgram  # serialization loads lazily

        def keyed(args: tuple[Any, ...]) -> tuple[Any, ...]:
            return key_of(describe(args))

        return StoredProgram(name, jitted, self.folder, keyed, on_load or nothing)

    def expect(self, hint: str) -> Callable[[], None]:
        if self.folder is None:
            return nothing
        from backends.jax.stored_programs import expect_programs

        return expect_programs(self.folder, hint)

    # -- compiling ahead ---------------------------------------------------------------------
    def ready(self, program: Callable[..., Any], *args: Any) -> bool:
        """A stored program in memory or on disk; any other cannot tell (``False``)."""
        from backends.jax.stored_programs import StoredProgram

        return isinstance(program, StoredProgram) and program.ready(*args)

    def ahead(
        self, program: Callable[..., Any], args: Callable[[], tuple[Any, ...]]
    ) -> Callable[[], None]:
        from backends.jax.stored_programs import compile_ahead

        return compile_ahead(program, args)

    # -- loops of their own ------------------------------------------------------------------
    def chain_program(self, unbatched: bool) -> AbstractContextManager[None]:
        return _one_chain_on_cpu(unbatched and jax.default_backend() == "cpu")

    def own_loop(self, fn: Callable[[Any], Any], x: Any, n: Any) -> Any:
        """``fn(x)`` as a loop of one trip, in a chain program that runs one chain,
        unbatched, on a CPU; elsewhere ``fn(x)``.

        Where a model's gradient calls XLA's library kernels (sums over thousands of rows
        become YNNPACK calls), XLA cannot compile the loop around them as one function
        (``xla_flags.py``) and dispatches each small operation of what follows on its own.
        A loop holding only ``fn`` is compiled whole, with the same results. Its trip count,
        ``min(n, 0) + 1`` for a count ``n >= 0``, is one XLA cannot fold, or it would remove
        the loop. Batched (``vmap``), the trip count would be batched and every trip a
        select over the whole carry; on a GPU each trip reads its predicate back to the host.
        """
        if not _ONE_CHAIN_ON_CPU.get():
            return fn(x)
        return one_trip_loop(fn, x, n)


def one_trip_loop(fn: Callable[[Any], Any], x: Any, n: Any) -> Any:
    """``fn(x)`` as a ``while`` loop that runs once (``n >= 0``)."""
    one = jax.numpy.minimum(n, 0) + 1
    return jax.lax.while_loop(lambda c: c[0] < one, lambda c: (c[0] + 1, fn(c[1])), (one - 1, x))[1]


@contextmanager
def _one_chain_on_cpu(value: bool) -> Iterator[None]:
    token = _ONE_CHAIN_ON_CPU.set(value)
    try:
        yield
    finally:
        _ONE_CHAIN_ON_CPU.reset(token)
