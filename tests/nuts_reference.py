"""A slow, recursive NUTS: the oracle that the iterative tree builder is tested against.

It is written the way the algorithm is usually explained (Hoffman & Gelman 2014, algorithm 6
with multinomial sampling; Stan's ``base_nuts.hpp`` for the checks across subtrees): a
subtree of depth ``d`` is two subtrees of depth ``d - 1``, every U-turn test sums the
momenta of an explicit list of leaves, and a proposal is picked from an explicit list of
leaf weights. Nothing is shared with ``minippl.infer.hmc.trajectory`` except the potential.

To be compared draw for draw, it consumes random keys in the order the iterative builder
does (NumPyro's order): per doubling ``key, k_dir, k_dbl = split(key, 3)``, a direction from
``bernoulli(k_dir, 0.5)``, ``k_sub, k_top = split(k_dbl)``; the ``k``-th leaf of a subtree
takes the second half of the ``k``-th split of ``k_sub``, and uses it (for ``k >= 1``) to
decide whether the running candidate moves to that leaf; ``k_top`` decides whether the
trajectory's proposal moves into the new subtree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from backends import Backend


@dataclass
class Leaf:
    z: Any
    r: Any
    potential_energy: Any
    z_grad: Any
    energy: float
    log_weight: float
    accept_stat: float
    diverging: bool


@dataclass
class Subtree:
    leaves: list[Leaf]  # in the order they were built (outwards from the trajectory)
    turning: bool
    diverging: bool


def _logsumexp(values: list[float]) -> float:
    a = np.asarray(values, dtype=np.float64)
    top = np.max(a)
    if not np.isfinite(top):
        return float(top)
    return float(top + np.log(np.sum(np.exp(a - top))))


class ReferenceNUTS:
    """One NUTS transition, recursively.

    Parameters
    ----------
    backend : draws keys and Bernoulli variables exactly as the iterative builder does.
    potential_and_grad : flat ``z -> (U, grad U)``.
    inverse_mass_matrix : a vector (diagonal) or a matrix (dense).
    robust : add Stan's checks across neighbouring subtrees.
    """

    def __init__(
        self,
        backend: Backend,
        potential_and_grad: Callable[[Any], tuple[Any, Any]],
        inverse_mass_matrix: Any,
        robust: bool,
        max_delta_energy: float = 1000.0,
    ) -> None:
        self.bk = backend
        self.xp = backend.xp
        self.potential_and_grad = potential_and_grad
        self.inv = inverse_mass_matrix
        self.robust = robust
        self.max_delta_energy = max_delta_energy
        self.extra_checks_fired = {"subtree": 0, "top": 0}
        """How often Stan's extra checks stopped a trajectory the plain criterion let grow."""

    # -- physics ------------------------------------------------------------------------
    def velocity(self, r: Any) -> Any:
        return self.xp.matmul(self.inv, r) if self.inv.ndim == 2 else self.inv * r

    def kinetic(self, r: Any) -> Any:
        return 0.5 * self.xp.dot(self.velocity(r), r)

    def leapfrog(self, leaf: Leaf, eps: Any, energy0: Any) -> Leaf:
        r_half = leaf.r - 0.5 * eps * leaf.z_grad
        z = leaf.z + eps * self.velocity(r_half)
        pe, grad = self.potential_and_grad(z)
        r = r_half - 0.5 * eps * grad
        energy = pe + self.kinetic(r)
        delta = float(energy - energy0)
        if np.isnan(delta):
            delta = np.inf
        return Leaf(
            z,
            r,
            pe,
            grad,
            energy,
            -delta,
            float(min(np.exp(-delta), 1.0)),
            delta > self.max_delta_energy,
        )

    def u_turn(self, leaves: list[Leaf]) -> bool:
        """The generalised criterion on an explicit list of leaves (ends are its first and last)."""
        r_sum = np.sum(np.stack([np.asarray(leaf.r, dtype=np.float64) for leaf in leaves]), axis=0)
        r_a = np.asarray(leaves[0].r, dtype=np.float64)
        r_b = np.asarray(leaves[-1].r, dtype=np.float64)
        rho = r_sum - (r_a + r_b) / 2
        inv = np.asarray(self.inv, dtype=np.float64)
        v_a = inv @ r_a if inv.ndim == 2 else inv * r_a
        v_b = inv @ r_b if inv.ndim == 2 else inv * r_b
        return bool(np.dot(v_a, rho) <= 0 or np.dot(v_b, rho) <= 0)

    # -- recursion ----------------------------------------------------------------------
    def subtree(
        self, edge: Leaf, eps: Any, depth: int, energy0: Any, keys: Iterator[Any]
    ) -> tuple[Subtree, list[Any]]:
        """``2**depth`` leaves grown from ``edge``; also the leaves' transition keys."""
        if depth == 0:
            leaf_key = next(keys)
            leaf = self.leapfrog(edge, eps, energy0)
            return Subtree([leaf], False, leaf.diverging), [leaf_key]
        first, first_keys = self.subtree(edge, eps, depth - 1, energy0, keys)
        if first.turning or first.diverging:
            return first, first_keys
        second, second_keys = self.subtree(first.leaves[-1], eps, depth - 1, energy0, keys)
        leaves = first.leaves + second.leaves
        all_keys = first_keys + second_keys
        if second.turning or second.diverging:
            return Subtree(leaves, second.turning, second.diverging), all_keys
        turning = self.u_turn(leaves)
        if self.robust and depth > 1 and not turning:
            turning = self.u_turn(first.leaves + second.leaves[:1]) or self.u_turn(
                first.leaves[-1:] + second.leaves
            )
            self.extra_checks_fired["subtree"] += turning
        return Subtree(leaves, turning, False), all_keys

    def progressive_choice(self, leaves: list[Leaf], keys: list[Any]) -> Leaf:
        """Multinomial choice over ``leaves``, one Bernoulli per leaf after the first."""
        chosen = leaves[0]
        for k in range(1, len(leaves)):
            prefix = _logsumexp([leaf.log_weight for leaf in leaves[:k]])
            prob = self.bk.special.expit(leaves[k].log_weight - prefix)
            if bool(self.bk.bernoulli(keys[k], prob, ())):
                chosen = leaves[k]
        return chosen

    def transition(
        self, z: Any, r: Any, step_size: float, key: Any, max_tree_depth: int
    ) -> dict[str, Any]:
        """One trajectory from ``(z, r)``; returns what the iterative builder reports."""
        bk = self.bk
        pe, grad = self.potential_and_grad(z)
        energy0 = pe + self.kinetic(r)
        start = Leaf(z, r, pe, grad, energy0, 0.0, 0.0, False)
        trajectory = [start]  # in spatial order, left to right
        proposal = start
        num_steps, accept_sum, depth = 0, 0.0, 0
        turning = diverging = False
        while depth < max_tree_depth and not turning and not diverging:
            key, k_dir, k_dbl = bk.split(key, 3)
            going_right = bool(bk.bernoulli(k_dir, 0.5, ()))
            k_sub, k_top = bk.split(k_dbl)

            def leaf_keys(k: Any) -> Iterator[Any]:
                while True:
                    k, transition_key = bk.split(k)
                    yield transition_key

            edge = trajectory[-1] if going_right else trajectory[0]
            eps = step_size if going_right else -step_size
            sub, keys = self.subtree(edge, eps, depth, energy0, leaf_keys(k_sub))
            num_steps += len(sub.leaves)
            accept_sum += sum(leaf.accept_stat for leaf in sub.leaves)
            candidate = self.progressive_choice(sub.leaves, keys)
            old_weight = _logsumexp([leaf.log_weight for leaf in trajectory])
            new_weight = _logsumexp([leaf.log_weight for leaf in sub.leaves])
            if sub.turning or sub.diverging:
                prob = 0.0
            else:
                prob = min(1.0, float(np.exp(new_weight - old_weight)))
            if bool(bk.bernoulli(k_top, prob, ())):
                proposal = candidate
            old = trajectory
            near = old[-1] if going_right else old[0]
            merged = old + sub.leaves if going_right else sub.leaves[::-1] + old
            turning = sub.turning or self.u_turn(merged)
            if self.robust:
                # The old trajectory plus the first new leaf, and its near end plus the new
                # subtree (lists ordered so that their first and last leaves are the ends).
                old_plus = old + sub.leaves[:1] if going_right else sub.leaves[:1] + old
                extra = self.u_turn(old_plus) or self.u_turn([near] + sub.leaves)
                self.extra_checks_fired["top"] += extra and not turning
                turning = turning or extra
            diverging = sub.diverging
            trajectory = merged
            depth += 1
        return {
            "z": proposal.z,
            "potential_energy": proposal.potential_energy,
            "num_steps": num_steps,
            "accept_prob": accept_sum / max(num_steps, 1),
            "turning": turning,
            "diverging": diverging,
            "depth": depth,
        }
