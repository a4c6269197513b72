"""The two seams: every backend satisfies ``Backend``, its compiler ``Compiler``; the
registry finds the built-in backends by name; the plain compiler is ``jit`` and nothing else."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import backends
from backends import Backend, Compiler
from backends.plain_compiler import PlainCompiler


def test_each_backend_and_its_compiler_satisfy_the_protocols(backend: Backend) -> None:
    assert isinstance(backend, Backend)
    assert isinstance(backend.compiler(), Compiler)
    assert backend.compiler() is backend.compiler()


def test_the_registry_finds_the_built_in_backends_and_names_the_others() -> None:
    assert backends.available()["jax"] == "backends.jax.backend:JaxBackend"
    assert backends.load("numpy").name == "numpy"
    with pytest.raises(ValueError, match="installed backends: .*'jax'.*'numpy'"):
        backends.load("no-such-backend")
    backends.prepare("no-such-backend")  # left for load() to report


def test_the_plain_compiler_is_jit_and_nothing_else() -> None:
    backend = backends.load("numpy")
    compiler = backend.compiler()
    assert isinstance(compiler, PlainCompiler)

    def never() -> tuple[Any, ...]:
        raise AssertionError("the plain compiler prepares nothing ahead")

    def double(x: float) -> float:
        return 2 * x

    program = compiler.program("double", double, describe=lambda _: ("double",))
    assert program(3.0) == 6.0 and compiler.ready(program, 3.0)
    compiler.ahead(program, never)()
    compiler.expect("hint")()
    with compiler.chain_program(unbatched=True):
        assert compiler.own_loop(double, 4.0, 0) == 8.0


def test_a_jitted_function_overflows_silently(backend: Backend) -> None:
    """Inside ``jit`` both backends compute with IEEE infinities and NaNs and warn of
    nothing, as XLA does: NUTS meets overflow on purpose and reports it as a divergence."""
    xp = backend.xp
    program = backend.jit(lambda x: (xp.exp(x), xp.exp(x) - xp.exp(x), xp.log(x - x)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        big, nan, minus_inf = program(xp.asarray(1000.0))
    assert np.isposinf(float(big)) and np.isnan(float(nan)) and np.isneginf(float(minus_inf))
