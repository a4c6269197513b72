"""The backends' ``cond``: what goes in comes out, matrices included, on both backends; and
on JAX LAPACK calls in one branch leave the conditional's matrices in the loop's layout."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from backends import Backend


def test_cond_returns_matrices_keys_and_scalars_in_their_structure(backend: Backend) -> None:
    xp = backend.xp
    matrix = xp.asarray(np.arange(6.0, dtype=np.float32).reshape(2, 3))
    cube = xp.asarray(np.ones((2, 2, 2), dtype=np.int32))
    keys = backend.split(backend.key(0), 3)
    operands = {"m": matrix, "c": cube, "k": keys, "s": xp.asarray(1.5), "v": xp.ones(3)}

    def double(tree: dict[str, Any]) -> dict[str, Any]:
        return {**tree, "m": 2 * tree["m"].T, "c": tree["c"] + 1, "s": tree["s"] * 2}

    def keep(tree: dict[str, Any]) -> dict[str, Any]:
        return {**tree, "m": tree["m"].T}

    for pred, fn in ((True, double), (False, keep)):
        out = backend.cond(xp.asarray(pred), double, keep, operands)
        want = fn(operands)
        assert out.keys() == want.keys()
        for name in ("m", "c", "s", "v"):
            assert out[name].shape == want[name].shape
            np.testing.assert_array_equal(np.asarray(out[name]), np.asarray(want[name]))
        assert backend.is_key(out["k"][0])
        np.testing.assert_array_equal(
            np.asarray(backend.normal(out["k"][1], (2,))), np.asarray(backend.normal(keys[1], (2,)))
        )


def test_lapack_in_one_branch_leaves_the_loops_matrices_row_major(jax_backend: Backend) -> None:
    """A Cholesky and a triangular solve, as a dense mass matrix's factors take: without
    flattening, XLA made this conditional's results column-major (LAPACK's layout), and
    every pass transposed the loop's matrices in and out."""
    import jax

    backend = jax_backend
    xp = backend.xp
    n = 8

    eye = xp.eye(n, dtype=xp.float32)

    def factor(a: Any) -> Any:
        return backend.solve_triangular(backend.cholesky(a @ a.T + eye), eye, lower=True)

    def step(i: Any, state: tuple[Any, Any]) -> tuple[Any, Any]:
        m, v = state
        m = backend.cond(i % 5 == 4, factor, lambda a: a, m)
        return m, m @ v / xp.linalg.norm(m @ v)

    def run(m: Any, v: Any) -> tuple[Any, Any]:
        return backend.fori_loop(0, 20, step, (m, v))

    start = eye, xp.ones(n, dtype=xp.float32)
    text = jax.jit(run).lower(*start).compile().as_text()
    conditionals = [line for line in text.splitlines() if " conditional(" in line]
    assert conditionals
    results = [line.split(" conditional(")[0] for line in conditionals]
    assert all(re.search(r"f32\[\d+,\d+\]\{0,1\}", r) is None for r in results), results
    m, _ = jax.jit(run)(*start)
    eager_m = start[0]
    for i in range(20):
        eager_m, _ = step(i, (eager_m, start[1]))
    np.testing.assert_allclose(np.asarray(m), np.asarray(eager_m), rtol=1e-5)
