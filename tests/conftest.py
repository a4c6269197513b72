"""Shared fixtures: every behaviour test takes ``backend`` and so runs on JAX and on NumPy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from compile_counter import CompileCounter

import minippl
from backends import Backend


@pytest.fixture(params=["jax", "numpy"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """The active backend for one test, restored afterwards."""
    from minippl import backend as selection

    previous = selection.current().name
    active = minippl.set_backend(request.param)
    try:
        yield active
    finally:
        minippl.set_backend(previous)


@pytest.fixture
def jax_backend() -> Iterator[Backend]:
    """For the tests that are about JAX only (bit-for-bit parity with NumPyro, jit)."""
    from minippl import backend as selection

    previous = selection.current().name
    active = minippl.set_backend("jax")
    try:
        yield active
    finally:
        minippl.set_backend(previous)


@pytest.fixture(autouse=True)
def _backend_restored() -> Iterator[None]:
    """The backend is process-wide: whatever a test selects, the next test starts on the one
    before it, so that no test depends on test order."""
    from minippl import backend as selection

    previous = selection.current().name
    yield
    if selection.current().name != previous:
        minippl.set_backend(previous)


@pytest.fixture(autouse=True)
def _x64_restored() -> Iterator[None]:
    """JAX's 64-bit switch is process-wide: whatever a test does with it, undo it after, so
    that seed-only values (float32 by default) never depend on test order."""
    try:
        import jax
    except ImportError:
        yield
        return
    previous = jax.config.read("jax_enable_x64")
    yield
    if jax.config.read("jax_enable_x64") != previous:
        jax.config.update("jax_enable_x64", previous)


@pytest.fixture
def x64() -> Iterator[None]:
    """Float64 on JAX for a test (NumPy is always float64); modules that need it throughout
    say ``pytestmark = pytest.mark.usefixtures("x64")``."""
    import jax

    previous = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", previous)


@pytest.fixture
def b64(backend: Backend) -> Iterator[Backend]:
    """The test's backend computing in float64 (x64 on JAX, restored afterwards)."""
    if backend.name != "jax":
        yield backend
        return
    import jax

    previous = bool(jax.config.jax_enable_x64)
    jax.config.update("jax_enable_x64", True)
    yield backend
    jax.config.update("jax_enable_x64", previous)


@pytest.fixture(scope="session")
def compile_counter() -> CompileCounter:
    """One listener for the whole run: JAX offers no way to remove one."""
    return CompileCounter()
