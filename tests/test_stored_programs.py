"""Compiled samplers kept on disk (:mod:`backends.jax.stored_programs`): a program is loaded
only when everything it was built from is unchanged, and it draws what a fresh build draws."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import minippl
import minippl.distributions as dist
from backends import Backend
from backends.jax.program_keys import UnkeyableError, canonical
from backends.jax.stored_programs import StoredProgram
from minippl.infer import MCMC, NUTS, MCMCWarning


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, jax_backend: Backend) -> Path:
    """A fresh cache folder for the test; its ``programs`` subfolder holds the programs."""
    monkeypatch.setenv("MINIPPL_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("MINIPPL_COMPILE_CACHE", raising=False)
    monkeypatch.delenv("MINIPPL_STORED_PROGRAMS", raising=False)
    return tmp_path / "programs"


def regression(scale: float) -> Callable[..., None]:
    def model(x: Any, y: Any = None) -> None:
        slope = minippl.sample("slope", dist.Normal(0.0, scale))
        sigma = minippl.sample("sigma", dist.HalfNormal(1.0))
        with minippl.plate("data", x.shape[0]):
            minippl.sample("y", dist.Normal(slope * x, sigma), obs=y)

    return model


def data(n: int = 20) -> tuple[Any, Any]:
    x = np.linspace(-1.0, 1.0, n, dtype=np.float32)
    return x, (0.5 * x + 0.1).astype(np.float32)


def run(
    model: Callable[..., None], n: int = 20, method: str = "vectorized", **kernel: Any
) -> tuple[dict[str, Any], int]:
    """Draws of a short run, and how many programs came from disk."""
    import jax

    x, y = data(n)
    mcmc = MCMC(NUTS(model, **kernel), num_warmup=30, num_samples=30, num_chains=2,
                chain_method=method, progress_bar=False)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MCMCWarning)
        mcmc.run(jax.random.key(3), x, y=y)
    loaded = sum(
        p.loaded for p in mcmc._programs.cache.programs.values() if isinstance(p, StoredProgram)
    )
    return {k: np.asarray(v) for k, v in mcmc.get_samples().items()}, loaded


def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def files(folder: Path) -> set[str]:
    """The stored model programs (the driver's small helper programs left out)."""
    found = folder.glob("*.pkl") if folder.exists() else []
    return {p.name for p in found if p.name.startswith(("init-", "chains-"))}


@pytest.mark.parametrize("method", ["vectorized", "sequential"])
def test_a_stored_program_is_loaded_and_draws_what_a_build_draws(
    store: Path, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    first, loaded = run(regression(1.0), method=method)
    assert loaded == 0 and len(files(store)) == 2  # the init and the chain programs
    again, loaded = run(regression(1.0), method=method)
    assert loaded == 2 and same(first, again)
    monkeypatch.setenv("MINIPPL_STORED_PROGRAMS", "0")
    plain, loaded = run(regression(1.0), method=method)
    assert loaded == 0 and same(first, plain)


def test_a_new_process_loads_the_last_runs_programs_ahead(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The programs a run used are noted under a hint; a process that runs the same again
    loads them on a background thread while it traces the model, and uses them by key."""
    import threading

    import backends.jax.stored_programs as jax_programs
    from backends.jax import prefetch as program_prefetch

    first, _ = run(regression(1.0), method="sequential")
    (note,) = store.glob("expect-*.txt")
    assert files(store) <= set(note.read_text().split())

    threads: list[tuple[str, str]] = []
    plain_load = jax_programs.load

    def load(path: Path) -> Any:
        threads.append((path.name.split("-")[0], threading.current_thread().name))
        return plain_load(path)

    monkeypatch.setattr(jax_programs, "load", load)
    monkeypatch.setattr(program_prefetch, "_used", {})  # as in a new process
    again, loaded = run(regression(1.0), method="sequential")
    assert loaded == 2 and same(first, again)
    # Which files the loader reaches first is a race with the main thread; some it does.
    assert any(thread == "minippl-program-prefetch" for _, thread in threads)
    # A changed model has the same hint (the same code): its programs are loaded ahead but
    # never used, since their key names other files.
    monkeypatch.setattr(program_prefetch, "_used", {})
    changed, loaded = run(regression(0.2), method="sequential")
    assert loaded == 0
    monkeypatch.setenv("MINIPPL_STORED_PROGRAMS", "0")
    plain, _ = run(regression(0.2), method="sequential")
    assert same(changed, plain)


_IN_A_NEW_PROCESS = """
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from test_stored_programs import regression, run
draws, loaded = run(regression(1.0), method="sequential", dense_mass=True)
np.savez(sys.argv[2], loaded=loaded, **draws)
"""


def test_a_new_process_runs_a_stored_program_that_calls_lapack(store: Path, tmp_path: Path) -> None:
    """A dense mass matrix is factorised with LAPACK, which JAX sets up while lowering; a
    process that loads the program instead must set it up itself (without it, the loaded
    program's first Cholesky would jump through a null pointer)."""
    import os
    import subprocess
    import sys

    first, _ = run(regression(1.0), method="sequential", dense_mass=True)
    out = tmp_path / "draws.npz"
    root = Path(__file__).resolve().parent.parent
    path = os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    done = subprocess.run(
        [sys.executable, "-c", _IN_A_NEW_PROCESS, str(Path(__file__).parent), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    with np.load(out) as again:
        assert int(again["loaded"]) == 2
        assert same(first, {k: again[k] for k in first})


def test_programs_unused_for_a_month_go_when_a_new_one_is_stored(store: Path) -> None:
    import os
    import time

    from backends.jax.stored_programs import UNUSED_DAYS, remove_unused

    run(regression(1.0))
    stored = sorted(store.glob("*.pkl"))
    (note,) = store.glob("expect-*.txt")
    long_ago = time.time() - (UNUSED_DAYS + 1) * 86400.0
    for path in [*stored, note]:
        os.utime(path, (long_ago, long_ago))
    _, loaded = run(regression(1.0))  # loading marks a program as used
    assert loaded == 2
    assert all(path.exists() for path in stored)
    os.utime(note, (long_ago, long_ago))
    for path in stored:
        os.utime(path, (long_ago, long_ago))
    run(regression(1.0), n=33)  # new shapes: new programs are stored, the old ones go
    old_model = [path for path in stored if path.name.startswith(("init-", "chains-"))]
    assert len(old_model) == 2 and not any(path.exists() for path in old_model)
    assert not note.exists()  # the new shapes have a note of their own
    assert len(files(store)) == 2
    assert remove_unused(store) == 0  # what is left was just used (the driver's helpers too)


def test_a_changed_model_is_never_given_a_stored_program(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(regression(1.0))
    before = files(store)
    changed, loaded = run(regression(0.2))  # the same sites and shapes, another prior
    assert loaded == 0 and len(files(store) - before) == 2
    monkeypatch.setenv("MINIPPL_STORED_PROGRAMS", "0")
    plain, _ = run(regression(0.2))
    assert same(changed, plain)


def test_new_shapes_or_kernel_settings_build_new_programs(store: Path) -> None:
    run(regression(1.0))
    _, loaded = run(regression(1.0), n=21)
    assert loaded == 0
    assert len(files(store)) == 4
    _, loaded = run(regression(1.0), target_accept_prob=0.9)
    # The init program does not depend on the target (its jaxpr is the same): it is reused.
    assert loaded == 1 and len(files(store)) == 5
    _, loaded = run(regression(1.0), target_accept_prob=0.9)
    assert loaded == 2


def test_a_damaged_file_falls_back_to_building(store: Path) -> None:
    first, _ = run(regression(1.0))
    for path in store.glob("*.pkl"):
        path.write_bytes(b"not a program")
    again, loaded = run(regression(1.0))
    assert loaded == 0 and same(first, again)


def test_a_program_from_jaxs_cache_is_not_stored(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An executable JAX loaded from its own cache re-serializes into one that cannot run
    (XLA CPU); such a program is used but never stored."""
    monkeypatch.setenv("MINIPPL_STORED_PROGRAMS", "0")
    first, _ = run(regression(0.5))  # compiled the ordinary way: JAX's cache keeps them
    monkeypatch.setenv("MINIPPL_STORED_PROGRAMS", "1")
    again, loaded = run(regression(0.5))  # found in JAX's cache
    assert loaded == 0 and files(store) == set() and same(first, again)
    third, loaded = run(regression(0.5))
    assert loaded == 0 and same(first, third)


def test_a_stored_program_is_not_kept_twice(store: Path) -> None:
    """What is stored here is not written to JAX's cache too: lost from here, it is compiled
    and stored again (from JAX's cache it could not be stored, and would never be again)."""
    first, _ = run(regression(0.7))
    stored = files(store)
    for path in store.glob("*.pkl"):
        path.unlink()
    again, loaded = run(regression(0.7))
    assert loaded == 0 and files(store) == stored and same(first, again)
    third, loaded = run(regression(0.7))
    assert loaded == 2 and same(first, third)


def test_each_argument_type_gets_its_own_stored_program(store: Path) -> None:
    """A program is looked up by its arguments' structure, shapes, dtypes and weak types:
    a call that differs in any of them gets a program of its own, and one that differs in
    none gets the same program back."""
    import jax
    import jax.numpy as jnp

    def double(tree: Any) -> Any:
        return jax.tree_util.tree_map(lambda v: 2 * v, tree)

    program = StoredProgram("double", jax.jit(double), store, lambda _: "double")
    calls = [
        np.ones(3, np.float32),
        np.ones(4, np.float32),
        np.ones(3, np.int32),
        2.0,  # a weakly typed scalar
        jnp.float32(2.0),  # the same value, strongly typed
        (np.ones(3, np.float32),),  # another structure
    ]
    for x in calls:
        expected = jax.tree_util.tree_leaves(x)[0] * 2
        out = jax.tree_util.tree_leaves(program(x))[0]
        np.testing.assert_array_equal(np.asarray(out), expected)
    assert len(program.programs) == len(calls)
    out = program(np.full(3, 5.0, np.float32))
    assert len(program.programs) == len(calls)
    np.testing.assert_array_equal(np.asarray(out), np.full(3, 10.0, np.float32))
    assert program(3.0).weak_type and not program(jnp.float32(3.0)).weak_type


def test_only_the_jax_backend_stores_programs(tmp_path: Path) -> None:
    """NumPy's plain compiler keeps nothing (and makes no folder); JAX's keeps whole
    programs beside its cache, unless told not to."""
    previous = minippl.backend.current().name
    try:
        plain = minippl.set_backend("numpy").compiler()
        plain.keep_programs(tmp_path / "numpy", True)
        program = plain.program("double", lambda x: 2 * x, describe=lambda _: ("double",))
        assert program(3) == 6 and not (tmp_path / "numpy").exists()
        compiler: Any = minippl.set_backend("jax").compiler()
        compiler.keep_programs(tmp_path, True)
        assert compiler.folder == tmp_path / "programs"
        compiler.keep_programs(tmp_path, False)
        assert compiler.folder is None
        compiler.keep_programs(None, True)
        assert compiler.folder is None
    finally:
        minippl.set_backend(previous)


def test_settings_from_outside_minippl_cannot_be_keyed() -> None:
    assert canonical({"a": (1, 2.0, None)}) == canonical({"a": (1, 2.0, None)})
    assert canonical(np.ones(2)) != canonical(np.zeros(2))
    assert canonical(dist.Normal) == ("function", "minippl.distributions.continuous.Normal")
    with pytest.raises(UnkeyableError):
        canonical(lambda x: x)
    with pytest.raises(UnkeyableError):
        canonical(object())


@pytest.fixture(autouse=True)
def _no_leftover_backend() -> Iterator[None]:
    previous = minippl.backend.current().name
    yield
    minippl.set_backend(previous)
