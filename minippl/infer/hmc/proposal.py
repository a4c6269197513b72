"""Multinomial choice of the proposal along a trajectory: uniform and biased progressive.

Tutorial: "Reparameterization: reparam", where NUTS meets the funnel (``tutorial/s09_reparam.py``).

Each leaf ``k`` of a trajectory has weight ``w_k = exp(H0 - H_k)``. Sampling the proposal
with probability proportional to ``w_k`` is done *progressively*: while the trajectory grows,
one candidate is kept and replaced by a new piece's candidate with some probability, so no
leaf has to be stored [1, appendix A.3.1].

* Uniform progressive (inside a subtree): take the new piece with probability
  ``W_new / (W_old + W_new)``. This is exact multinomial sampling over the whole piece.
* Biased progressive (between the old tree and a new subtree of equal size): take the new
  subtree with probability ``min(1, W_new / W_old)``. This favours the later, longer-distance
  states while keeping the chain reversible [1, appendix A.3.2], and a new subtree that
  turned or diverged is never taken (its states are outside the valid trajectory).

References
----------
1. M. Betancourt, "A Conceptual Introduction to Hamiltonian Monte Carlo" (2017), appendix A.3.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from backends import Array, Key
from minippl.backend import current

__all__ = ["Proposal", "biased_transition_prob", "choose", "select", "uniform_transition_prob"]


class Proposal(NamedTuple):
    """The candidate next state, with what the kernel reports about it."""

    z: Array
    potential_energy: Array
    z_grad: Array
    energy: Array


def uniform_transition_prob(log_weight_old: Array, log_weight_new: Array) -> Array:
    """``W_new / (W_old + W_new)``, computed from log weights without overflow."""
    return current().special.expit(log_weight_new - log_weight_old)


def biased_transition_prob(log_weight_old: Array, log_weight_new: Array, reject: Array) -> Array:
    """``min(1, W_new / W_old)``, or 0 where ``reject`` (the new subtree turned or diverged)."""
    xp = current().xp
    prob = xp.minimum(xp.exp(log_weight_new - log_weight_old), 1.0)
    return xp.where(reject, 0.0, prob)


def select(pred: Array, a: Any, b: Any) -> Any:
    """``a`` where ``pred`` else ``b``, leaf by leaf (``Backend.select``).

    When both sides are already computed this is cheaper than a ``cond``: a compiled
    conditional copies its operands into its result, and under ``vmap`` it becomes this
    select anyway.
    """
    return current().select(pred, a, b)


def choose(key: Key, prob: Array, new: Proposal, old: Proposal) -> Proposal:
    """``new`` with probability ``prob``, else ``old`` (one Bernoulli draw from ``key``)."""
    result: Proposal = select(current().bernoulli(key, prob, ()), new, old)
    return result
