"""The backends' ``cond``, ``apply_if`` and ``select``: what goes in comes out, matrices
included, on both backends; and on JAX, LAPACK calls inside them leave the loop's matrices
in its layout."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

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


def test_cond_branches_must_agree_on_matrix_shapes(jax_backend: Backend) -> None:
    """Matrices cross the branches flattened on JAX: a (3, 2) against a (2, 3) result must
    still be the error ``lax.cond`` gives for branches that disagree."""
    import jax

    m = np.ones((2, 3), dtype=np.float32)
    with pytest.raises(TypeError, match="different structures or matrix shapes"):
        jax.jit(lambda p, a: jax_backend.cond(p, lambda x: x.T, lambda x: x, a))(True, m)


def test_apply_if_updates_only_where_its_predicate_holds(backend: Backend) -> None:
    xp = backend.xp
    state = {"m": xp.asarray(np.arange(4.0).reshape(2, 2)), "n": xp.asarray(3)}

    def update(s: dict[str, Any]) -> dict[str, Any]:
        return {"m": s["m"] @ s["m"], "n": s["n"] + 1}

    for pred, want in ((True, update(state)), (False, state)):
        out = backend.apply_if(xp.asarray(pred), update, state)
        for name in ("m", "n"):
            np.testing.assert_array_equal(np.asarray(out[name]), np.asarray(want[name]))
    # Chains side by side, each with its own predicate.
    preds = xp.asarray([True, False, True])
    stacked = {"m": xp.stack([state["m"]] * 3), "n": xp.asarray([3, 3, 3])}
    out = backend.vmap(lambda p, s: backend.apply_if(p, update, s))(preds, stacked)
    np.testing.assert_array_equal(np.asarray(out["n"]), [4, 3, 4])
    np.testing.assert_array_equal(np.asarray(out["m"][1]), np.asarray(state["m"]))
    np.testing.assert_array_equal(np.asarray(out["m"][2]), np.asarray(update(state)["m"]))


def test_select_keeps_one_tree_or_picks_leaf_by_leaf(backend: Backend) -> None:
    xp = backend.xp
    a = {"v": xp.asarray([1.0, 2.0]), "n": xp.asarray(3), "flag": xp.asarray(True)}
    b = {"v": xp.asarray([5.0, 6.0]), "n": xp.asarray(7), "flag": xp.asarray(False)}
    for pred, want in ((True, a), (False, b)):
        for p in (pred, xp.asarray(pred), xp.asarray(pred) & xp.asarray(True)):
            out = backend.select(p, a, b)
            assert out.keys() == want.keys()
            for name in want:
                assert np.shape(out[name]) == np.shape(want[name])
                np.testing.assert_array_equal(np.asarray(out[name]), np.asarray(want[name]))
    # One predicate per entry: a where on every leaf.
    out = backend.select(xp.asarray([True, False]), a["v"], b["v"])
    np.testing.assert_array_equal(np.asarray(out), [1.0, 6.0])
    # Under jit and vmap (a traced predicate), each chain gets its own side.
    picked = backend.vmap(lambda p: backend.select(p, a, b))(xp.asarray([False, True]))
    np.testing.assert_array_equal(np.asarray(picked["n"]), [7, 3])
    jitted = backend.jit(lambda p: backend.select(p, a, b))(xp.asarray(False))
    np.testing.assert_array_equal(np.asarray(jitted["v"]), [5.0, 6.0])


@pytest.mark.parametrize("how", ["cond", "apply_if"])
def test_lapack_in_a_branch_leaves_the_loops_matrices_row_major(
    jax_backend: Backend, how: str
) -> None:
    """A Cholesky and a triangular solve, as a dense mass matrix's factors take: without
    flattening, XLA made the conditional's (or the inner loop's) results column-major
    (LAPACK's layout), and every pass transposed the loop's matrices in and out."""
    import jax

    backend = jax_backend
    xp = backend.xp
    n = 8
    eye = xp.eye(n, dtype=xp.float32)

    def factor(a: Any) -> Any:
        return backend.solve_triangular(backend.cholesky(a @ a.T + eye), eye, lower=True)

    def step(i: Any, state: tuple[Any, Any]) -> tuple[Any, Any]:
        m, v = state
        if how == "cond":
            m = backend.cond(i % 5 == 4, factor, lambda a: a, m)
        else:
            m = backend.apply_if(i % 5 == 4, factor, m)
        return m, m @ v / xp.linalg.norm(m @ v)

    def run(m: Any, v: Any) -> tuple[Any, Any]:
        return backend.fori_loop(0, 20, step, (m, v))

    start = eye, xp.ones(n, dtype=xp.float32)
    text = jax.jit(run).lower(*start).compile().as_text()
    op = " conditional(" if how == "cond" else " while("
    inner = [line.split(op)[0] for line in text.splitlines() if op in line]
    assert inner
    assert all(re.search(r"f32\[\d+,\d+\]\{0,1\}", r) is None for r in inner), inner
    m, _ = jax.jit(run)(*start)
    eager_m = start[0]
    for i in range(20):
        eager_m, _ = step(i, (eager_m, start[1]))
    np.testing.assert_allclose(np.asarray(m), np.asarray(eager_m), rtol=1e-5)
