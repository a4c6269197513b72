"""The iterative NUTS tree against the slow recursive oracle, draw for draw.

Both builders consume the same random keys in the same order (see ``nuts_reference.py``),
so on the same problem they must build the same tree: the same number of leapfrog steps,
the same turning and diverging flags, the same depth and the same proposal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from nuts_reference import ReferenceNUTS

from backends import Backend
from minippl.infer.hmc.integrator import IntegratorState, velocity_verlet
from minippl.infer.hmc.metrics import euclidean_metric, make_layout
from minippl.infer.hmc.trajectory import build_tree, checkpoint_range

KINDS = ("gauss", "gauss", "funnel", "banana", "nan", "quartic")

# Seeds 0-19 are plain random problems. The others were picked because Stan's extra checks
# change their trajectory: at the top-level merge (1159, 1278) and inside a subtree (3102,
# 3288). The test asserts that the set really exercises both.
SEEDS = [*range(20), 1159, 1278, 3102, 3288]


def make_problem(xp: Any, seed: int) -> dict[str, Any]:
    """A random target, metric, start, momentum, step size and depth limit."""
    rng = np.random.default_rng(seed)
    d = int(rng.integers(1, 5))
    kind = KINDS[seed % len(KINDS)]
    a = rng.normal(size=(d, d))
    precision = xp.asarray(np.linalg.inv(a @ a.T + 0.1 * np.eye(d)))
    potentials: dict[str, Callable[[Any], Any]] = {
        "gauss": lambda x: 0.5 * x @ (precision @ x),
        "funnel": lambda x: (
            0.5 * x[0] ** 2 / 9 + 0.5 * xp.sum(x[1:] ** 2) * xp.exp(-x[0]) + 0.5 * (d - 1) * x[0]
        ),
        "banana": lambda x: 0.5 * x[0] ** 2 / 4 + 0.5 * xp.sum((x[1:] - 0.5 * x[0] ** 2) ** 2),
        # Undefined (NaN) beyond x0 = 1: trajectories that cross it diverge.
        "nan": lambda x: xp.where(x[0] > 1.0, xp.nan, 0.5 * xp.sum(x**2)),
        "quartic": lambda x: 0.25 * xp.sum(x**4) + 0.5 * x @ (precision @ x),
    }
    if rng.integers(2):
        b = rng.normal(size=(d, d))
        inverse_mass_matrix = b @ b.T / d + 0.5 * np.eye(d)
    else:
        inverse_mass_matrix = rng.uniform(0.3, 2.0, size=d)
    z = rng.normal(size=d) * 0.5
    if kind == "nan":
        z[0] = -abs(z[0])
    return {
        "potential": potentials[kind],
        "inverse_mass_matrix": xp.asarray(inverse_mass_matrix),
        "z": xp.asarray(z),
        "r": xp.asarray(rng.normal(size=d)),
        "step_size": float(np.exp(rng.uniform(np.log(0.05), np.log(2.0)))),
        "max_tree_depth": int(rng.integers(3, 9)),
    }


def iterative_tree(bk: Backend, p: dict[str, Any], seed: int, robust: bool) -> dict[str, Any]:
    xp = bk.xp
    inverse = p["inverse_mass_matrix"]
    potential_and_grad = bk.value_and_grad(p["potential"])
    layout = make_layout(p["z"], inverse.ndim == 2)
    metric = euclidean_metric(layout, inverse, xp.eye(2))  # no momentum draws here
    step = velocity_verlet(potential_and_grad, metric.velocity)
    potential_energy, grad = potential_and_grad(p["z"])
    tree = build_tree(
        step,
        metric,
        IntegratorState(p["z"], p["r"], potential_energy, grad),
        xp.asarray(p["step_size"]),
        bk.key(seed),
        max_tree_depth=p["max_tree_depth"],
        checkpoint_slots=p["max_tree_depth"],
        robust_u_turn=robust,
    )
    return {
        "z": bk.to_numpy(tree.proposal.z),
        "num_steps": int(tree.num_proposals),
        "turning": bool(tree.turning),
        "diverging": bool(tree.diverging),
        "depth": int(tree.depth),
        "accept_prob": float(tree.sum_accept_probs / tree.num_proposals),
    }


def test_iterative_tree_matches_recursive_reference() -> None:
    import minippl
    from minippl import backend as selection

    previous = selection.current().name
    bk = minippl.set_backend("numpy")
    try:
        fired = {"subtree": 0, "top": 0}
        seen = {"turning": 0, "diverging": 0, "max_depth": 0}
        for seed in SEEDS:
            p = make_problem(bk.xp, seed)
            for robust in (False, True):
                got = iterative_tree(bk, p, seed, robust)
                oracle = ReferenceNUTS(
                    bk, bk.value_and_grad(p["potential"]), p["inverse_mass_matrix"], robust
                )
                want = oracle.transition(
                    p["z"], p["r"], p["step_size"], bk.key(seed), p["max_tree_depth"]
                )
                context = f"seed={seed} robust={robust}"
                for field in ("num_steps", "turning", "diverging", "depth"):
                    assert got[field] == want[field], f"{field}: {context}"
                np.testing.assert_allclose(got["z"], want["z"], rtol=1e-9, err_msg=context)
                assert got["accept_prob"] == pytest.approx(want["accept_prob"], rel=1e-9)
                if robust:
                    for where in fired:
                        fired[where] += oracle.extra_checks_fired[where]
                    seen["turning"] += got["turning"]
                    seen["diverging"] += got["diverging"]
                    seen["max_depth"] += not (got["turning"] or got["diverging"])
        # The problem set covers every way a trajectory ends, and both places where
        # Stan's extra checks act.
        assert all(count > 0 for count in seen.values()), seen
        assert all(count > 0 for count in fired.values()), fired
    finally:
        minippl.set_backend(previous)


def test_iterative_tree_matches_reference_compiled_on_jax(jax_backend: Backend) -> None:
    # One compiled builder for a family of 3-d targets (a Gaussian plus a quartic term,
    # undefined beyond x0 = b), compared with the oracle run eagerly, in float32.
    bk = jax_backend
    xp = bk.xp

    def potential(x: Any, params: Any) -> Any:
        precision, quartic, bound = params
        u = 0.5 * x @ (precision @ x) + quartic * xp.sum(x**4)
        return xp.where(x[0] > bound, xp.nan, u)

    value_and_grad = bk.jit(bk.value_and_grad(potential))

    def tree_of(z: Any, r: Any, inverse: Any, eps: Any, key: Any, depth: Any, params: Any) -> Any:
        def potential_and_grad(x: Any) -> Any:
            return value_and_grad(x, params)

        metric = euclidean_metric(make_layout(z, True), inverse, inverse)
        step = velocity_verlet(potential_and_grad, metric.velocity)
        start = IntegratorState(z, r, *potential_and_grad(z))
        t = build_tree(step, metric, start, eps, key, max_tree_depth=depth, checkpoint_slots=8)
        return t.proposal.z, t.num_proposals, t.turning, t.diverging, t.depth

    compiled = bk.jit(tree_of)
    for seed in range(8):
        rng = np.random.default_rng(100 + seed)
        a = rng.normal(size=(3, 3))
        b = rng.normal(size=(3, 3))
        params = (
            xp.asarray(np.linalg.inv(a @ a.T + 0.2 * np.eye(3)), dtype=xp.float32),
            xp.asarray(rng.uniform(0.0, 0.3), dtype=xp.float32),
            xp.asarray(1.0 if seed % 3 == 0 else np.inf, dtype=xp.float32),
        )
        inverse = xp.asarray(b @ b.T / 3 + 0.5 * np.eye(3), dtype=xp.float32)
        z = xp.asarray(-np.abs(rng.normal(size=3)) * 0.5, dtype=xp.float32)
        r = xp.asarray(rng.normal(size=3), dtype=xp.float32)
        eps = xp.asarray(np.exp(rng.uniform(np.log(0.05), np.log(1.5))), dtype=xp.float32)
        depth = int(rng.integers(3, 9))
        key = bk.key(seed)
        z_new, num_steps, turning, diverging, tree_depth = compiled(
            z, r, inverse, eps, key, xp.asarray(depth), params
        )
        oracle = ReferenceNUTS(bk, lambda x, p=params: value_and_grad(x, p), inverse, True)
        want = oracle.transition(z, r, eps, key, depth)
        context = f"seed={seed}"
        assert int(num_steps) == want["num_steps"], context
        assert bool(turning) == want["turning"], context
        assert bool(diverging) == want["diverging"], context
        assert int(tree_depth) == want["depth"], context
        np.testing.assert_allclose(z_new, want["z"], rtol=1e-4, atol=1e-5, err_msg=context)


@pytest.mark.parametrize(("seed", "plain", "robust"), [(1159, 25, 15), (3102, 39, 15)])
def test_extra_checks_stop_a_trajectory_the_plain_criterion_continues(
    seed: int, plain: int, robust: int
) -> None:
    # 1159: a 2-d Gaussian whose doubled trajectory passes NumPyro's test but whose old half
    # plus the first new leaf has turned; 3102: a 4-d Gaussian where the same happens inside
    # a subtree, which is then rejected.
    import minippl
    from minippl import backend as selection

    previous = selection.current().name
    bk = minippl.set_backend("numpy")
    try:
        p = make_problem(bk.xp, seed)
        assert iterative_tree(bk, p, seed, False)["num_steps"] == plain
        assert iterative_tree(bk, p, seed, True)["num_steps"] == robust
        oracle = ReferenceNUTS(
            bk, bk.value_and_grad(p["potential"]), p["inverse_mass_matrix"], True
        )
        out = oracle.transition(p["z"], p["r"], p["step_size"], bk.key(seed), p["max_tree_depth"])
        assert out["num_steps"] == robust
        assert sum(oracle.extra_checks_fired.values()) == 1
    finally:
        minippl.set_backend(previous)


@pytest.mark.parametrize(
    ("leaf", "expected"),
    [
        (0, (1, 0)),  # even leaves close nothing
        (1, (0, 0)),  # [0, 1]
        (2, (2, 1)),
        (3, (0, 1)),  # [2, 3] and [0, 3]
        (5, (1, 1)),  # [4, 5]
        (7, (0, 2)),  # [6, 7], [4, 7], [0, 7]
        (11, (1, 2)),  # [10, 11], [8, 11]
        (13, (2, 2)),  # [12, 13]
        (15, (0, 3)),
    ],
)
def test_checkpoint_range(backend: Backend, leaf: int, expected: tuple[int, int]) -> None:
    xp = backend.xp
    idx_min, idx_max = checkpoint_range(xp.asarray(leaf, dtype=xp.int32))
    assert (int(idx_min), int(idx_max)) == expected
