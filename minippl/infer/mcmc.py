"""The MCMC driver: runs a kernel's chains, collects their draws, and reports on them.

Tutorial: "Causal inference: do", where the email model is fitted (``tutorial/s08_causal_do.py``).

How a run is organised
    1. *Keys.* ``run(rng_key)`` splits the key into one key per chain, only when there is
       more than one chain (NumPyro's flow, so on JAX chain ``i`` starts from the same key as
       NumPyro's chain ``i``). Chain ``i`` gets key ``i`` whatever the chain method.
    2. *Init.* The kernel is set up once, and every chain's search for a starting point
       runs in one vectorized program (:meth:`.ChainPrograms.init_states`).
    3. *One compiled loop* (:mod:`.chain_loop`). Warmup and sampling are a single
       ``fori_loop`` over ``kernel.sample`` that writes the collected fields into
       preallocated arrays, with no Python per step. The loop bounds, the first collected
       iteration and the data are arguments, not constants: ``warmup()`` then ``run()``
       share one program, and a second ``run`` with the same shapes compiles nothing. On
       NumPy the same source runs eagerly. The programs are made by the backend's compiler
       (:mod:`.chain_programs`).
    4. *Chain methods.* ``"sequential"``, ``"vectorized"`` and ``"parallel"`` lay the
       chains out in blocks for the program (:mod:`.chains`).
    5. *Progress.* With a progress bar the loop runs in chunks sized as it goes
       (:class:`.progress.ChunkPlan`), and the bar is updated between chunks. The program
       is the same one, so the bar cannot change the draws.
    6. *Reporting.* Counts of divergences, transitions at the maximum tree depth and states
       with a non-finite gradient are kept in the loop, and a warning states them after the run.

References
----------
1. M. D. Hoffman, A. Gelman, "The No-U-Turn Sampler", JMLR 15 (2014).
2. Stan Development Team, *Stan Reference Manual*, "Divergent transitions" and "Maximum tree
   depth" (the diagnostics reported after a run).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from minippl.backend import current
from minippl.checks import check_callable, check_count, check_key
from minippl.diagnostics import format_divergences, print_summary
from minippl.distributions.util import shape_of
from minippl.infer.chain_batch import key_batch_size
from minippl.infer.chain_loop import RunStats, max_tree_depth, run_problems
from minippl.infer.chain_programs import ChainPrograms, Settings, is_numeric
from minippl.infer.chains import (
    CHAIN_METHODS,
    Collected,
    Schedule,
    fields_to_collect,
    plan_chains,
)
from minippl.infer.compile_cache import enable_compile_cache
from minippl.infer.progress import ChunkPlan, ProgressHub, stderr_is_terminal

__all__ = ["MCMC", "MCMCWarning"]


class MCMCWarning(UserWarning):
    """Divergences, transitions at the maximum tree depth, or non-finite gradients."""


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
        :func:`minippl.set_host_device_count`, or on a one-device CPU over its cores, a
        host thread (JAX) or a process (NumPy) per chain), ``"vectorized"`` (``vmap`` over
        chains on one device) or ``"sequential"``.
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
        num_warmup = check_count(num_warmup, "num_warmup", "MCMC", minimum=0)
        thinning = check_count(thinning, "thinning", "MCMC")
        num_samples = check_count(num_samples, "num_samples", "MCMC", minimum=thinning)
        num_chains = check_count(num_chains, "num_chains", "MCMC")
        if progress_rate is not None:
            progress_rate = check_count(progress_rate, "progress_rate", "MCMC")
        if postprocess_fn is not None:
            check_callable(postprocess_fn, "postprocess_fn", "MCMC")
        if not hasattr(sampler, "init") or not hasattr(sampler, "sample"):
            raise TypeError(f"MCMC: sampler must be a kernel such as NUTS(model), got {sampler!r}")
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
        self._plan = plan_chains(num_chains, chain_method)
        self._states: dict[str, Any] | None = None
        self._states_flat: dict[str, Any] | None = None
        self._last_state: Any = None
        self._warmup_state: Any = None
        self._stats: RunStats | None = None
        self._args: tuple[Any, ...] = ()
        self._kwargs: dict[str, Any] = {}
        self._hub = ProgressHub()
        self._programs = self._new_programs()
        # Programs compiled from here on (the user's keys and data too) are kept on disk.
        enable_compile_cache()

    def _new_programs(self) -> ChainPrograms:
        settings = Settings(
            self.sampler, self.num_warmup, self.num_samples, self.num_chains, self.thinning,
            self.postprocess_fn, self._sample_field, self._plan,
        )  # fmt: skip
        return ChainPrograms(settings, self._hub)

    @property
    def num_traces(self) -> int:
        """How many times the chain program was traced (compiled) by this object."""
        return self._programs.num_traces

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
            A name that is no latent site, or a value that is not finite, is a ``ValueError``.

        A model with no latent sites runs too: its samples hold only its deterministic sites
        (an empty dict when it has none), as NumPyro's do.
        """
        self._run(rng_key, args, kwargs, extra_fields, init_params, "run", False)

    def _chain_keys(self, rng_key: Any) -> Any:
        backend = current()
        n = self.num_chains
        if n > 1 and key_batch_size(rng_key) is None:
            return self._programs.helper("split_keys", lambda key: backend.split(key, n), n)(
                rng_key
            )
        if n > 1 and shape_of(rng_key)[0] != n:
            raise ValueError(f"rng_key holds {shape_of(rng_key)[0]} keys but num_chains={n}")
        return rng_key

    def _iterations(self, phase: str, collect_warmup: bool, resuming: bool) -> tuple[int, int, int]:
        """Iterations of this call, draws kept per chain, and the first kept iteration
        (NumPyro's thinning: the last draw of every block of ``thinning``)."""
        n, thin = self.num_warmup, self.thinning
        if phase == "warmup":
            return (n, n // thin, n % thin) if collect_warmup else (n, self.num_samples // thin, n)
        warm = 0 if resuming else n
        return warm + self.num_samples, self.num_samples // thin, warm + self.num_samples % thin

    def _collected(self, extra_fields: Sequence[str], state: Any, size: int) -> Collected:
        """What the chain program keeps of this run's data, from ``state`` (or its shapes)."""
        fields, removed = fields_to_collect(
            self._sample_field, self._default_fields, extra_fields, state
        )
        return Collected(self._args, self._kwargs, fields, removed, size)

    def _schedule(self, num_iterations: int, first: int, desc: str) -> Schedule:
        """Chunks of the run and, with a bar on a terminal, the bars started."""
        n = num_iterations
        if not (self.progress_bar and stderr_is_terminal() and n > 0):
            return Schedule(n, first, ChunkPlan(n, every=max(n, 1)), False)
        chunk = ChunkPlan(n, self._programs.seconds_per_iteration, self.progress_rate)
        self._hub.start(self.num_chains, n, self.num_warmup, desc)
        return Schedule(n, first, chunk, True)

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
        check_key(rng_key, f"MCMC.{phase}")
        if not isinstance(extra_fields, list | tuple):
            raise TypeError(f"MCMC.{phase}: extra_fields must be a list of field names")
        enable_compile_cache()
        self._args, self._kwargs = tuple(args), dict(kwargs)
        noted = self._programs.expect(args, kwargs)
        keys = self._chain_keys(rng_key)
        resuming = phase == "run" and self._warmup_state is not None
        num_iterations, size, first = self._iterations(phase, collect_warmup, resuming)
        compiling: list[Callable[[], None]] = []  # waits for the chain program's compile

        def ahead(states: Any) -> None:
            collected = self._collected(extra_fields, states, size)
            compiling.append(self._programs.compile_chains_ahead(states, collected))

        try:
            init_state = self._start(keys, init_params, args, kwargs, resuming, ahead)
            collected = self._collected(extra_fields, init_state, size)
            desc = "warmup" if phase == "warmup" or not resuming else "sample"
            schedule = self._schedule(num_iterations, first, desc)
            last_state, collection, stats = self._programs.execute(
                init_state, collected, schedule, lambda: [wait() for wait in compiling]
            )
        finally:
            for wait in compiling:  # never leave a compile running behind an error
                wait()
            self._hub.close()

        if self.num_chains == 1:
            last_state = backend.tree_map(lambda x: x[0], last_state)
        if phase == "warmup" and not collect_warmup:
            collection = backend.tree_map(_no_draws, collection)
        self._last_state = last_state
        self._states = dict(zip(collected.fields, collection, strict=True))
        self._states_flat = None
        self._stats = RunStats(*(backend.to_numpy(s) for s in stats))
        noted()
        self._warn(phase)

    def _start(
        self,
        keys: Any,
        init_params: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        resuming: bool,
        ahead: Callable[[Any], None],
    ) -> Any:
        """The chains' starting states, with a leading chain axis even for one chain."""
        backend = current()
        if resuming:
            state = self._warmup_state._replace(rng_key=keys)
            if hasattr(self.sampler, "resume"):  # a fresh kernel (a new process) is set up
                one = self.num_chains == 1
                z = getattr(state, self._sample_field)
                first_z = z if one else backend.tree_map(lambda x: x[0], z)
                self.sampler.resume(
                    keys if one else keys[0], first_z, self.num_warmup, args, kwargs
                )
        else:
            state = self._programs.init_states(keys, init_params, args, kwargs, ahead)
        if self.num_chains == 1:
            state = backend.tree_map(lambda x: backend.xp.asarray(x)[None], state)
        return state

    # -- after a run ---------------------------------------------------------------------------
    def _warn(self, phase: str) -> None:
        """State divergences, tree-depth saturation and non-finite gradients, if any."""
        if self._stats is not None:
            problems = run_problems(self._stats, phase, max_tree_depth(self.sampler))
            if problems:
                warnings.warn(problems, MCMCWarning, stacklevel=4)

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

            self._states_flat = self._programs.helper("flatten_draws", flat)(self._states)
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
        state["_hub"] = state["_programs"] = None  # threads' locks and compiled programs
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._hub = ProgressHub()
        self._programs = self._new_programs()


def _no_draws(x: Any) -> Any:
    """``x[:, :0]`` as a host array (slicing on the device would compile a program)."""
    if is_numeric(x):
        return np.zeros(shape_of(x)[:1] + (0,) + shape_of(x)[2:], dtype=np.dtype(x.dtype))
    return x[:, :0]
