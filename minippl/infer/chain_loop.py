"""The compiled loop that moves a block of chains forward and collects their draws.

Tutorial: "Causal inference: do", where the email model is fitted (``tutorial/s08_causal_do.py``).

One program covers warmup and sampling: a ``fori_loop`` over ``kernel.sample`` that writes
the collected fields of every kept iteration into preallocated arrays and counts
divergences, tree-depth hits and non-finite states, with no Python per step. The loop
bounds and the first kept iteration are arguments, so ``warmup()`` then ``run()`` share it,
and :class:`~minippl.infer.MCMC` calls it chunk by chunk to update a progress bar.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from minippl.backend import current
from minippl.distributions.util import shape_of
from minippl.infer.program_cache import Merge

__all__ = ["RunStats", "build_chain_loop", "get_field", "max_tree_depth", "run_problems"]


class RunStats(NamedTuple):
    """Per-chain counters kept inside the compiled loop (integers, one set per chain)."""

    transitions: Any
    """Sampling-phase transitions (the denominator of the shares below)."""
    divergences: Any
    """Divergent transitions in the sampling phase."""
    warmup_divergences: Any
    """Divergent transitions during warmup (expected early on; reported separately)."""
    max_depth_hits: Any
    """Sampling-phase transitions whose trajectory reached the maximum tree depth."""
    nonfinite: Any
    """Transitions that ended at a state with a non-finite potential energy or gradient."""


def get_field(state: Any, path: str) -> Any:
    """``state.adapt_state.step_size`` from ``"adapt_state.step_size"``; dict keys allowed."""
    value = state
    for part in path.split("."):
        value = value[part] if isinstance(value, Mapping) else getattr(value, part)
    return value


def kept_sites(z: Any, removed: tuple[str, ...]) -> Any:
    """The postprocessed sample ``z`` without the sites in ``removed``; a sample that is one
    array (a ``potential_fn`` run's, which has no sites) is kept whole, as NumPyro keeps it."""
    if not isinstance(z, Mapping):
        return z
    return {k: v for k, v in z.items() if k not in removed}


def max_tree_depth(kernel: Any) -> tuple[int, int] | None:
    """``(warmup, sampling)`` maximum tree depths of a NUTS-like kernel, else ``None``."""
    depth = getattr(kernel, "max_tree_depth", None)
    if depth is None:
        return None
    if isinstance(depth, tuple | list):
        return int(depth[0]), int(depth[1])
    return int(depth), int(depth)


def run_problems(stats: RunStats, phase: str, depth: tuple[int, int] | None) -> str:
    """What the counters of a run (host arrays) say is wrong, in words for the user, or
    ``""``: divergences and tree-depth hits after warmup (``phase == "run"``), and
    non-finite states in any phase. ``depth`` is the kernel's :func:`max_tree_depth`."""
    problems = []
    transitions = int(stats.transitions.sum())
    if phase == "run" and transitions:
        divergent = int(stats.divergences.sum())
        if divergent:
            problems.append(
                f"{divergent} of {transitions} transitions after warmup were divergent "
                f"({_percent(divergent, transitions)}); per chain "
                f"{stats.divergences.tolist()}. Increase target_accept_prob, or "
                "reparameterize (e.g. non-centred, LocScaleReparam(0))."
            )
        # Each problem is counted and worded on its own (``duplicates`` pairs the blocks).
        saturated = int(stats.max_depth_hits.sum())
        if saturated:
            problems.append(
                f"{_percent(saturated, transitions)} of transitions after warmup "
                f"({saturated}) hit max_tree_depth={depth[1] if depth else '?'}: the "
                "sampler may be inefficient; raise max_tree_depth or reparameterize."
            )
    nonfinite = int(stats.nonfinite.sum())
    if nonfinite:
        problems.append(
            f"{nonfinite} transitions ended at a state with a non-finite potential "
            "energy or gradient; check the model for log densities that are NaN or "
            "infinite inside the support."
        )
    return " ".join(problems)


def _percent(part: int, whole: int) -> str:
    """``part / whole`` as a percentage that never rounds a non-zero count to 0.0%."""
    share = 100 * part / whole
    return f"{share:.1f}%" if share >= 0.1 or share == 0 else f"{share:.2f}%"


def build_chain_loop(
    kernel: Any,
    merge: Merge,
    *,
    num_warmup: int,
    thinning: int,
    sample_field: str,
    postprocess_fn: Callable[..., Any] | None,
    fields: tuple[str, ...],
    removed: tuple[str, ...],
    one_chain: bool,
    on_trace: Callable[[], None],
) -> Callable[..., Any]:
    """The loop over iterations ``[lo, hi)`` of a block of chains (leading axis), as a
    function ``(states, collection, stats, dyn, lo, hi, first, ids) -> (states, collection,
    stats)`` for the backend to compile.

    ``one_chain``: the block is one chain, run without ``vmap`` (under ``vmap`` the kernel's
    branches and while loops become selects that evaluate both sides, even for a batch of
    one); the backend's compiler is told so while the loop is traced, and may then shape a
    kernel's inner loops for one chain (``Compiler.own_loop``). ``on_trace`` is called each
    time the loop is traced.
    """
    backend = current()
    depth = max_tree_depth(kernel)
    lift = _unbatched if one_chain else backend.vmap

    def run_chains(
        states: Any,
        collection: list[Any],
        stats: RunStats,
        dyn: list[Any],
        lo: Any,
        hi: Any,
        first: Any,
        ids: Any,
    ) -> tuple[Any, list[Any], RunStats]:
        args, kwargs = merge(dyn)
        postprocess = postprocess_fn or kernel.postprocess_fn(args, kwargs)

        def collect(s: Any) -> list[Any]:
            return _collect(s, fields, sample_field, postprocess, removed)

        leaves = backend.tree_flatten(collection)[0]
        size = shape_of(leaves[0])[1] if leaves else 0
        lifted = _Lifted(
            sample=lift(lambda s: kernel.sample(s, args, kwargs)),
            collect=lift(collect),
            tally=lift(lambda st, s, w: _count(st, s, w, depth)),
        )
        body = _iteration(lifted, num_warmup, thinning, first, ids, size)
        out: tuple[Any, list[Any], RunStats] = backend.fori_loop(
            lo, hi, body, (states, collection, stats)
        )
        return out

    def chains(*program_args: Any) -> tuple[Any, list[Any], RunStats]:
        on_trace()
        with backend.compiler().chain_program(unbatched=one_chain):
            return run_chains(*program_args)

    return chains


class _Lifted(NamedTuple):
    """The kernel's step, the collection of a state's fields and the counters' update,
    each lifted over a block of chains."""

    sample: Callable[[Any], Any]
    collect: Callable[[Any], list[Any]]
    tally: Callable[[RunStats, Any, Any], RunStats]


def _collect(
    state: Any,
    fields: tuple[str, ...],
    sample_field: str,
    postprocess: Callable[[Any], Any],
    removed: tuple[str, ...],
) -> list[Any]:
    """The collected values of one state: its fields, the samples postprocessed."""
    values = []
    for name in fields:
        if name == sample_field:
            z = postprocess(get_field(state, name))
            values.append(kept_sites(z, removed))
        else:
            values.append(get_field(state, name))
    return values


def _iteration(
    lifted: _Lifted, num_warmup: int, thinning: int, first: Any, ids: Any, size: int
) -> Callable[[Any, tuple[Any, list[Any], RunStats]], Any]:
    """The loop's body: iteration ``i`` moves the chains, counts, and writes the collected
    values to their slot when ``i`` is kept (from ``first``, every ``thinning``-th)."""
    backend = current()
    xp = backend.xp

    def body(i: Any, carry: tuple[Any, list[Any], RunStats]) -> Any:
        s, coll, st = carry
        if hasattr(s, "i"):
            was_warmup = s.i < num_warmup
        else:
            was_warmup = xp.zeros(shape_of(ids), dtype=bool)
        s = lifted.sample(s)
        st = lifted.tally(st, s, was_warmup)
        if size == 0:
            return s, coll, st
        keep = (i >= first) & ((i - first) % thinning == thinning - 1)
        slot = xp.clip((i - first) // thinning, 0, size - 1)
        # Only the row goes through the branch: a branch carrying the whole collection
        # would copy it at every iteration.
        old = backend.tree_map(lambda a: a[:, slot], coll)
        row = backend.cond(keep, lambda so: lifted.collect(so[0]), lambda so: so[1], (s, old))
        coll = backend.tree_map(
            lambda a, r: backend.index_update(a, (slice(None), slot), r), coll, row
        )
        return s, coll, st

    return body


def _count(stats: RunStats, state: Any, was_warmup: Any, depth: tuple[int, int] | None) -> RunStats:
    """Update the per-chain counters with the transition that produced ``state``."""
    backend = current()
    xp = backend.xp
    sampling = xp.asarray(~xp.asarray(was_warmup), dtype=xp.int32)
    diverging = getattr(state, "diverging", None)
    divergent = xp.zeros((), xp.int32) if diverging is None else xp.asarray(diverging, xp.int32)
    hit = xp.zeros((), xp.int32)
    num_steps = getattr(state, "num_steps", None)
    if depth is not None and num_steps is not None:
        # A tree of depth d takes between 2^(d-1) and 2^d - 1 leapfrog steps.
        hit = xp.asarray(num_steps >= 2 ** (depth[1] - 1), xp.int32)
    finite = xp.asarray(True)
    if getattr(state, "potential_energy", None) is not None:
        finite = xp.isfinite(state.potential_energy)
    if getattr(state, "z_grad", None) is not None:
        flat, _ = backend.ravel_pytree(state.z_grad)
        finite = finite & xp.all(xp.isfinite(flat))
    return RunStats(
        transitions=stats.transitions + sampling,
        divergences=stats.divergences + sampling * divergent,
        warmup_divergences=stats.warmup_divergences + (1 - sampling) * divergent,
        max_depth_hits=stats.max_depth_hits + sampling * hit,
        nonfinite=stats.nonfinite + xp.asarray(~finite, xp.int32),
    )


def _unbatched(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` applied to a batch of one: drop the leading axis, call, put the axis back."""
    backend = current()

    def call(*args: Any) -> Any:
        out = fn(*backend.tree_map(lambda x: x[0], args))
        return backend.tree_map(lambda x: x[None], out)

    return call
