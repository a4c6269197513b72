"""The programs of one :class:`~minippl.infer.MCMC`: the search for the chains' starting
points, the chain loop, and the driver's small array operations.

Tutorial: "Causal inference: do", where the email model is fitted (``tutorial/s08_causal_do.py``).

Each program is built once per layout of the model's data (:mod:`.program_cache`) and made
by the backend's compiler (``Backend.compiler()``; on NumPy, the function itself). What a
compiler does to make a program start sooner is its own business; the driver only says
what the compiler may use:

- *what decides a program* (``describe``): the kernel's type and :meth:`cache_identity`,
  the driver's settings, and the model through what it computes. With that, a compiler
  may keep the program across processes (JAX: whole executables on disk).
- *what comes next*: a first run hands the chain program to the compiler as soon as the
  shapes of the chains' starting states are known, before they exist
  (``Compiler.ahead``); on JAX it then compiles on one core while this thread compiles and
  runs the search for the starting states on another.
- *a guess at the run* (``Compiler.expect``): what the last run like this one used.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from backends import Computed
from minippl.backend import current
from minippl.checks import check_finite
from minippl.distributions.util import shape_of
from minippl.infer.chain_batch import chain_params, rerun_failed_chains
from minippl.infer.chain_loop import RunStats, build_chain_loop, get_field, kept_sites
from minippl.infer.chains import Collected, Plan, Schedule, run_blocks
from minippl.infer.compile_cache import run_hint
from minippl.infer.program_cache import Merge, ProgramCache, shape_key
from minippl.infer.progress import ProgressHub

__all__ = ["ChainPrograms", "Settings"]


class Settings(NamedTuple):
    """An MCMC's settings that its programs depend on."""

    sampler: Any
    num_warmup: int
    num_samples: int
    num_chains: int
    thinning: int
    postprocess_fn: Callable[..., Any] | None
    sample_field: str
    plan: Plan


def is_numeric(x: Any) -> bool:
    """Whether ``x`` holds numbers (PRNG keys do not)."""
    xp = current().xp
    dtype = xp.asarray(x).dtype if not hasattr(x, "dtype") else x.dtype
    return bool(xp.issubdtype(dtype, xp.number) or xp.issubdtype(dtype, xp.bool_))


class ChainPrograms:
    """The programs of one MCMC, kept between its runs."""

    def __init__(self, settings: Settings, hub: ProgressHub) -> None:
        self.settings = settings
        self.hub = hub
        self.cache = ProgramCache()
        self.helpers: dict[Any, Callable[..., Any]] = {}
        self.timed: dict[Any, bool] = {}  # chain programs run at least once
        self.sample_shapes: dict[Any, Any] = {}
        self.seconds_per_iteration: float | None = None
        self.chain_start: Callable[..., Any] | None = None
        self.num_traces = 0
        """How many times the chain program was traced (compiled)."""

    def count_trace(self) -> None:
        self.num_traces += 1

    def expect(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Callable[[], None]:
        """Tell the compiler what this run is likely to need (a guess made without
        tracing); returns what notes this run's programs when it has succeeded."""
        s = self.settings
        settings = (type(s.sampler).__qualname__, s.num_warmup, s.num_samples, s.num_chains,
                    s.thinning, s.plan)  # fmt: skip
        hint = run_hint(getattr(s.sampler, "model", None), settings, args, kwargs)
        if hint is None:
            return lambda: None
        return current().compiler().expect(hint)

    def _program(
        self,
        name: str,
        fn: Callable[..., Any],
        describe: Callable[[tuple[Any, ...]], tuple[Any, ...]],
        **options: Any,
    ) -> Callable[..., Any]:
        """``fn`` made by the compiler, described where the kernel states its cache identity
        and the chains share one device (the description does not say how arguments lie
        over devices)."""
        s = self.settings
        identified = callable(getattr(s.sampler, "cache_identity", None))
        keyed = describe if identified and s.plan.method != "parallel" else None
        return current().compiler().program(name, fn, describe=keyed, **options)

    def helper(self, name: str, fn: Callable[..., Any], *static: Any) -> Callable[..., Any]:
        """A small array operation of the driver (splitting keys, slicing or joining blocks
        of chains, flattening draws) as one program: run eagerly, each operation would be
        one more small program to dispatch on every run, and to trace and lower in a fresh
        process. ``static`` is what ``fn`` closes over. Tiny and run once a run, it is
        compiled for compile speed (``optimize=False``)."""
        key = (name, static)
        program = self.helpers.get(key)
        if program is None:
            program = (
                current().compiler().program(name, fn, describe=lambda _: (static,), optimize=False)
            )
            self.helpers[key] = program
        return program

    # -- starting points -----------------------------------------------------------------------
    # (``duplicates`` pairs this signature with MCMC._start's, which calls it: the same data.)
    def init_states(
        self,
        keys: Any,
        init_params: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        ahead: Callable[[Any], None] | None = None,
    ) -> Any:
        """``kernel.init`` for every chain, stacked along a leading chain axis.

        A kernel with a ``chain_initializer`` (HMC, NUTS) is set up once, and then every
        chain's search for a starting point runs in one vectorized program, kept for the
        next run like the chain program; a chain with no valid starting point is then run
        again alone, eagerly, so that the error names the sites at fault. Other kernels run
        ``init`` per chain. When the program is to be compiled (and is not sharded), ``ahead``
        is first given the shapes of the states it will return.
        """
        s = self.settings
        backend = current()
        batch = keys if s.num_chains > 1 else backend.tree_map(lambda k: k[None], keys)
        init_params = self._stacked_params(init_params)
        if s.plan.method == "parallel":
            ahead = None  # a sharded program needs its arguments' layout: not compiled ahead
        if not hasattr(s.sampler, "chain_initializer"):
            return self._init_one_by_one(batch, init_params, args, kwargs)
        first_key = self.helper("first_key", lambda b: backend.tree_map(lambda k: k[0], b))
        self.chain_start = s.sampler.chain_initializer(
            first_key(batch), s.num_warmup, chain_params(init_params, 0), args, kwargs
        )

        def call(program: Callable[..., Any], dyn: list[Any], _: Any) -> Any:
            compiler = backend.compiler()
            if ahead is not None and not compiler.ready(program, batch, init_params, dyn):
                ahead(backend.eval_shape(program, batch, init_params, dyn)[0])
            return program(batch, init_params, dyn)

        def build(merge: Merge) -> Any:
            return self._build_init(merge, with_params=init_params is not None)

        states, is_valid = self.cache.run("init", args, kwargs, build, call)
        rerun_failed_chains(
            is_valid,
            lambda c: s.sampler.init(
                batch[c], s.num_warmup, chain_params(init_params, c), args, kwargs
            ),
        )
        return backend.tree_map(lambda x: x[0], states) if s.num_chains == 1 else states

    def _stacked_params(self, init_params: Any) -> Any:
        """``init_params`` with a leading chain axis (added for one chain), checked."""
        if init_params is None:
            return None
        backend = current()
        n = self.settings.num_chains
        if n == 1:
            init_params = backend.tree_map(lambda x: backend.xp.asarray(x)[None], init_params)
        if isinstance(init_params, dict):
            check_finite(init_params, "init_params", "MCMC.run")
        leaves = backend.tree_flatten(init_params)[0]
        first = leaves[0] if leaves else None  # none: the kernel names the sites missing
        if first is not None and shape_of(first)[:1] != (n,):
            raise ValueError(
                f"init_params needs a leading axis of size num_chains={n}, got shape "
                f"{shape_of(first)}"
            )
        return init_params

    def _init_one_by_one(
        self, batch: Any, init_params: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """``init`` of a kernel without a ``chain_initializer``, chain by chain, stacked."""
        s = self.settings
        backend = current()
        xp = backend.xp
        states = [
            s.sampler.init(batch[c], s.num_warmup, chain_params(init_params, c), args, kwargs)
            for c in range(s.num_chains)
        ]
        stacked = backend.tree_map(lambda *xs: xp.stack([xp.asarray(x) for x in xs]), *states)
        return stacked if s.num_chains > 1 else backend.tree_map(lambda x: x[0], stacked)

    def _build_init(self, merge: Merge, with_params: bool) -> Callable[..., Any]:
        """The program ``(keys, params, dyn) -> (states, is_valid)`` of every chain's
        search for a starting point, with this run's set-up (read when it is traced)."""
        backend = current()
        plan = self.settings.plan

        def init_chains(chain_keys: Any, params: Any, dyn: list[Any]) -> Any:
            data_args, data_kwargs = merge(dyn)
            axes = (0, None if params is None else 0, None, None)
            assert self.chain_start is not None
            start = backend.vmap(self.chain_start, in_axes=axes)
            return start(chain_keys, params, data_args, data_kwargs)

        def describe(program_args: tuple[Any, ...]) -> tuple[Any, ...]:
            chain_keys, params, dyn = program_args
            start = self.chain_start
            assert start is not None
            # One chain's search, at the shapes of one chain's key and parameters.
            one_chain = (lambda k, p, d: start(k, p, *merge(d)), (chain_keys, params, dyn))
            return (Computed(*one_chain, batched=(0, 1)),)

        if plan.method == "parallel":
            # Started where the chains will run: moving the states there afterwards costs
            # more than the search itself (a state is dozens of leaves).
            axes = (0, 0 if with_params else None, None)
            return backend.shard_over_devices(init_chains, plan.num_devices, axes, optimize=False)
        return self._program("init", init_chains, describe, optimize=False)

    # -- the chain program -------------------------------------------------------------------
    def execute(
        self, states: Any, collected: Collected, schedule: Schedule, ready: Callable[[], Any]
    ) -> tuple[Any, list[Any], RunStats]:
        """Find (or build) the chain program and drive it, timing steady-state runs.
        ``ready()`` waits for the program's compile, where one was started ahead."""
        s = self.settings

        def call(program: Callable[..., Any], dyn: list[Any], key: Any) -> Any:
            start = time.perf_counter()
            out = self._drive(program, states, dyn, collected, schedule, ready)
            if self.timed.get(key) and schedule.num_iterations:
                elapsed = time.perf_counter() - start
                rounds = s.plan.rounds(s.num_chains)
                self.seconds_per_iteration = elapsed / (schedule.num_iterations * rounds)
            self.timed[key] = True
            return out

        out: tuple[Any, list[Any], RunStats] = self.cache.run(
            ("chains", collected.fields, collected.removed),
            collected.args,
            collected.kwargs,
            lambda merge: self._build_chains(merge, collected),
            call,
        )
        return out

    def compile_chains_ahead(self, states: Any, collected: Collected) -> Callable[[], None]:
        """Start compiling the chain program from the shapes of the chains' starting states
        (``states``), before they exist; returns what waits for it.

        Only the types of the integer arguments matter to the compile, so the loop bounds
        here are placeholders for the first call's.
        """
        program, dyn, key = self.cache.find(
            ("chains", collected.fields, collected.removed),
            collected.args,
            collected.kwargs,
            lambda merge: self._build_chains(merge, collected),
        )
        if key in self.timed:  # run before by this object: compiled
            return lambda: None

        def program_args() -> tuple[Any, ...]:
            ids, carry = self._starts(states, collected, shapes_only=True)[0]
            return (*carry, dyn, 0, 0, 0, ids)

        return current().compiler().ahead(program, program_args)

    def _build_chains(self, merge: Merge, collected: Collected) -> Callable[..., Any]:
        """The chain program (:func:`.chain_loop.build_chain_loop`), compiled for this plan."""
        s = self.settings
        backend = current()
        loop = build_chain_loop(
            s.sampler,
            merge,
            num_warmup=s.num_warmup,
            thinning=s.thinning,
            sample_field=s.sample_field,
            postprocess_fn=s.postprocess_fn,
            fields=collected.fields,
            removed=collected.removed,
            one_chain=s.plan.one_chain_blocks(s.num_chains),
            on_trace=self.count_trace,
        )
        if s.plan.method == "parallel":
            axes = (0, 0, 0, None, None, None, None, 0)
            return backend.shard_over_devices(loop, s.plan.num_devices, axes, donate_argnums=(1,))

        def describe(program_args: tuple[Any, ...]) -> tuple[Any, ...]:
            return self._describe_chains(merge, program_args, collected)

        return self._program(
            "chains", loop, describe, donate_argnums=(1,), on_load=self.count_trace
        )

    def _describe_chains(
        self, merge: Merge, program_args: tuple[Any, ...], collected: Collected
    ) -> tuple[Any, ...]:
        """What the chain program depends on besides minippl's code and the argument
        shapes: the kernel's settings, this driver's, and the model, through what its
        potential energy (with gradient) and its map to the collected values compute."""
        s = self.settings
        backend = current()
        kernel = s.sampler
        states, dyn = program_args[0], program_args[3]

        def model_parts(z: Any, data: list[Any]) -> Any:
            args, kwargs = merge(data)
            potential = kernel.get_potential_fn(args, kwargs)
            post = s.postprocess_fn or kernel.postprocess_fn(args, kwargs)
            return backend.value_and_grad(potential)(z), post(z)

        driver = (s.num_warmup, s.thinning, s.sample_field, collected.fields, collected.removed)
        z = get_field(states, s.sample_field)
        return (
            type(kernel),
            kernel.cache_identity(),
            (driver, s.plan.method),
            Computed(model_parts, (z, dyn), batched=(0,)),
        )

    # -- blocks of chains ----------------------------------------------------------------------
    def _drive(
        self,
        program: Callable[..., Any],
        states: Any,
        dyn: list[Any],
        collected: Collected,
        schedule: Schedule,
        ready: Callable[[], Any],
    ) -> tuple[Any, list[Any], RunStats]:
        """Run the program over every block of chains (:func:`.chains.run_blocks`) and join
        the blocks; ``ready()`` comes before the first call."""
        backend = current()
        xp = backend.xp
        starts = self._starts(states, collected)
        ready()
        results = run_blocks(program, starts, dyn, schedule, self.settings.plan.workers, self.hub)
        if len(results) == 1:
            out: tuple[Any, list[Any], RunStats] = results[0]
            return out

        def join(results: list[Any]) -> Any:
            return backend.tree_map(lambda *xs: xp.concatenate(xs), *results)

        joined: tuple[Any, list[Any], RunStats] = self.helper("join_blocks", join)(results)
        return joined

    def _starts(
        self, states: Any, collected: Collected, shapes_only: bool = False
    ) -> list[tuple[Any, Any]]:
        """Each block of chains with the carry its first call takes: ``(ids, (states,
        collection, stats))``. ``shapes_only``: ``states`` are shapes (``eval_shape``'s),
        and so are the blocks' states."""
        s = self.settings
        backend = current()
        blocks = s.plan.blocks(s.num_chains)
        parts = [states]
        if len(blocks) > 1:

            def split(tree: Any) -> list[Any]:
                return [backend.tree_map(lambda x, a=lo, b=hi: x[a:b], tree) for lo, hi in blocks]

            helper = self.helper("split_blocks", split, tuple(blocks))
            parts = backend.eval_shape(helper, states) if shapes_only else helper(states)
        starts = []
        for (lo, hi), block in zip(blocks, parts, strict=True):
            coll = self._empty_collection(block, collected)
            zero = np.zeros((hi - lo,), dtype=np.int32)
            carry = (block, coll, RunStats(zero, zero, zero, zero, zero))
            if s.plan.method == "parallel" and not shapes_only:
                carry = backend.distribute(carry, s.plan.num_devices)
            starts.append((np.arange(lo, hi), carry))
        return starts

    def _empty_collection(self, states: Any, collected: Collected) -> list[Any]:
        """Zeroed arrays ``(chains, size, ...)`` for every collected field.

        They are made on the host (NumPy) and only their shapes are traced: on JAX every
        eager operation would be one more small program to compile in a fresh process.
        """
        s = self.settings
        backend = current()
        xp = backend.xp
        chains = shape_of(backend.tree_flatten(states)[0][0])[0]
        size = collected.size

        def zeros(x: Any, leading: int = 0) -> Any:
            shape = (chains, size) + tuple(x.shape)[leading:]
            return np.zeros(shape, dtype=np.dtype(x.dtype))

        def empty(x: Any) -> Any:
            if not hasattr(x, "dtype"):  # shapes from eval_shape have one: kept as shapes
                x = xp.asarray(x)
            if is_numeric(x):
                return zeros(x, leading=1)
            # PRNG keys have no zeros: fill with the current value instead.
            return xp.broadcast_to(x[:, None], (chains, size) + shape_of(x)[1:])

        collection = []
        for name in collected.fields:
            if name == s.sample_field:
                shapes = self._sample_shapes(get_field(states, name), collected)
                collection.append(backend.tree_map(zeros, shapes))
            else:
                collection.append(backend.tree_map(empty, get_field(states, name)))
        return collection

    def _sample_shapes(self, z: Any, collected: Collected) -> Any:
        """The shapes of one chain's collected sample sites (traced once per shape of z)."""
        s = self.settings
        backend = current()
        args, kwargs, removed = collected.args, collected.kwargs, collected.removed
        key = (shape_key(z), shape_key((args, kwargs)), removed)
        if key not in self.sample_shapes:
            postprocess = s.postprocess_fn or s.sampler.postprocess_fn(args, kwargs)
            shapes = backend.eval_shape(
                lambda zs: postprocess(backend.tree_map(lambda x: x[0], zs)), z
            )
            self.sample_shapes[key] = kept_sites(shapes, removed)
        return self.sample_shapes[key]
