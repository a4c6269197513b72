"""How the chains of one MCMC run are laid out, and how their program is driven.

Tutorial: "Causal inference: do", where the email model is fitted (``tutorial/s08_causal_do.py``).

Layout (:class:`Plan`). The chain program runs a *block* of chains (``vmap`` inside the
loop). ``"sequential"`` gives it one chain at a time (without ``vmap``: batched, the kernel's
branches would all be evaluated), ``"vectorized"`` all of them, and ``"parallel"`` splits
the chains over devices (one chain per device runs unbatched, as in "sequential"; several
are vectorized when there are fewer devices than chains). On one device whose cores each
run a program (a CPU: ``concurrent_programs`` of the backend), ``"parallel"`` runs the
one-chain programs of "sequential" side by side instead, with the same draws and no devices
to set up.

Driving (:func:`run_blocks`). Each block's program is called chunk by chunk
(:class:`~minippl.infer.progress.ChunkPlan`), and the progress bars are fed between chunks;
blocks run one after another, or side by side as jobs of the backend
(``run_side_by_side``: host threads on JAX, forked processes on NumPy).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, NamedTuple

import numpy as np

from minippl.backend import current
from minippl.distributions.util import shape_of
from minippl.infer.chain_loop import RunStats
from minippl.infer.progress import ChunkPlan, ProgressHub

__all__ = ["Collected", "Plan", "Schedule", "fields_to_collect", "plan_chains", "run_blocks"]

CHAIN_METHODS = ("parallel", "vectorized", "sequential")


class Plan(NamedTuple):
    """How the chains of one run are laid out."""

    method: str  # "single", "sequential", "vectorized" or "parallel"
    num_devices: int
    workers: int = 1  # "sequential" chains run at once, each as a job of the backend

    def blocks(self, num_chains: int) -> list[tuple[int, int]]:
        """The blocks of chains the program is given, as ``[lo, hi)`` ranges."""
        if self.method == "sequential":
            return [(c, c + 1) for c in range(num_chains)]
        return [(0, num_chains)]

    def one_chain_blocks(self, num_chains: int) -> bool:
        """Whether the program is given one chain at a time (and so runs without ``vmap``):
        one after another, side by side, or one per device."""
        if self.method == "parallel":
            return self.num_devices == num_chains
        return self.method in ("single", "sequential")

    def rounds(self, num_chains: int) -> int:
        """How many times the program runs one after another: blocks of "sequential" go
        ``workers`` at a time."""
        return -(-num_chains // self.workers) if self.method == "sequential" else 1


def plan_chains(num_chains: int, chain_method: str) -> Plan:
    """The layout for ``num_chains`` chains; says so when "parallel" cannot run them at once."""
    if num_chains == 1:
        return Plan("single", 1)
    if chain_method != "parallel":
        return Plan(chain_method, 1)
    backend = current()
    devices = backend.device_count()
    if devices >= num_chains:
        return Plan("parallel", num_chains)
    usable = max(d for d in range(1, devices + 1) if num_chains % d == 0)
    if usable > 1:
        warnings.warn(
            f"chain_method='parallel' needs {num_chains} devices but {devices} are "
            f"available; the chains will run on {usable} devices, "
            f"{num_chains // usable} vectorized chains per device.",
            UserWarning,
            stacklevel=3,
        )
        return Plan("parallel", usable)
    workers = min(backend.concurrent_programs(), num_chains)
    if workers > 1:
        # One device whose cores each run a program (a CPU): the one-chain programs of
        # "sequential" run side by side, with the same draws. Where JAX split the CPU into
        # devices, sharding is kept: threads on one of several CPU devices run slower than
        # one chain per device.
        return Plan("sequential", 1, workers)
    warnings.warn(
        f"chain_method='parallel' needs {num_chains} devices, or one device that runs "
        f"several chains at once, but {devices} {'is' if devices == 1 else 'are'} "
        f"available and the {backend.name} backend runs one chain at a time there (a GPU "
        "or TPU, one usable core, or a system that cannot fork the NumPy backend's "
        f"processes); the {num_chains} chains will run one after another (as "
        f"'sequential'). With JAX on a CPU, call minippl.set_host_device_count({num_chains}) "
        "before any other JAX work to run them in parallel.",
        UserWarning,
        stacklevel=3,
    )
    return Plan("sequential", 1)


class Collected(NamedTuple):
    """What a chain program is built for and keeps: the model's data, the state fields it
    collects (samples first), the sample sites it leaves out, and the draws per chain."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    fields: tuple[str, ...]
    removed: tuple[str, ...]
    size: int


def fields_to_collect(
    sample_field: str, default_fields: Sequence[str], extra_fields: Sequence[str], state: Any
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The state fields to collect (samples first) and the sample sites to leave out
    (``"~z.x"`` in ``extra_fields``); ``"diverging"`` when the state has it."""
    if not isinstance(extra_fields, tuple | list):
        raise TypeError(f"extra_fields must be a tuple or list, got {type(extra_fields)}")
    fields: dict[str, None] = {}
    removed: dict[str, None] = {}
    prefix = f"~{sample_field}."
    for name in (sample_field, *default_fields, "diverging", *extra_fields):
        if name.startswith(prefix):
            removed[name[len(prefix) :]] = None
        elif name == "diverging" and getattr(state, "diverging", None) is None:
            continue
        else:
            fields[name] = None
    return tuple(fields), tuple(removed)


class Schedule(NamedTuple):
    """How one call of ``warmup()`` or ``run()`` drives the program: ``num_iterations``
    iterations, draws kept from iteration ``first``, ``chunk`` iterations per call, and
    whether the progress bars are fed (``show``)."""

    num_iterations: int
    first: int
    chunk: ChunkPlan
    show: bool


def run_blocks(
    program: Callable[..., Any],
    starts: list[tuple[Any, Any]],
    dyn: list[Any],
    schedule: Schedule,
    workers: int,
    hub: ProgressHub,
) -> list[Any]:
    """Run ``program`` over every block ``(ids, carry)`` of ``starts`` to the end of the
    schedule, chunk by chunk, and return each block's final carry. With several
    ``workers``, blocks run side by side as the backend runs host jobs at once
    (``Backend.run_side_by_side``), each with its own copy of the chunk plan."""
    backend = current()
    first = schedule.first

    def finish(ids: Any, carry: Any, plan: ChunkPlan, report: Callable[[Any], None]) -> Any:
        for done, stop in plan.chunks():
            carry = program(*carry, dyn, done, stop, first, ids)
            if schedule.show:
                report(progress_rows(carry[0], carry[2], ids, stop))
        return backend.block_until_ready(carry)

    workers = min(workers, len(starts))
    if workers == 1:
        return [finish(ids, carry, schedule.chunk, hub.report) for ids, carry in starts]
    # The first call compiles or loads the program: it is made alone (with no iterations),
    # so that the jobs find it ready instead of each building it.
    ids, carry = starts[0]
    starts[0] = (ids, program(*carry, dyn, 0, 0, first, ids))
    jobs = [partial(finish, ids, carry, copy.copy(schedule.chunk)) for ids, carry in starts]
    return backend.run_side_by_side(jobs, workers, hub.report)


def progress_rows(states: Any, stats: RunStats, ids: Any, done: int) -> Any:
    """One row per chain for the progress bar: ``[chain, iterations done, state.i, step
    size, mean acceptance probability, divergences so far]`` (host numbers)."""
    backend = current()
    n = shape_of(ids)[0]
    adapt = getattr(states, "adapt_state", None)
    step_size = getattr(adapt, "step_size", None)
    accept = getattr(states, "mean_accept_prob", None)

    def host(x: Any) -> Any:
        return np.broadcast_to(np.asarray(backend.to_numpy(x), dtype=float), (n,))

    columns = [
        host(ids),
        host(done - 1),
        host(getattr(states, "i", done)),
        host(np.nan if step_size is None else step_size),
        host(np.nan if accept is None else accept),
        host(stats.divergences + stats.warmup_divergences),
    ]
    return np.stack(columns, axis=-1)
