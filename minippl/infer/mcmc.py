"""The MCMC driver: runs a kernel's chains, collects their draws, and reports on them.

Tutorial: "Causal inference: do", where the email model is fitted (``tutorial/s08_causal_do.py``).

How a run is organised
    1. *Keys.* ``run(rng_key)`` splits the key into one key per chain, only when there is
       more than one chain (NumPyro's flow, so on JAX chain ``i`` starts from the same key as
       NumPyro's chain ``i``). Chain ``i`` gets key ``i`` whatever the chain method.
    2. *Init.* The kernel is set up once (one trace of the model, for its shapes only
       where the set-up keeps no value of it; HMC and NUTS keep that set-up for data of
       the same layout), and every
       chain's search for a starting point runs in one compiled, vectorized program. A chain
       with no valid starting point is then run again alone, eagerly, so that the error
       names the sites at fault.
    3. *One compiled loop* (:mod:`.chain_loop`, kept by :mod:`.program_cache`). Warmup
       and sampling are a single ``fori_loop`` over
       ``kernel.sample`` that writes the collected fields into preallocated arrays, with no
       Python per step. The loop bounds, the first collected iteration and the data are
       arguments, not constants: ``warmup()`` then ``run()`` share one program, and a second
       ``run`` with the same shapes compiles nothing. On NumPy the same source runs eagerly.
       A first run starts compiling this program on a thread of its own as soon as the
       shapes of the starting states are known (the initialisation program traced, not
       yet compiled): XLA compiles without holding Python's lock, so the two programs
       compile on two cores (``compile_ahead`` of the backend).
    4. *Chain methods.* The program runs a block of chains (``vmap`` inside the loop).
       ``"sequential"`` gives it one chain at a time (without ``vmap``: batched, the
       kernel's branches would all be evaluated), ``"vectorized"`` all of them, and
       ``"parallel"`` splits the chains over devices with the backend's sharding (one chain
       per device runs unbatched, as in "sequential"; several are vectorized when there are
       fewer devices than chains). On a CPU that JAX sees as one device, whose cores each
       run a program (``concurrent_programs`` of the backend), ``"parallel"`` runs the
       one-chain programs of "sequential" side by side on host threads instead, with the
       same draws and no devices to set up: NumPyro runs them one after another there.
    5. *Progress.* With a progress bar the loop runs in chunks sized as it goes (1, 4, 16,
       ... iterations, then ~0.2 s each; ``progress.ChunkPlan``), and the bar is updated
       between chunks. The program is the same one, so the bar cannot change the draws,
       and it contains no host callback, so JAX's persistent cache can keep it (JAX never
       stores programs with callbacks).
    6. *Reporting.* Counts of divergences, transitions at the maximum tree depth and states
       with a non-finite gradient are kept in the loop, and a warning states them after the run.

References
----------
1. M. D. Hoffman, A. Gelman, "The No-U-Turn Sampler", JMLR 15 (2014).
2. Stan Development Team, *Stan Reference Manual*, "Divergent transitions" and "Maximum tree
   depth" (the diagnostics reported after a run).
"""

from __future__ import annotations

import copy
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from backends.program_keys import canonical
from minippl.backend import current
from minippl.diagnostics import format_divergences, print_summary
from minippl.distributions.util import shape_of
from minippl.infer.chain_loop import RunStats, build_chain_loop, get_field, max_tree_depth
from minippl.infer.compile_cache import enable_compile_cache, program_dir, run_hint
from minippl.infer.program_cache import Merge, ProgramCache, shape_key
from minippl.infer.progress import ChunkPlan, ProgressHub, stderr_is_terminal

__all__ = ["MCMC", "MCMCWarning"]

CHAIN_METHODS = ("parallel", "vectorized", "sequential")


_MODEL_FUNCTIONS = ("_model", "_potential_fn", "_potential_fn_gen", "_postprocess_fn", "_setups")
"""A kernel's attributes that hold the model's functions (keyed by their jaxpr, not value),
or what was derived from them."""


class MCMCWarning(UserWarning):
    """Divergences, transitions at the maximum tree depth, or non-finite gradients."""


class _Plan(NamedTuple):
    """How the chains of one run are laid out."""

    method: str  # "single", "sequential", "vectorized" or "parallel"
    num_devices: int
    workers: int = 1  # "sequential" chains run at once, each on its own host thread


def _is_single_key(key: Any) -> bool:
    """One PRNG key (not a batch of them): a typed key of shape (), or a raw key of shape (2,)."""
    xp = current().xp
    shape = shape_of(key)
    dtype = getattr(key, "dtype", None)
    if dtype is not None and xp.issubdtype(dtype, xp.unsignedinteger):
        return len(shape) == 1
    return len(shape) == 0


def _is_numeric(x: Any) -> bool:
    xp = current().xp
    dtype = xp.asarray(x).dtype if not hasattr(x, "dtype") else x.dtype
    return bool(xp.issubdtype(dtype, xp.number) or xp.issubdtype(dtype, xp.bool_))


class MCMC:
    """Run ``num_chains`` Markov chains of ``sampler`` and collect their draws.

    Parameters
    ----------
    sampler : a kernel such as :class:`~minippl.infer.NUTS` (``init``, ``sample``,
        ``postprocess_fn``, ``sample_field``, ``default_fields``).
    num_warmup, num_samples : iterations of adaptation, then of collected draws.
    num_chains : number of chains.
    thinning : keep every ``thinning``-th draw (``num_samples // thinning`` are kept).
    postprocess_fn : maps the kernel's ``z`` to the collected values (default: the kernel's,
        which constrains latent sites and recomputes deterministic ones).
    chain_method : ``"parallel"`` (chains at once: over devices, see
        :func:`minippl.set_host_device_count`, or on a one-device CPU over its cores, one
        host thread per chain), ``"vectorized"`` (``vmap`` over chains on one device) or
        ``"sequential"``.
    progress_bar : show a progress bar when standard error is a terminal.
    progress_rate : iterations between progress updates (default ~1% of the run).
    jit_model_args : accepted for NumPyro compatibility; the data is always an argument of
        the compiled program here, so new data of the same shapes never recompiles.
    """

    def __init__(
        self,
        sampler: Any,
        *,
        num_warmup: int,
        num_samples: int,
        num_chains: int = 1,
        thinning: int = 1,
        postprocess_fn: Callable[..., Any] | None = None,
        chain_method: str = "parallel",
        progress_bar: bool = True,
        progress_rate: int | None = None,
        jit_model_args: bool = False,
    ) -> None:
        if not isinstance(num_warmup, int) or num_warmup < 0:
            raise ValueError(f"num_warmup must be an integer >= 0, got {num_warmup!r}")
        if not isinstance(thinning, int) or thinning < 1:
            raise ValueError(f"thinning must be an integer >= 1, got {thinning!r}")
        if not isinstance(num_samples, int) or num_samples < thinning:
            raise ValueError(
                f"num_samples must be an integer >= thinning ({thinning}), got {num_samples!r}"
            )
        if not isinstance(num_chains, int) or num_chains < 1:
            raise ValueError(f"num_chains must be an integer >= 1, got {num_chains!r}")
        if chain_method not in CHAIN_METHODS:
            raise ValueError(f"chain_method must be one of {CHAIN_METHODS}, got {chain_method!r}")
        self.sampler = sampler
        self.num_warmup = num_warmup
        self.num_samples = num_samples
        self.num_chains = num_chains
        self.thinning = thinning
        self.postprocess_fn = postprocess_fn
        self.chain_method = chain_method
        self.progress_bar = progress_bar
        self.progress_rate = progress_rate
        self._sample_field: str = getattr(sampler, "sample_field", "z")
        self._default_fields: tuple[str, ...] = tuple(getattr(sampler, "default_fields", ("z",)))
        self._plan = self._plan_chains()
        self._states: dict[str, Any] | None = None
        self._states_flat: dict[str, Any] | None = None
        self._last_state: Any = None
        self._warmup_state: Any = None
        self._stats: RunStats | None = None
        self._cache = ProgramCache()
        self._chain_start: Callable[..., Any] | None = None
        self._programs_timed: dict[Any, bool] = {}
        self._sample_shapes: dict[Any, Any] = {}
        self._seconds_per_iteration: float | None = None
        self._args: tuple[Any, ...] = ()
        self._kwargs: dict[str, Any] = {}
        self._hub = ProgressHub()
        self._program_dir: Path | None = None
        self._helpers: dict[Any, Callable[..., Any]] = {}
        self.num_traces = 0
        """How many times the chain program was traced (compiled) by this object."""

    # -- layout ------------------------------------------------------------------------------
    def _plan_chains(self) -> _Plan:
        """Decide the layout now, and say so when "parallel" cannot run chains at once."""
        if self.num_chains == 1:
            return _Plan("single", 1)
        if self.chain_method != "parallel":
            return _Plan(self.chain_method, 1)
        backend = current()
        devices = backend.device_count()
        if devices >= self.num_chains:
            return _Plan("parallel", self.num_chains)
        usable = max(d for d in range(1, devices + 1) if self.num_chains % d == 0)
        if usable == 1:
            workers = min(backend.concurrent_programs(), self.num_chains)
            if workers > 1:
                # One device whose cores each run a program (a CPU): the one-chain programs
                # of "sequential" run side by side on host threads, with the same draws.
                # (Where JAX split the CPU into devices, sharding is kept: threads on one
                # of four CPU devices ran 1.3-1.4x slower than one chain per device on the
                # email, logistic, dense-Gaussian and hierarchical models.)
                return _Plan("sequential", 1, workers)
            warnings.warn(
                f"chain_method='parallel' needs {self.num_chains} devices but "
                f"{devices} {'is' if devices == 1 else 'are'} available (usable: 1); the "
                f"{self.num_chains} chains will run one after another (as 'sequential'). On "
                f"CPU, call minippl.set_host_device_count({self.num_chains}) before any other "
                "JAX work to run them in parallel.",
                UserWarning,
                stacklevel=3,
            )
            return _Plan("sequential", 1)
        warnings.warn(
            f"chain_method='parallel' needs {self.num_chains} devices but {devices} are "
            f"available; the chains will run on {usable} devices, "
            f"{self.num_chains // usable} vectorized chains per device.",
            UserWarning,
            stacklevel=3,
        )
        return _Plan("parallel", usable)

    # -- properties NumPyro users rely on ----------------------------------------------------
    @property
    def post_warmup_state(self) -> Any:
        """The state after warmup. When set, :meth:`run` skips warmup and starts from it
        (with the key passed to ``run``), e.g. ``mcmc.post_warmup_state = mcmc.last_state``
        to draw more samples from where the last run stopped."""
        return self._warmup_state

    @post_warmup_state.setter
    def post_warmup_state(self, state: Any) -> None:
        self._warmup_state = state

    @property
    def run_args(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The model arguments ``(args, kwargs)`` of the last run."""
        return self._args, self._kwargs

    @property
    def last_state(self) -> Any:
        """The kernel state at the end of the last run (leading chain axis if several)."""
        return self._last_state

    def _count_trace(self) -> None:
        self.num_traces += 1

    # -- running -----------------------------------------------------------------------------
    def warmup(
        self,
        rng_key: Any,
        *args: Any,
        extra_fields: Sequence[str] = (),
        collect_warmup: bool = False,
        init_params: Any = None,
        **kwargs: Any,
    ) -> None:
        """Run only the warmup; a later :meth:`run` starts from :attr:`post_warmup_state`.

        With ``collect_warmup=True`` the warmup draws are collected (``get_samples``).
        """
        self._warmup_state = None
        self._run(rng_key, args, kwargs, extra_fields, init_params, "warmup", collect_warmup)
        self._warmup_state = self._last_state

    def run(
        self,
        rng_key: Any,
        *args: Any,
        extra_fields: Sequence[str] = (),
        init_params: Any = None,
        **kwargs: Any,
    ) -> None:
        """Run warmup (unless :attr:`post_warmup_state` is set) and sampling.

        Parameters
        ----------
        rng_key : one key (split into ``num_chains`` keys when there are several chains) or
            a batch of ``num_chains`` keys.
        *args, **kwargs : the model's arguments (the data).
        extra_fields : state fields to collect besides the samples, e.g. ``"num_steps"``,
            ``"accept_prob"``, ``"energy"``, ``"adapt_state.step_size"``; ``"~z.x"`` drops
            site ``x`` from the collected samples. ``"diverging"`` is always collected.
        init_params : unconstrained starting values (leading chain axis if several chains).
        """
        self._run(rng_key, args, kwargs, extra_fields, init_params, "run", False)

    def _chain_keys(self, rng_key: Any) -> Any:
        backend = current()
        if self.num_chains > 1 and _is_single_key(rng_key):
            n = self.num_chains
            return self._helper("split_keys", lambda key: backend.split(key, n), n)(rng_key)
        if self.num_chains > 1 and shape_of(rng_key)[0] != self.num_chains:
            raise ValueError(
                f"rng_key holds {shape_of(rng_key)[0]} keys but num_chains={self.num_chains}"
            )
        return rng_key

    def _init_states(
        self,
        keys: Any,
        init_params: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        ahead: Callable[[Any], None] | None = None,
    ) -> Any:
        """``kernel.init`` for every chain, stacked along a leading chain axis.

        A kernel with a ``chain_initializer`` (HMC, NUTS) is set up once, and then
        every chain's search for a starting point runs in one compiled, vectorized program,
        kept for the next run like the chain program. Other kernels run ``init`` per chain.
        When that program is to be compiled, ``ahead`` is first given the shapes of the
        states it will return.
        """
        backend = current()
        xp = backend.xp
        batch = keys if self.num_chains > 1 else backend.tree_map(lambda k: k[None], keys)
        if init_params is not None:
            if self.num_chains == 1:
                init_params = backend.tree_map(lambda x: xp.asarray(x)[None], init_params)
            first = backend.tree_flatten(init_params)[0][0]
            if shape_of(first)[:1] != (self.num_chains,):
                raise ValueError(
                    "init_params needs a leading axis of size num_chains="
                    f"{self.num_chains}, got shape {shape_of(first)}"
                )

        def params_of(chain: int) -> Any:
            if init_params is None:
                return None
            return backend.tree_map(lambda x: x[chain], init_params)

        if not hasattr(self.sampler, "chain_initializer"):
            states = [
                self.sampler.init(batch[c], self.num_warmup, params_of(c), args, kwargs)
                for c in range(self.num_chains)
            ]
            stacked = backend.tree_map(lambda *xs: xp.stack([xp.asarray(x) for x in xs]), *states)
            return stacked if self.num_chains > 1 else backend.tree_map(lambda x: x[0], stacked)

        first_key = self._helper("first_key", lambda b: backend.tree_map(lambda k: k[0], b))
        self._chain_start = self.sampler.chain_initializer(
            first_key(batch), self.num_warmup, params_of(0), args, kwargs
        )

        def build(merge: Merge) -> Any:
            def init_chains(chain_keys: Any, params: Any, dyn: list[Any]) -> Any:
                data_args, data_kwargs = merge(dyn)
                axes = (0, None if params is None else 0, None, None)
                # This run's set-up, read when the program is traced.
                assert self._chain_start is not None
                start = backend.vmap(self._chain_start, in_axes=axes)
                return start(chain_keys, params, data_args, data_kwargs)

            def describe(program_args: tuple[Any, ...]) -> Any:
                chain_keys, params, dyn = program_args
                start = self._chain_start
                assert start is not None
                rows = backend.row_shapes
                one = (rows(chain_keys), None if params is None else rows(params), dyn)
                return backend.function_digest(lambda k, p, d: start(k, p, *merge(d)), *one)

            if self._plan.method == "parallel":
                # Started where the chains will run: moving the states there afterwards
                # cost ~4 ms a run (dozens of leaves), more than the search itself.
                axes = (0, None if init_params is None else 0, None)
                return backend.shard_over_devices(
                    init_chains, self._plan.num_devices, axes, optimize=False
                )
            jitted = backend.jit(init_chains, optimize=False)
            return self._stored("init", jitted, describe)

        def call(program: Callable[..., Any], dyn: list[Any], _: Any) -> Any:
            if ahead is not None and not backend.program_ready(program, batch, init_params, dyn):
                ahead(backend.eval_shape(program, batch, init_params, dyn)[0])
            return program(batch, init_params, dyn)

        states, is_valid = self._cache.run("init", args, kwargs, build, call)
        for chain in np.flatnonzero(~np.asarray(backend.to_numpy(is_valid))):
            # Run the failing chain alone: eagerly, it raises an error naming the sites.
            self.sampler.init(batch[chain], self.num_warmup, params_of(int(chain)), args, kwargs)
        if self.num_chains == 1:
            return backend.tree_map(lambda x: x[0], states)
        return states

    def _collect_fields(
        self, extra_fields: Sequence[str], state: Any
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The fields to collect (samples first) and the sample sites to leave out."""
        if not isinstance(extra_fields, tuple | list):
            raise TypeError(f"extra_fields must be a tuple or list, got {type(extra_fields)}")
        fields: dict[str, None] = {}
        removed: dict[str, None] = {}
        wanted = (self._sample_field, *self._default_fields, "diverging", *extra_fields)
        prefix = f"~{self._sample_field}."
        for name in wanted:
            if name.startswith(prefix):
                removed[name[len(prefix) :]] = None
            elif name == "diverging" and getattr(state, "diverging", None) is None:
                continue
            else:
                fields[name] = None
        return tuple(fields), tuple(removed)

    def _run(
        self,
        rng_key: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        extra_fields: Sequence[str],
        init_params: Any,
        phase: str,
        collect_warmup: bool,
    ) -> None:
        backend = current()
        xp = backend.xp
        self._program_dir = program_dir(enable_compile_cache())
        self._args, self._kwargs = tuple(args), dict(kwargs)
        noted = self._expect_programs(args, kwargs)
        keys = self._chain_keys(rng_key)
        resuming = phase == "run" and self._warmup_state is not None

        # Iterations of this call, and which of them are kept (NumPyro's thinning: the
        # last draw of every block of ``thinning``).
        if phase == "warmup":
            num_iterations = self.num_warmup
            if collect_warmup:
                size = self.num_warmup // self.thinning
                first = self.num_warmup % self.thinning
            else:
                size, first = self.num_samples // self.thinning, num_iterations
        else:
            warm = 0 if resuming else self.num_warmup
            num_iterations = warm + self.num_samples
            size = self.num_samples // self.thinning
            first = warm + self.num_samples % self.thinning

        compiling: list[Callable[[], None]] = []  # waits for the chain program's compile

        def ahead(states: Any) -> None:
            compiling.append(self._compile_chains_ahead(states, args, kwargs, extra_fields, size))

        try:
            if resuming:
                init_state = self._warmup_state._replace(rng_key=keys)
            else:
                # Sharded programs need their arguments' layout: not compiled ahead.
                sharded = self._plan.method == "parallel"
                init_state = self._init_states(
                    keys, init_params, args, kwargs, None if sharded else ahead
                )
            if self.num_chains == 1:
                init_state = backend.tree_map(lambda x: xp.asarray(x)[None], init_state)

            fields, removed = self._collect_fields(extra_fields, init_state)
            show = bool(self.progress_bar) and stderr_is_terminal() and num_iterations > 0
            if show:
                chunk = ChunkPlan(num_iterations, self._seconds_per_iteration, self.progress_rate)
                desc = "warmup" if phase == "warmup" or not resuming else "sample"
                self._hub.start(self.num_chains, num_iterations, self.num_warmup, desc)
            else:
                chunk = ChunkPlan(num_iterations, every=max(num_iterations, 1))
            last_state, collection, stats = self._execute(
                init_state, args, kwargs, fields, removed, size, num_iterations, first,
                chunk, show, lambda: [wait() for wait in compiling],
            )  # fmt: skip
        finally:
            for wait in compiling:  # never leave a compile running behind an error
                wait()
            self._hub.close()

        if self.num_chains == 1:
            last_state = backend.tree_map(lambda x: x[0], last_state)
        if phase == "warmup" and not collect_warmup:
            collection = backend.tree_map(_no_draws, collection)
        self._last_state = last_state
        self._states = dict(zip(fields, collection, strict=True))
        self._states_flat = None
        self._stats = RunStats(*(backend.to_numpy(s) for s in stats))
        noted()
        self._warn(phase)

    def _expect_programs(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Callable[[], None]:
        """Have the backend start loading the programs a run like this one used last time,
        while this process traces the model (a warm start's executables take ~0.2 s to load);
        returns what notes this run's programs when it has succeeded."""
        if self._program_dir is None:
            return lambda: None
        settings = (
            type(self.sampler).__qualname__,
            self.num_warmup, self.num_samples, self.num_chains, self.thinning, self._plan,
        )  # fmt: skip
        hint = run_hint(getattr(self.sampler, "model", None), settings, args, kwargs)
        if hint is None:
            return lambda: None
        return current().expect_programs(self._program_dir, hint)

    # -- the compiled program ----------------------------------------------------------------
    def _execute(
        self,
        states: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        fields: tuple[str, ...],
        removed: tuple[str, ...],
        size: int,
        num_iterations: int,
        first: int,
        chunk: ChunkPlan,
        show: bool,
        ready: Callable[[], Any],
    ) -> tuple[Any, list[Any], RunStats]:
        """Find (or build) the chain program and drive it, timing steady-state runs.
        ``ready()`` waits for the program's compile, where one was started ahead."""

        def call(program: Callable[..., Any], dyn: list[Any], key: Any) -> Any:
            start = time.perf_counter()
            out = self._drive(
                program, states, dyn, args, kwargs, fields, removed, size, num_iterations,
                first, chunk, show, ready,
            )  # fmt: skip
            if self._programs_timed.get(key) and num_iterations:
                # Blocks of chains run one after another, ``workers`` at a time.
                sequential = self._plan.method == "sequential"
                rounds = -(-self.num_chains // self._plan.workers) if sequential else 1
                elapsed = time.perf_counter() - start
                self._seconds_per_iteration = elapsed / (num_iterations * rounds)
            self._programs_timed[key] = True
            return out

        out: tuple[Any, list[Any], RunStats] = self._cache.run(
            ("chains", fields, removed),
            args,
            kwargs,
            lambda merge: self._build_chains(merge, fields, removed),
            call,
        )
        return out

    def _build_chains(
        self, merge: Merge, fields: tuple[str, ...], removed: tuple[str, ...]
    ) -> Callable[..., Any]:
        """The chain program (:func:`.chain_loop.build_chain_loop`), compiled for this plan."""
        backend = current()
        loop = build_chain_loop(
            self.sampler,
            merge,
            num_warmup=self.num_warmup,
            thinning=self.thinning,
            sample_field=self._sample_field,
            postprocess_fn=self.postprocess_fn,
            fields=fields,
            removed=removed,
            one_chain=self._one_chain_blocks(),
            on_trace=self._count_trace,
        )
        if self._plan.method == "parallel":
            axes = (0, 0, 0, None, None, None, None, 0)
            devices = self._plan.num_devices
            return backend.shard_over_devices(loop, devices, axes, donate_argnums=(1,))
        jitted = backend.jit(loop, donate_argnums=(1,))
        return self._stored(
            "chains",
            jitted,
            lambda program_args: self._describe_chains(merge, program_args, fields, removed),
            on_load=self._count_trace,
        )

    def _compile_chains_ahead(
        self,
        states: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        extra_fields: Sequence[str],
        size: int,
    ) -> Callable[[], None]:
        """Start compiling the chain program from the shapes of the chains' starting
        states (``states``), before they exist: it then compiles on one core while this
        thread compiles and runs the search for them on another. Returns what waits for it.

        Only the types of the integer arguments matter to the compile, so the loop bounds
        here are placeholders for the first call's.
        """
        fields, removed = self._collect_fields(extra_fields, states)
        program, dyn, key = self._cache.find(
            ("chains", fields, removed),
            args,
            kwargs,
            lambda merge: self._build_chains(merge, fields, removed),
        )
        if key in self._programs_timed:  # run before by this object: compiled
            return _nothing

        def program_args() -> tuple[Any, ...]:
            starts = self._starts(states, args, kwargs, fields, removed, size, shapes_only=True)
            ids, carry = starts[0]
            return (*carry, dyn, 0, 0, 0, ids)

        return current().compile_ahead(program, program_args)

    def _one_chain_blocks(self) -> bool:
        """Whether the program is given one chain at a time (and so runs without ``vmap``):
        one after another, side by side on threads, or one per device."""
        plan = self._plan
        if plan.method == "parallel":
            return plan.num_devices == self.num_chains
        return plan.method in ("single", "sequential")

    def _helper(self, name: str, fn: Callable[..., Any], *static: Any) -> Callable[..., Any]:
        """A small array operation of the driver (splitting keys, slicing or joining blocks of
        chains, flattening draws) as one compiled program, kept on disk when programs are
        stored (JAX). Run eagerly, each operation would be one more small program to dispatch
        on every run (slicing four chains' states apart took ~110 of them), and to trace and
        lower in a fresh process. ``static`` is what ``fn`` closes over. On NumPy, ``jit``
        leaves ``fn`` as it is."""
        key = (name, static)
        program = self._helpers.get(key)
        if program is None:
            backend = current()
            # Tiny and run once a run: compiled for compile speed (a key split took 0.14 s
            # to compile at full optimisation in a fresh process).
            program = backend.jit(fn, optimize=False)
            if self._program_dir is not None:
                described = canonical(static)
                program = backend.stored_program(
                    name, program, self._program_dir, lambda _: described, lambda: None
                )
            self._helpers[key] = program
        return program

    def _stored(
        self,
        name: str,
        jitted: Callable[..., Any],
        describe: Callable[[tuple[Any, ...]], Any],
        on_load: Callable[[], None] = lambda: None,
    ) -> Callable[..., Any]:
        """``jitted``, kept on disk beside the persistent cache when that is possible (JAX,
        one device, a kernel whose model a jaxpr describes): a fresh process then loads the
        program instead of tracing and lowering it just to find it in JAX's cache."""
        usable = hasattr(self.sampler, "chain_initializer") and self._plan.method != "parallel"
        if self._program_dir is None or not usable:
            return jitted
        return current().stored_program(name, jitted, self._program_dir, describe, on_load)

    def _describe_chains(
        self,
        merge: Merge,
        program_args: tuple[Any, ...],
        fields: tuple[str, ...],
        removed: tuple[str, ...],
    ) -> Any:
        """What the chain program depends on besides minippl's code and the argument
        shapes: the kernel's settings, this driver's, and the model, through the jaxpr of
        its potential energy (with gradient) and of the map to the collected values."""
        backend = current()
        kernel = self.sampler
        states, dyn = program_args[0], program_args[3]
        postprocess_fn = self.postprocess_fn

        def model_parts(z: Any, data: list[Any]) -> Any:
            args, kwargs = merge(data)
            potential = kernel.get_potential_fn(args, kwargs)
            post = postprocess_fn or kernel.postprocess_fn(args, kwargs)
            return backend.value_and_grad(potential)(z), post(z)

        # The model's functions are described by the jaxpr; every other setting by value.
        settings = {k: v for k, v in vars(kernel).items() if k not in _MODEL_FUNCTIONS}
        driver = (self.num_warmup, self.thinning, self._sample_field, fields, removed)
        return (
            canonical(type(kernel)),
            canonical(settings),
            canonical((driver, self._plan.method)),
            backend.function_digest(
                model_parts, backend.row_shapes(get_field(states, self._sample_field)), dyn
            ),
        )

    def _empty_collection(
        self,
        states: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        fields: tuple[str, ...],
        removed: tuple[str, ...],
        size: int,
    ) -> list[Any]:
        """Zeroed arrays ``(chains, size, ...)`` for every collected field.

        They are made on the host (NumPy) and only their shapes are traced: on JAX every
        eager operation would be one more small program to compile in a fresh process.
        """
        backend = current()
        xp = backend.xp
        chains = shape_of(backend.tree_flatten(states)[0][0])[0]
        postprocess = self.postprocess_fn or self.sampler.postprocess_fn(args, kwargs)

        def zeros(x: Any, leading: int = 0) -> Any:
            shape = (chains, size) + tuple(x.shape)[leading:]
            return np.zeros(shape, dtype=np.dtype(x.dtype))

        collection = []
        for name in fields:
            if name == self._sample_field:
                z = get_field(states, name)
                key = (shape_key(z), shape_key((args, kwargs)), removed)
                if key not in self._sample_shapes:
                    # Tracing the model once per shape of z is enough: cache its answer.
                    shapes = backend.eval_shape(
                        lambda zs: postprocess(backend.tree_map(lambda x: x[0], zs)), z
                    )
                    self._sample_shapes[key] = {k: v for k, v in shapes.items() if k not in removed}
                collection.append(backend.tree_map(zeros, self._sample_shapes[key]))
                continue

            def empty(x: Any) -> Any:
                if not hasattr(x, "dtype"):  # shapes from eval_shape have one: kept as shapes
                    x = xp.asarray(x)
                if _is_numeric(x):
                    return zeros(x, leading=1)
                # PRNG keys have no zeros: fill with the current value instead.
                return xp.broadcast_to(x[:, None], (chains, size) + shape_of(x)[1:])

            collection.append(backend.tree_map(empty, get_field(states, name)))
        return collection

    def _drive(
        self,
        program: Callable[..., Any],
        states: Any,
        dyn: list[Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        fields: tuple[str, ...],
        removed: tuple[str, ...],
        size: int,
        num_iterations: int,
        first: int,
        chunk: ChunkPlan,
        show: bool,
        ready: Callable[[], Any],
    ) -> tuple[Any, list[Any], RunStats]:
        """Run the program over every block of chains, ``chunk`` iterations per call; with
        workers in the plan, blocks run side by side on host threads (each with its own copy
        of ``chunk``, the bars fed under a lock). ``ready()`` comes before the first call."""
        backend = current()
        xp = backend.xp
        starts = self._starts(states, args, kwargs, fields, removed, size)
        ready()
        reporting = threading.Lock()
        stopping = threading.Event()

        def finish(ids: Any, carry: Any, plan: ChunkPlan) -> Any:
            for done, stop in plan.chunks():
                if stopping.is_set():
                    return None
                carry = program(*carry, dyn, done, stop, first, ids)
                if show:
                    rows = _progress_rows(carry[0], carry[2], ids, stop)
                    with reporting:
                        self._hub.report(rows)
            return backend.block_until_ready(carry)

        workers = min(self._plan.workers, len(starts))
        if workers == 1:
            results = [finish(ids, carry, chunk) for ids, carry in starts]
        else:
            # The first call compiles or loads the program: it is made alone (with no
            # iterations), so that the threads find it ready instead of each building it.
            ids, carry = starts[0]
            starts[0] = (ids, program(*carry, dyn, 0, 0, first, ids))
            results = _side_by_side(finish, starts, workers, chunk, stopping)
        if len(results) == 1:
            out: tuple[Any, list[Any], RunStats] = results[0]
            return out

        def join(results: list[Any]) -> Any:
            return backend.tree_map(lambda *xs: xp.concatenate(xs), *results)

        joined: tuple[Any, list[Any], RunStats] = self._helper("join_blocks", join)(results)
        return joined

    def _starts(
        self,
        states: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        fields: tuple[str, ...],
        removed: tuple[str, ...],
        size: int,
        shapes_only: bool = False,
    ) -> list[tuple[Any, Any]]:
        """Each block of chains (one per chain for "sequential", else one) with the carry
        its first call takes: ``(ids, (states, collection, stats))``. ``shapes_only``:
        ``states`` are shapes (:meth:`eval_shape`'s), and so are the blocks' states."""
        backend = current()
        if self._plan.method == "sequential":
            blocks = [(c, c + 1) for c in range(self.num_chains)]
        else:
            blocks = [(0, self.num_chains)]
        if len(blocks) > 1:

            def split(tree: Any) -> list[Any]:
                return [backend.tree_map(lambda x, a=lo, b=hi: x[a:b], tree) for lo, hi in blocks]

            helper = self._helper("split_blocks", split, tuple(blocks))
            parts = backend.eval_shape(helper, states) if shapes_only else helper(states)
        else:
            parts = [states]
        starts = []
        for (lo, hi), block in zip(blocks, parts, strict=True):
            ids = np.arange(lo, hi)
            coll = self._empty_collection(block, args, kwargs, fields, removed, size)
            zero = np.zeros((hi - lo,), dtype=np.int32)
            carry = (block, coll, RunStats(zero, zero, zero, zero, zero))
            if self._plan.method == "parallel" and not shapes_only:
                carry = backend.distribute(carry, self._plan.num_devices)
            starts.append((ids, carry))
        return starts

    # -- after a run ---------------------------------------------------------------------------
    def _warn(self, phase: str) -> None:
        """State divergences, tree-depth saturation and non-finite gradients, if any."""
        stats = self._stats
        if stats is None:
            return
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
            saturated = int(stats.max_depth_hits.sum())
            if saturated:
                depth = max_tree_depth(self.sampler)
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
        if problems:
            warnings.warn(" ".join(problems), MCMCWarning, stacklevel=4)

    def _flat(self) -> dict[str, Any]:
        if self._states is None:
            raise RuntimeError("no samples yet: call run() first")
        if self._states_flat is None:
            backend = current()
            xp = backend.xp

            def flat(states: Any) -> Any:
                return backend.tree_map(
                    lambda x: xp.reshape(x, (x.shape[0] * x.shape[1],) + tuple(x.shape[2:])),
                    states,
                )

            self._states_flat = self._helper("flatten_draws", flat)(self._states)
        return self._states_flat

    def get_samples(self, group_by_chain: bool = False) -> Any:
        """The collected samples (latent and deterministic sites), constrained.

        ``group_by_chain=True`` keeps a leading chain axis: ``(chains, draws, ...)``.
        """
        states = self._states if group_by_chain else self._flat()
        if states is None:
            raise RuntimeError("no samples yet: call run() first")
        return states[self._sample_field]

    def get_extra_fields(self, group_by_chain: bool = False) -> dict[str, Any]:
        """The collected state fields other than the samples (``diverging`` and those asked)."""
        states = self._states if group_by_chain else self._flat()
        if states is None:
            raise RuntimeError("no samples yet: call run() first")
        return {k: v for k, v in states.items() if k != self._sample_field}

    def print_summary(self, prob: float = 0.9, exclude_deterministic: bool = True) -> None:
        """NumPyro's table (mean, std, median, HPDI bounds, n_eff, r_hat), then the
        number of divergences."""
        if self._states is None:
            raise RuntimeError("no samples yet: call run() first")
        sites = self._states[self._sample_field]
        if isinstance(sites, dict) and exclude_deterministic:
            z = getattr(self._last_state, self._sample_field, None)
            if isinstance(z, dict):
                sites = {k: v for k, v in sites.items() if k in z}
        print_summary(sites, prob=prob, group_by_chain=True)
        extra = self.get_extra_fields()
        if "diverging" in extra:
            xp = current().xp
            print(format_divergences(int(xp.sum(extra["diverging"]))))

    @property
    def run_stats(self) -> dict[str, Any]:
        """Per-chain counts from the last run: ``transitions``, ``divergences``,
        ``warmup_divergences``, ``max_depth_hits``, ``nonfinite``."""
        if self._stats is None:
            raise RuntimeError("no run yet: call run() first")
        return self._stats._asdict()

    def transfer_states_to_host(self) -> None:
        """Move the collected draws to host (NumPy) memory."""
        backend = current()
        if self._states is not None:
            self._states = backend.tree_map(backend.to_numpy, self._states)
            self._states_flat = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_cache"] = ProgramCache()
        state["_programs_timed"] = {}
        state["_helpers"] = {}
        state["_hub"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._hub = ProgressHub()


def _nothing() -> None:
    """Nothing to wait for."""


def _percent(part: int, whole: int) -> str:
    """``part / whole`` as a percentage that never rounds a non-zero count to 0.0%."""
    share = 100 * part / whole
    return f"{share:.1f}%" if share >= 0.1 or share == 0 else f"{share:.2f}%"


def _no_draws(x: Any) -> Any:
    """``x[:, :0]`` as a host array (slicing on the device would compile a program)."""
    if _is_numeric(x):
        return np.zeros(shape_of(x)[:1] + (0,) + shape_of(x)[2:], dtype=np.dtype(x.dtype))
    return x[:, :0]


def _side_by_side(
    finish: Callable[[Any, Any, ChunkPlan], Any],
    starts: list[tuple[Any, Any]],
    workers: int,
    chunk: ChunkPlan,
    stopping: threading.Event,
) -> list[Any]:
    """``finish(ids, carry, plan)`` for every block, ``workers`` at a time on host threads,
    each with its own copy of ``chunk``; an error in one is raised here, after the others
    stopped at their next chunk (``stopping``)."""
    pool = ThreadPoolExecutor(workers, thread_name_prefix="minippl-chains")
    futures = [pool.submit(finish, ids, carry, copy.copy(chunk)) for ids, carry in starts]
    try:
        return [future.result() for future in futures]
    except BaseException:
        stopping.set()  # e.g. Ctrl-C: the other chains stop after their chunk
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _progress_rows(states: Any, stats: RunStats, ids: Any, done: int) -> Any:
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
