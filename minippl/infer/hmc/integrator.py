"""The velocity Verlet (leapfrog) integrator, on flat position and momentum vectors.

Tutorial: "Reparameterization: reparam", where NUTS meets the funnel (``tutorial/s09_reparam.py``).

The samplers work on one flat vector ``z`` (the raveled pytree of latent values), so the
integrator, the metric and the tree never have to walk a pytree; the kernel ravels on entry
and unravels on exit.

References
----------
1. R. M. Neal, "MCMC using Hamiltonian dynamics", Handbook of MCMC (2011), section 5.2.3.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from backends import Array
from minippl.backend import current

__all__ = ["IntegratorState", "Step", "int_array", "velocity_verlet"]


class IntegratorState(NamedTuple):
    """A point in phase space, with the potential and its gradient cached at ``z``."""

    z: Array
    r: Array
    potential_energy: Array
    z_grad: Array


Step = Callable[[IntegratorState, Array], IntegratorState]
"""``step(state, step_size) -> state``; a negative step size integrates backwards in time."""


def int_array(x: Any) -> Array:
    """``x`` as an array of the backend's default integer type: the samplers' counters (steps,
    tree depths, iterations) carried through loops, whose types must not change by pass."""
    xp = current().xp
    return xp.asarray(x, dtype=xp.result_type(int))


def velocity_verlet(
    potential_and_grad: Callable[[Array], tuple[Array, Array]],
    velocity: Callable[[Array], Array],
) -> Step:
    """One leapfrog step of ``dz/dt = M^-1 r``, ``dr/dt = -grad U(z)``.

    Half a momentum kick, a full drift, half a kick: second order, symplectic and
    time-reversible [1], which is what makes the Metropolis correction valid. The gradient
    at the new point is reused by the next step, so each step costs one gradient.

    Parameters
    ----------
    potential_and_grad : ``z -> (U(z), grad U(z))``.
    velocity : ``r -> dK/dr``, which is ``M^-1 r`` for the Euclidean kinetic energy.
    """

    def step(state: IntegratorState, step_size: Array) -> IntegratorState:
        r_half = state.r - 0.5 * step_size * state.z_grad
        z = state.z + step_size * velocity(r_half)
        potential_energy, z_grad = potential_and_grad(z)
        r = r_half - 0.5 * step_size * z_grad
        return IntegratorState(z, r, potential_energy, z_grad)

    return step
