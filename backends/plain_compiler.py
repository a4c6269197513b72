"""The plain :class:`~backends.protocol.Compiler`: a program is ``Backend.jit`` of the
function, and nothing else happens.

Nothing is kept on disk, loaded ahead or compiled on another thread, and every loop runs as
written. It is the NumPy backend's compiler (where ``jit`` is the identity, so a program is
the function itself), and the one to read first: the JAX backend's compiler
(``backends/jax/compiler.py``) makes the same programs, only sooner.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from backends.protocol import Backend, Description

__all__ = ["PlainCompiler", "nothing"]


def nothing() -> None:
    """Nothing to wait for, nothing to note (what ``ahead`` and ``expect`` may return)."""


@contextmanager
def _as_written() -> Iterator[None]:
    yield


class PlainCompiler:
    """:class:`~backends.protocol.Compiler` as ``backend.jit`` alone."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def keep_programs(self, folder: Path | None, store: bool) -> None:
        """Nothing is kept across processes."""

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
        return self.backend.jit(fn, donate_argnums=donate_argnums, optimize=optimize)

    def ready(self, program: Callable[..., Any], *args: Any) -> bool:
        """Nothing is compiled ahead here, so nothing is gained by waiting for it."""
        return True

    def ahead(
        self, program: Callable[..., Any], args: Callable[[], tuple[Any, ...]]
    ) -> Callable[[], None]:
        """The call compiles what it needs; ``args`` is not even called."""
        return nothing

    def expect(self, hint: str) -> Callable[[], None]:
        return nothing

    def chain_program(self, unbatched: bool) -> AbstractContextManager[None]:
        return _as_written()

    def own_loop(self, fn: Callable[[Any], Any], x: Any, n: Any) -> Any:
        return fn(x)
