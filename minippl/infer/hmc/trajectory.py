"""NUTS trajectories built by iterative doubling, and HMC's fixed-length trajectory.

Tutorial: "Reparameterization: reparam", where NUTS meets the funnel (``tutorial/s09_reparam.py``).

A NUTS transition grows a binary tree of leapfrog states: at depth ``d`` it picks a direction
at random and integrates a new subtree of ``2**d`` leaves from that edge, until the whole
trajectory makes a U-turn, a leaf diverges, or the depth reaches ``max_tree_depth`` [1].

The textbook algorithm recurses; here the subtree is built leaf by leaf in a ``while_loop``
so that it compiles. The U-turn checks that recursion would make when it closes a
sub-subtree are made when that sub-subtree's last leaf is added: leaf ``n`` closes one
complete sub-subtree of size ``2, 4, ..., 2**k`` for each of the ``k`` trailing one bits of
``n``. Each open sub-subtree keeps a *checkpoint* (the momentum of its first leaf and the
running momentum sum there), stored at even leaves in one ``(max_tree_depth, rows, D)`` array
whose slot is the number of one bits of ``n >> 1`` (NumPyro's scheme). Slots ``idx_min..idx_max``
are the sub-subtrees that leaf ``n`` closes, largest first, and slot ``i + 1`` is the start
of slot ``i``'s right half.

Stan's extra checks (stan-dev/stan#2800) test, whenever two halves ``A`` and ``B`` merge,
also ``A`` plus the first leaf of ``B`` and the last leaf of ``A`` plus ``B``. They catch
trajectories whose halves each look fine and whose ends happen to line up, while the
middle has turned back (a near-periodic orbit). NumPyro and BlackJAX's iterative builders
leave them out; here they use one more checkpoint, the momentum of the leaf *before* each
checkpointed leaf, which is the last leaf of the left half. ``robust_u_turn=False`` gives
NumPyro's trajectories exactly.

References
----------
1. M. D. Hoffman, A. Gelman, "The No-U-Turn Sampler", JMLR 15 (2014), algorithms 3 and 6.
2. M. Betancourt, "A Conceptual Introduction to Hamiltonian Monte Carlo" (2017), appendix A
   (multinomial sampling A.3, the generalised criterion A.4.2).
3. Stan, ``src/stan/mcmc/hmc/nuts/base_nuts.hpp`` and stan-dev/stan#2800 (the extra checks).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from backends import Array, Key
from minippl.backend import current
from minippl.infer.hmc.constants import MAX_DELTA_ENERGY
from minippl.infer.hmc.integrator import IntegratorState, Step, int_array
from minippl.infer.hmc.metrics import Metric
from minippl.infer.hmc.proposal import (
    Proposal,
    biased_transition_prob,
    choose,
    select,
    uniform_transition_prob,
)

__all__ = ["Tree", "build_tree", "checkpoint_range", "fixed_trajectory"]


class Tree(NamedTuple):
    """A trajectory (or a piece of one) and what is known about it."""

    left: IntegratorState
    right: IntegratorState
    left_v: Array
    """``M^-1 r`` at the left end (``Metric.turning_velocity``), kept for the U-turn tests."""
    right_v: Array
    proposal: Proposal
    depth: Array
    weight: Array
    """Log of the summed leaf weights ``exp(H0 - H_k)``."""
    r_sum: Array
    turning: Array
    diverging: Array
    sum_accept_probs: Array
    """Sum over the leaves of ``min(1, exp(H0 - H_k))``: the adaptation statistic."""
    num_proposals: Array
    """Number of leaves (leapfrog steps)."""


# The rows of one checkpoint slot, the memory of an open sub-subtree of the subtree being
# built. They are kept in one ``(slots, rows, D)`` array rather than one array per row: each
# leaf then writes one slot with one update, and a loop over leaves (or, under ``vmap``, its
# per-chain select) moves one array instead of five.
_R = 0
"""Momentum of the sub-subtree's first leaf."""
_V = 1
"""Its ``M^-1 r``."""
_R_SUM = 2
"""Running momentum sum of the subtree up to and including that leaf."""
_R_PREV = 3
"""Momentum of the leaf just before it (for Stan's extra checks only)."""
_V_PREV = 4
"""Its ``M^-1 r``."""


class _Dynamics(NamedTuple):
    """What every leaf needs; fixed for one transition."""

    step: Step
    metric: Metric
    step_size: Array
    energy0: Array
    max_delta_energy: float
    robust: bool


def _leaf(dyn: _Dynamics, state: IntegratorState) -> Tree:
    """The tree of one leaf at ``state``, the end of a leapfrog step."""
    xp = current().xp
    # M^-1 r once per leaf: its kinetic energy and every U-turn test it enters reuse it.
    v = dyn.metric.turning_velocity(state.r)
    energy = state.potential_energy + dyn.metric.kinetic_energy_with(state.r, v)
    delta = energy - dyn.energy0
    # A NaN energy (the potential is undefined there) counts as an infinite error.
    delta = xp.where(xp.isnan(delta), xp.inf, delta)
    return _point_tree(
        state,
        v,
        energy,
        weight=-delta,
        diverging=delta > dyn.max_delta_energy,
        sum_accept_probs=xp.minimum(xp.exp(-delta), 1.0),
        num_proposals=int_array(1),
    )


def _point_tree(
    state: IntegratorState,
    v: Array,
    energy: Array,
    *,
    weight: Array,
    diverging: Array,
    sum_accept_probs: Array,
    num_proposals: Array,
) -> Tree:
    """A tree of depth 0 at ``state`` (``v`` its ``M^-1 r``, ``energy`` its Hamiltonian)."""
    return Tree(
        left=state,
        right=state,
        left_v=v,
        right_v=v,
        proposal=Proposal(state.z, state.potential_energy, state.z_grad, energy),
        depth=int_array(0),
        weight=weight,
        r_sum=state.r,
        turning=current().xp.asarray(False),
        diverging=diverging,
        sum_accept_probs=sum_accept_probs,
        num_proposals=num_proposals,
    )


def _edge(tree: Tree, going_right: Array) -> tuple[IntegratorState, Array]:
    """The end of ``tree`` on the side ``going_right``, with its ``M^-1 r``."""
    edge: tuple[IntegratorState, Array] = select(
        going_right, (tree.right, tree.right_v), (tree.left, tree.left_v)
    )
    return edge


def _merge(
    dyn: _Dynamics, old: Tree, new: Tree, going_right: Array, key: Key, *, biased: bool
) -> Tree:
    """Join ``new`` onto ``old`` on the side ``going_right``, choosing the proposal.

    ``biased`` is the top-level merge of two equal halves: the proposal moves with
    probability ``min(1, W_new/W_old)`` and the whole trajectory is tested for a U-turn
    (with Stan's two extra checks when ``dyn.robust``). Otherwise (a leaf joining its
    subtree) the choice is uniform and no test is made here: the caller tests checkpoints.
    """
    xp = current().xp
    # Outer edges of the joined tree (with their M^-1 r).
    left, left_v = select(going_right, (old.left, old.left_v), (new.left, new.left_v))
    right, right_v = select(going_right, (new.right, new.right_v), (old.right, old.right_v))
    r_sum = old.r_sum + new.r_sum
    if biased:
        prob = biased_transition_prob(old.weight, new.weight, new.turning | new.diverging)
        is_turning = dyn.metric.is_turning_with
        turning = new.turning | is_turning(left_v, right_v, left.r, right.r, r_sum)
        if dyn.robust:
            # Stan's checks across the two halves: old + first new leaf, last old leaf + new.
            # The far and near ends of the old tree, the first-built end of the new one; the
            # new tree's far end is the joined tree's outer end on that side.
            far, far_v = select(going_right, (left.r, left_v), (right.r, right_v))
            near, near_v = select(going_right, (old.right.r, old.right_v), (old.left.r, old.left_v))
            first, first_v = select(
                going_right, (new.left.r, new.left_v), (new.right.r, new.right_v)
            )
            outer, outer_v = select(going_right, (right.r, right_v), (left.r, left_v))
            turning = turning | is_turning(far_v, first_v, far, first, old.r_sum + first)
            turning = turning | is_turning(near_v, outer_v, near, outer, new.r_sum + near)
    else:
        prob = uniform_transition_prob(old.weight, new.weight)
        turning = old.turning
    return Tree(
        left=left,
        right=right,
        left_v=left_v,
        right_v=right_v,
        proposal=choose(key, prob, new.proposal, old.proposal),
        depth=old.depth + 1,
        weight=xp.logaddexp(old.weight, new.weight),
        r_sum=r_sum,
        turning=turning,
        diverging=new.diverging,
        sum_accept_probs=old.sum_accept_probs + new.sum_accept_probs,
        num_proposals=old.num_proposals + new.num_proposals,
    )


def checkpoint_range(n: Array) -> tuple[Array, Array]:
    """Slots ``(idx_min, idx_max)`` of the sub-subtrees that leaf ``n`` completes.

    ``idx_max`` is the number of one bits of ``n >> 1`` (the slot of the last even leaf);
    the number of sub-subtrees closed is the number of trailing one bits of ``n``. For an
    even ``n`` the range is empty (``idx_min = idx_max + 1``).
    """
    xp = current().xp
    idx_max = xp.bitwise_count(n >> 1).astype(xp.int32)
    closed = xp.bitwise_count((~n & (n + 1)) - 1).astype(xp.int32)
    return idx_max - closed + 1, idx_max


def _is_iterative_turning(
    dyn: _Dynamics,
    r: Array,
    v: Array,
    r_sum: Array,
    ckpts: Array,
    idx_min: Array,
    idx_max: Array,
) -> Array:
    """Whether any sub-subtree closed by the leaf with momentum ``r`` (``M^-1 r = v``) turns."""
    bk = current()
    xp = bk.xp
    is_turning = dyn.metric.is_turning_with

    def body(carry: tuple[Array, Array]) -> tuple[Array, Array]:
        i, _ = carry
        slot = ckpts[i]
        r_i, v_i, r_sum_i = slot[_R], slot[_V], slot[_R_SUM]
        turning = is_turning(v_i, v, r_i, r, r_sum - r_sum_i + r_i)
        if dyn.robust:
            # Slot i + 1 opens the right half of slot i's sub-subtree; its r_prev is the
            # last leaf of the left half. Sub-subtrees of two leaves (i == idx_max) have no
            # extra checks: both would repeat the main one.
            j = xp.minimum(i + 1, idx_max)
            right_half = ckpts[j]
            r_j, v_j, r_sum_j = right_half[_R], right_half[_V], right_half[_R_SUM]
            r_prev, v_prev = right_half[_R_PREV], right_half[_V_PREV]
            left_plus = r_sum_j - r_sum_i + r_i
            plus_right = r_sum - r_sum_j + r_j + r_prev
            extra = is_turning(v_i, v_j, r_i, r_j, left_plus) | is_turning(
                v_prev, v, r_prev, r, plus_right
            )
            turning = turning | ((i < idx_max) & extra)
        return i - 1, turning

    def keep_going(carry: tuple[Array, Array]) -> Array:
        i, turning = carry
        return (i >= idx_min) & ~turning

    _, turning = bk.while_loop(keep_going, body, (idx_max, xp.asarray(False)))
    return turning


def _build_subtree(dyn: _Dynamics, tree: Tree, going_right: Array, key: Key, ckpts: Array) -> Tree:
    """A new subtree of ``2**tree.depth`` leaves grown from ``tree``'s edge, leaf by leaf.

    It stops early when a closed sub-subtree turns or a leaf diverges; the caller then
    rejects its proposal, as recursion would.
    """
    bk = current()
    xp = bk.xp
    max_leaves = 2**tree.depth

    def keep_going(carry: tuple[Tree, Array, Array, Key]) -> Array:
        sub, turning, _, _ = carry
        return (sub.num_proposals < max_leaves) & ~turning & ~sub.diverging

    def body(carry: tuple[Tree, Array, Array, Key]) -> tuple[Tree, Array, Array, Key]:
        edge, edge_v = _edge(carry[0], going_right)
        state = dyn.step(edge, xp.where(going_right, dyn.step_size, -dyn.step_size))

        def add_leaf(carry: tuple[Tree, Array, Array, Key]) -> tuple[Tree, Array, Array, Key]:
            return _add_leaf(dyn, carry, going_right, edge, edge_v, state)

        # A compiler may run the leaf's bookkeeping as a loop of its own (on JAX, for one
        # chain on a CPU: backends/jax/compiler.py); it computes add_leaf(carry) either way.
        grown: tuple[Tree, Array, Array, Key] = bk.compiler().own_loop(
            add_leaf, carry, carry[0].num_proposals
        )
        return grown

    start = tree._replace(num_proposals=int_array(0))
    init = (start, current().xp.asarray(False), ckpts, key)
    sub: Tree
    sub, turning, _, _ = bk.while_loop(keep_going, body, init)
    return sub._replace(depth=tree.depth, turning=turning)


def _add_leaf(
    dyn: _Dynamics,
    carry: tuple[Tree, Array, Array, Key],
    going_right: Array,
    edge: IntegratorState,
    edge_v: Array,
    state: IntegratorState,
) -> tuple[Tree, Array, Array, Key]:
    """The subtree, U-turn flag, checkpoints and key after the leaf at ``state`` (the
    leapfrog step from ``edge``) joins the subtree."""
    xp = current().xp
    sub, _, ckpts, key = carry
    key, transition_key = current().split(key)
    leaf = _leaf(dyn, state)
    n = sub.num_proposals
    # The first leaf replaces the (old) tree the loop starts from; later ones join. (A
    # select, not a cond: the join is cheap, and a cond would copy both trees.)
    joined = _merge(dyn, sub, leaf, going_right, transition_key, biased=False)
    grown: Tree = select(n == 0, leaf, joined)
    idx_min, idx_max = checkpoint_range(n)
    # An even leaf opens a sub-subtree: it writes slot idx_max; an odd one writes
    # nothing. The write is a select over the slots, not an indexed update: with the
    # chains vmapped, an update at a per-chain index becomes a scatter, and a loop with
    # a scatter inside cannot be compiled by XLA's CPU backend as one small function.
    rows = [leaf.right.r, leaf.right_v, grown.r_sum]
    if dyn.robust:
        rows += [edge.r, edge_v]
    opens = (xp.arange(ckpts.shape[0]) == idx_max) & (n % 2 == 0)
    ckpts = xp.where(opens[:, None, None], xp.stack(rows)[None], ckpts)
    turning = _is_iterative_turning(
        dyn, leaf.right.r, leaf.right_v, grown.r_sum, ckpts, idx_min, idx_max
    )
    return grown, turning, ckpts, key


def _trivial_tree(state: IntegratorState, v0: Array, energy0: Array) -> Tree:
    """The tree a transition starts from: its starting point alone, with no leaf counted
    (the point is the previous transition's proposal, not a new leapfrog step)."""
    xp = current().xp
    return _point_tree(
        state,
        v0,
        energy0,
        weight=xp.zeros((), dtype=energy0.dtype),
        diverging=xp.asarray(False),
        sum_accept_probs=xp.zeros((), dtype=energy0.dtype),
        num_proposals=int_array(0),
    )


def build_tree(
    step: Step,
    metric: Metric,
    state: IntegratorState,
    step_size: Array,
    key: Key,
    *,
    max_tree_depth: Any,
    checkpoint_slots: int,
    max_delta_energy: float = MAX_DELTA_ENERGY,
    robust_u_turn: bool = True,
) -> Tree:
    """One NUTS trajectory from ``state`` (whose momentum is already drawn).

    Parameters
    ----------
    step : the leapfrog step.
    metric : kinetic energy, velocity and U-turn test for this transition.
    state : the starting point, with its potential energy and gradient.
    step_size : the leapfrog step size.
    key : randomness for directions and proposals (NumPyro's splits, in NumPyro's order).
    max_tree_depth : the most doublings for this transition (may be a traced integer).
    checkpoint_slots : a static bound on ``max_tree_depth``: the rows of the checkpoints.
    max_delta_energy : energy error above which a leaf is a divergence.
    robust_u_turn : add Stan's checks across neighbouring subtrees.

    Returns
    -------
    The final :class:`Tree`; its ``proposal`` is the next state.
    """
    bk = current()
    xp = bk.xp
    v0 = metric.turning_velocity(state.r)
    energy0 = state.potential_energy + metric.kinetic_energy_with(state.r, v0)
    dyn = _Dynamics(step, metric, step_size, energy0, max_delta_energy, robust_u_turn)
    # Without the extra checks, no memory of the leaf before each checkpoint is needed.
    rows = _V_PREV + 1 if robust_u_turn else _R_SUM + 1
    ckpts = xp.zeros((checkpoint_slots, rows, state.r.shape[0]), dtype=state.r.dtype)
    tree = _trivial_tree(state, v0, energy0)

    def keep_going(carry: tuple[Tree, Key]) -> Array:
        t, _ = carry
        return (t.depth < max_tree_depth) & ~t.turning & ~t.diverging

    def double(carry: tuple[Tree, Key]) -> tuple[Tree, Key]:
        t, key = carry
        key, direction_key, doubling_key = bk.split(key, 3)
        going_right = bk.bernoulli(direction_key, 0.5, ())
        subtree_key, transition_key = bk.split(doubling_key)
        new = _build_subtree(dyn, t, going_right, subtree_key, ckpts)
        return _merge(dyn, t, new, going_right, transition_key, biased=True), key

    final: Tree = bk.while_loop(keep_going, double, (tree, key))[0]
    return final


def fixed_trajectory(
    step: Step, state: IntegratorState, step_size: Array, num_steps: Any
) -> IntegratorState:
    """``num_steps`` leapfrog steps: the trajectory of plain HMC."""
    return current().fori_loop(  # type: ignore[no-any-return]
        0, num_steps, lambda _, s: step(s, step_size), state
    )
