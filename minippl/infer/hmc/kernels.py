"""The HMC and NUTS kernels with NumPyro's interface, built from the pure parts.

Tutorial: "Reparameterization: reparam", where NUTS meets the funnel (``tutorial/s09_reparam.py``).

The MCMC driver calls ``kernel.init(key, num_warmup, init_params, model_args, model_kwargs)``
once and ``kernel.sample(state, model_args, model_kwargs)`` per iteration. ``sample`` is a
pure function of the state (a pytree of arrays): it adapts while ``state.i < num_warmup``,
so warmup and sampling share one compiled function, and on JAX it can be jitted and vmapped
with the model arguments traced. Underneath, one transition is a pure function
(:func:`nuts_transition`, :func:`hmc_transition`) of a key, a phase-space point and the
metric, in BlackJAX's shape; adaptation (:mod:`.adaptation`) is applied around it.

Random keys follow NumPyro's flow, so that on JAX a chain gets the draws NumPyro gives it:
``init`` splits ``(key, key_init_model)``, then ``(hmc, warmup, momentum)``; each transition
splits ``(next, momentum, transition)``; the warmup state splits its own key every step.

Deviations from NumPyro 0.22
----------------------------
* ``robust_u_turn=True`` (NUTS): Stan's extra U-turn checks across neighbouring subtrees
  (stan-dev/stan#2800); ``False`` gives NumPyro's trajectories.
* ``dense_shrinkage=True``: early dense mass-matrix estimates are shrunk towards their
  diagonal (see :mod:`.adaptation`); ``False`` gives NumPyro's estimates.
* The step-size heuristic draws its momenta with ``mass_matrix_sqrt``; NumPyro passes the
  inverse mass matrix there, which is wrong unless ``M = I``.
* No ``forward_mode_differentiation`` (the backend seam has reverse mode only).

References
----------
1. R. M. Neal, "MCMC using Hamiltonian dynamics", Handbook of MCMC (2011).
2. M. D. Hoffman, A. Gelman, "The No-U-Turn Sampler", JMLR 15 (2014).
3. M. Betancourt, "A Conceptual Introduction to Hamiltonian Monte Carlo" (2017), appendix A.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from backends import Array, Key
from minippl.backend import current
from minippl.checks import check_between, check_callable, check_count, check_names
from minippl.infer.chain_batch import chain_params, key_batch_size, rerun_failed_chains
from minippl.infer.fast_setup import KernelSetup, setup_model
from minippl.infer.hmc.adaptation import HMCAdaptState, StepSizeSearch, WarmupAdapter
from minippl.infer.hmc.adaptation import find_reasonable_step_size as _search_step_size
from minippl.infer.hmc.constants import MAX_DELTA_ENERGY, MAX_TREE_DEPTH, TARGET_ACCEPT_PROB
from minippl.infer.hmc.integrator import IntegratorState, Step, int_array, velocity_verlet
from minippl.infer.hmc.metrics import MassLayout, Metric, euclidean_metric, make_layout
from minippl.infer.hmc.trajectory import build_tree, fixed_trajectory
from minippl.infer.initialization import init_to_uniform
from minippl.infer.program_cache import shape_key

__all__ = ["HMC", "NUTS", "HMCState", "TransitionInfo", "hmc_transition", "nuts_transition"]


class HMCState(NamedTuple):
    """The sampler state between iterations (NumPyro's fields).

    ``i`` counts iterations (warmup included); ``z`` and ``z_grad`` are pytrees in
    unconstrained space; ``r`` is ``None`` (the momentum is redrawn each iteration);
    ``num_steps`` is the number of leapfrog steps of the last transition; ``accept_prob``
    is its mean acceptance statistic and ``mean_accept_prob`` the running mean over the
    current phase (warmup or sampling).
    """

    i: Array
    z: Any
    z_grad: Any
    potential_energy: Array
    energy: Array
    r: Any
    trajectory_length: Any
    num_steps: Array
    accept_prob: Array
    mean_accept_prob: Array
    diverging: Array
    adapt_state: HMCAdaptState
    rng_key: Key


class TransitionInfo(NamedTuple):
    """What one transition reports besides its new point."""

    energy: Array
    num_steps: Array
    accept_prob: Array
    diverging: Array


# The tree's options pass through to :func:`build_tree` under its own names (``duplicates``
# pairs the two signatures).
def nuts_transition(
    key: Key,
    state: IntegratorState,
    step: Step,
    metric: Metric,
    step_size: Array,
    *,
    max_tree_depth: Any = MAX_TREE_DEPTH,
    checkpoint_slots: int = MAX_TREE_DEPTH,
    robust_u_turn: bool = True,
) -> tuple[IntegratorState, TransitionInfo]:
    """One NUTS transition from ``state`` (momentum drawn): build a tree, take its proposal."""
    tree = build_tree(
        step,
        metric,
        state,
        step_size,
        key,
        max_tree_depth=max_tree_depth,
        checkpoint_slots=checkpoint_slots,
        max_delta_energy=MAX_DELTA_ENERGY,
        robust_u_turn=robust_u_turn,
    )
    proposal = tree.proposal
    new = IntegratorState(proposal.z, state.r, proposal.potential_energy, proposal.z_grad)
    accept_prob = tree.sum_accept_probs / tree.num_proposals
    return new, TransitionInfo(proposal.energy, tree.num_proposals, accept_prob, tree.diverging)


def hmc_transition(
    key: Key,
    state: IntegratorState,
    step: Step,
    metric: Metric,
    step_size: Array,
    *,
    num_steps: Any = None,
    trajectory_length: Any = None,
) -> tuple[IntegratorState, TransitionInfo]:
    """One HMC transition: a fixed-length trajectory and a Metropolis accept/reject [1].

    With ``num_steps`` None, it takes ``ceil(trajectory_length / step_size)`` steps; with a
    ``trajectory_length``, the step size is then shrunk so the length is exact.
    """
    bk = current()
    xp = bk.xp
    if num_steps is None:
        num_steps = int_array(xp.ceil(trajectory_length / step_size))
    if trajectory_length is not None:
        step_size = trajectory_length / num_steps
    end = fixed_trajectory(step, state, step_size, num_steps)
    energy_old = state.potential_energy + metric.kinetic_energy(state.r)
    energy_new = end.potential_energy + metric.kinetic_energy(end.r)
    delta = energy_new - energy_old
    delta = xp.where(xp.isnan(delta), xp.inf, delta)
    accept_prob = xp.minimum(xp.exp(-delta), 1.0)
    accept = bk.bernoulli(key, accept_prob, ())
    new, energy = bk.cond(
        accept, lambda a: a[0], lambda a: a[1], ((end, energy_new), (state, energy_old))
    )
    return new, TransitionInfo(energy, int_array(num_steps), accept_prob, delta > MAX_DELTA_ENERGY)


_MODEL_FUNCTIONS = ("_model", "_potential_fn", "_potential_fn_gen", "_postprocess_fn", "_setups")
"""The attributes of a kernel that hold the model's functions or what was derived from them."""


def _is_param_info(x: Any) -> bool:
    fields = getattr(x, "_fields", ())
    return "potential_energy" in fields and "z_grad" in fields


class HMC:
    """Hamiltonian Monte Carlo with a fixed trajectory length, adapting during warmup.

    Parameters
    ----------
    model : a model with :mod:`minippl` primitives; or give ``potential_fn``.
    potential_fn : ``z -> U(z)`` (a negative log density) over a pytree ``z``; ``init``
        then needs ``init_params``.
    kinetic_fn : ``(inverse_mass_matrix, r) -> K(r)``; default Euclidean.
    step_size : initial leapfrog step size.
    inverse_mass_matrix : initial inverse mass matrix (array, or dict keyed by site-name
        tuples); identity by default.
    adapt_step_size, adapt_mass_matrix : what warmup adapts.
    dense_mass : ``False`` (diagonal), ``True`` (dense), or a list of site-name tuples, each
        a dense block (the other sites share a diagonal block).
    target_accept_prob : the mean acceptance statistic dual averaging aims for.
    num_steps : a fixed number of leapfrog steps (HMC only).
    trajectory_length : integration time per transition (HMC only), ``2 pi`` by default.
    init_strategy : where chains start (see :mod:`minippl.infer.initialization`).
    find_heuristic_step_size : search a reasonable step size at the start of each window.
    regularize_mass_matrix : apply Stan's regularisation to the estimated covariance.
    dense_shrinkage : shrink dense estimates towards their diagonal (minippl extension).
    """

    _algo = "HMC"

    def __init__(
        self,
        model: Callable[..., Any] | None = None,
        potential_fn: Callable[[Any], Array] | None = None,
        kinetic_fn: Callable[[Any, Any], Array] | None = None,
        step_size: float = 1.0,
        inverse_mass_matrix: Any = None,
        adapt_step_size: bool = True,
        adapt_mass_matrix: bool = True,
        dense_mass: bool | Sequence[tuple[str, ...]] = False,
        target_accept_prob: float = TARGET_ACCEPT_PROB,
        num_steps: int | None = None,
        trajectory_length: float | None = 2 * math.pi,
        init_strategy: Callable[..., Any] = init_to_uniform,
        find_heuristic_step_size: bool = False,
        regularize_mass_matrix: bool = True,
        *,
        dense_shrinkage: bool = True,
    ) -> None:
        num_steps = self._checked_arguments(
            model, potential_fn, step_size, target_accept_prob, init_strategy,
            trajectory_length, num_steps, adapt_step_size,
        )  # fmt: skip
        # The options, one a line (``duplicates`` pairs this run with MCMC's and Predictive's
        # constructors by shape: each class keeps its own options).
        self._model = model
        self._potential_fn = potential_fn
        self._kinetic_fn = kinetic_fn
        self._step_size = float(step_size)
        self._inverse_mass_matrix = inverse_mass_matrix
        self._adapt_step_size = adapt_step_size
        self._adapt_mass_matrix = adapt_mass_matrix
        self._dense_mass = dense_mass
        self._target_accept_prob = target_accept_prob
        self._num_steps = num_steps
        self._trajectory_length = None if trajectory_length is None else float(trajectory_length)
        self._init_strategy = init_strategy
        self._find_heuristic_step_size = find_heuristic_step_size
        self._regularize_mass_matrix = regularize_mass_matrix
        self._dense_shrinkage = dense_shrinkage
        # Set by ``init``: static structure the pure functions close over.
        self._potential_fn_gen: Callable[..., Callable[[Any], Array]] | None = None
        self._postprocess_fn: Callable[..., Callable[[Any], Any]] | None = None
        self._layout: MassLayout | None = None
        self._adapter: WarmupAdapter | None = None
        self._num_warmup = 0
        self._vectorized = False
        # Set-ups that depend on shapes only, by the layout of the key and the data.
        self._setups: dict[Any, KernelSetup] = {}

    def _checked_arguments(
        self,
        model: Callable[..., Any] | None,
        potential_fn: Callable[[Any], Array] | None,
        step_size: float,
        target_accept_prob: float,
        init_strategy: Callable[..., Any],
        trajectory_length: float | None,
        num_steps: int | None,
        adapt_step_size: bool,
    ) -> int | None:
        """The constructor's arguments checked where they enter (``minippl.checks``); returns
        ``num_steps`` as an int."""
        if (model is None) == (potential_fn is None):
            raise ValueError("Only one of `model` or `potential_fn` must be specified.")
        where = self._algo
        check_callable(model if model is not None else potential_fn, "model", where)
        check_between(step_size, "step_size", where, 0.0, math.inf)
        check_between(target_accept_prob, "target_accept_prob", where, 0.0, 1.0)
        check_callable(init_strategy, "init_strategy", where)
        if trajectory_length is not None:
            check_between(trajectory_length, "trajectory_length", where, 0.0, math.inf)
        if num_steps is not None:
            num_steps = check_count(num_steps, "num_steps", where)
        if self._algo == "HMC":
            if num_steps is None and trajectory_length is None:
                raise ValueError(
                    "At least one of `num_steps` or `trajectory_length` must be specified."
                )
            if adapt_step_size and num_steps is not None and trajectory_length is not None:
                warnings.warn(
                    "If both `num_steps` and `trajectory_length` are specified step size "
                    "can't be adapted",
                    UserWarning,
                    stacklevel=2,
                )
        return num_steps

    # -- the driver's interface ------------------------------------------------------------

    @property
    def model(self) -> Callable[..., Any] | None:
        return self._model

    @property
    def sample_field(self) -> str:
        return "z"

    @property
    def default_fields(self) -> tuple[str, ...]:
        return ("z", "diverging")

    @property
    def is_ensemble_kernel(self) -> bool:
        return False

    def cache_identity(self) -> dict[str, Any]:
        """The settings that decide this kernel's compiled programs, by name.

        The model's functions, and what the set-up derived from them, are left out: a
        driver identifies those by what they compute (their traced program), not by value.
        """
        return {k: v for k, v in vars(self).items() if k not in _MODEL_FUNCTIONS}

    def get_diagnostics_str(self, state: HMCState) -> str:
        step_size, accept = state.adapt_state.step_size, state.mean_accept_prob
        return f"{state.num_steps} steps of size {step_size:.2e}. acc. prob={accept:.2f}"

    def postprocess_fn(
        self, model_args: tuple[Any, ...] = (), model_kwargs: dict[str, Any] | None = None
    ) -> Callable[[Any], Any]:
        """Unconstrained latent dict to constrained values (deterministic sites included)."""
        if self._postprocess_fn is None:
            return lambda z: z
        return self._postprocess_fn(*model_args, **(model_kwargs or {}))

    def get_potential_fn(
        self, model_args: tuple[Any, ...] = (), model_kwargs: dict[str, Any] | None = None
    ) -> Callable[[Any], Array]:
        """The potential energy ``z -> U(z)`` for these model arguments."""
        if self._potential_fn is not None:
            return self._potential_fn
        if self._potential_fn_gen is None:
            raise RuntimeError("`get_potential_fn` needs `init` to have run first")
        return self._potential_fn_gen(*model_args, **(model_kwargs or {}))

    def refresh(
        self, state: HMCState, model_args: tuple[Any, ...], model_kwargs: dict[str, Any] | None
    ) -> HMCState:
        """Recompute ``potential_energy`` and ``z_grad`` at ``state.z`` for new model arguments.

        ``sample`` trusts the cached values, so continuing a chain on different data needs
        this first (as in NumPyro).
        """
        _, unravel, value_and_grad = self._parts(model_args, model_kwargs or {}, state.z)
        potential_energy, grad = value_and_grad(current().ravel_pytree(state.z)[0])
        return state._replace(potential_energy=potential_energy, z_grad=unravel(grad))

    def init(
        self,
        rng_key: Key,
        num_warmup: int,
        init_params: Any = None,
        model_args: tuple[Any, ...] = (),
        model_kwargs: dict[str, Any] | None = None,
    ) -> HMCState:
        """The state before the first iteration; a stack of keys gives a stack of chains.

        With a model, the starting point comes from ``initialize_model`` unless
        ``init_params`` (unconstrained values, or a ``ParamInfo``) is given.
        """
        bk = current()
        model_kwargs = {} if model_kwargs is None else dict(model_kwargs)
        data = (model_args, model_kwargs)
        if key_batch_size(rng_key) is None:
            start = self.chain_initializer(rng_key, num_warmup, init_params, *data)
            state: HMCState = start(rng_key, init_params, *data)[0]
            return state
        start = self.chain_initializer(rng_key[0], num_warmup, chain_params(init_params, 0), *data)
        in_axes = (0, None if init_params is None else 0, None, None)
        states, is_valid = bk.vmap(start, in_axes=in_axes)(rng_key, init_params, *data)
        rerun_failed_chains(
            is_valid,
            lambda c: self.init(rng_key[c], num_warmup, chain_params(init_params, c), *data),
        )
        self._vectorized = True
        return states  # type: ignore[no-any-return]

    def resume(
        self,
        rng_key: Key,
        z: Any,
        num_warmup: int,
        model_args: tuple[Any, ...],
        model_kwargs: dict[str, Any],
    ) -> None:
        """Set the kernel up to continue a chain at ``z`` (one chain's values), if it was never
        set up here: a state unpickled in a new process meets a fresh kernel. The set-up
        depends on the model and the shapes only, so the draws equal those of a run that
        continued in the first process."""
        if self._adapter is None:
            self.chain_initializer(rng_key, num_warmup, z, model_args, model_kwargs)

    def chain_initializer(
        self,
        rng_key: Key,
        num_warmup: int,
        init_params: Any,
        model_args: tuple[Any, ...],
        model_kwargs: dict[str, Any],
    ) -> Callable[..., tuple[HMCState, Array]]:
        """Set the kernel up for this model and data, and return one chain's initialisation.

        The set-up traces the model once (sites, supports, shapes), for shapes only where
        nothing it keeps depends on the trace's values (``setup_model``). What it returns,
        ``(key, init_params, model_args, model_kwargs) -> (state, is_valid)``, is pure: a
        driver can compile it and map it over chains in one program instead of running every
        chain's search for a starting point operation by operation. ``is_valid`` is false
        for a chain with no finite starting point; run eagerly, that chain raises
        :class:`~minippl.infer.starting_point.InitError` naming the sites at fault.
        """
        bk = current()
        self._vectorized = False
        model_setup = None
        if self._model is not None:
            model_setup = self._model_setup(self._model, rng_key, model_args, model_kwargs)
            self._potential_fn_gen = model_setup.potential_fn
            self._postprocess_fn = model_setup.postprocess_fn
            z = model_setup.prototype if init_params is None else init_params
            if isinstance(init_params, dict):
                check_names(init_params, model_setup.prototype, "init_params", "MCMC.run", True)
        elif init_params is None:
            raise ValueError("Valid value of `init_params` must be provided with `potential_fn`.")
        else:
            z = init_params
        self._setup(z.z if _is_param_info(z) else z, num_warmup)  # type: ignore[union-attr]

        def start(
            key: Key, params: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> tuple[HMCState, Array]:
            key, key_init_model = bk.split(key)
            is_valid = bk.xp.asarray(True)
            if params is None:
                assert model_setup is not None
                params, is_valid = model_setup.find_start(key_init_model, args, kwargs)
                model_setup.check_start(params, is_valid, args, kwargs)
            return self._init_state(params, key, args, kwargs), is_valid

        return start

    def _model_setup(
        self,
        model: Callable[..., Any],
        rng_key: Key,
        model_args: tuple[Any, ...],
        model_kwargs: dict[str, Any],
    ) -> KernelSetup:
        """The model's set-up for data of this layout (traced for shapes only where it can)."""
        layout = (shape_key(rng_key), shape_key((model_args, model_kwargs)))
        model_setup = self._setups.get(layout)
        if model_setup is None:
            model_setup = setup_model(
                rng_key,
                model,
                init_strategy=self._init_strategy,
                model_args=model_args,
                model_kwargs=model_kwargs,
                dynamic_args=True,
                shapes_only=True,
                split_key=True,
            )
            if model_setup.model_trace is None:
                # Shapes only: the next run with data of this layout reuses it, as the
                # driver reuses its compiled programs.
                self._setups[layout] = model_setup
        return model_setup

    def sample(
        self,
        state: HMCState,
        model_args: tuple[Any, ...] = (),
        model_kwargs: dict[str, Any] | None = None,
    ) -> HMCState:
        """One iteration; adapts while ``state.i < num_warmup``."""
        model_kwargs = {} if model_kwargs is None else model_kwargs
        if self._vectorized:
            fn = current().vmap(self._sample, in_axes=(0, None, None))
            result: HMCState = fn(state, model_args, model_kwargs)
            return result
        return self._sample(state, model_args, model_kwargs)

    # -- internals -------------------------------------------------------------------------

    def _setup(self, z: Any, num_warmup: int) -> None:
        """Static structure: the mass-matrix blocks and the warmup adapter."""
        dense_mass = self._dense_mass
        if self._model is not None and isinstance(dense_mass, bool):
            # With a model the blocks are keyed by site names, sorted (NumPyro's convention).
            dense_mass = [tuple(sorted(z))] if dense_mass else []
        self._layout = make_layout(z, dense_mass, self._inverse_mass_matrix)
        self._num_warmup = int(num_warmup)
        self._adapter = WarmupAdapter(
            self._num_warmup,
            self._layout,
            adapt_step_size=self._adapt_step_size,
            adapt_mass_matrix=self._adapt_mass_matrix,
            target_accept_prob=self._target_accept_prob,
            regularize_mass_matrix=self._regularize_mass_matrix,
            dense_shrinkage=self._dense_shrinkage,
        )

    def _parts(
        self, model_args: tuple[Any, ...], model_kwargs: dict[str, Any], z: Any
    ) -> tuple[Array, Callable[[Array], Any], Callable[[Array], tuple[Array, Array]]]:
        """Flat ``z``, its unravel, and the flat potential's value-and-gradient."""
        bk = current()
        potential_fn = self.get_potential_fn(model_args, model_kwargs)
        z_flat, unravel = bk.ravel_pytree(z)
        value_and_grad = bk.value_and_grad(lambda x: potential_fn(unravel(x)))
        return z_flat, unravel, value_and_grad

    def _metric(self, adapt: Any, unravel: Callable[[Array], Any]) -> Metric:
        assert self._layout is not None, "`init` must be called before `sample`"
        return euclidean_metric(
            self._layout,
            adapt.inverse_mass_matrix,
            adapt.mass_matrix_sqrt,
            self._kinetic_fn,
            unravel,
        )

    def _search(
        self,
        value_and_grad: Callable[[Array], tuple[Array, Array]],
        at: IntegratorState,
        unravel: Callable[[Array], Any],
    ) -> StepSizeSearch | None:
        """The step-size heuristic at point ``at``, if enabled."""
        if not self._find_heuristic_step_size:
            return None
        layout = self._layout
        assert layout is not None

        def search(step_size: Array, inverse: Any, sqrt: Any, key: Key) -> Array:
            metric = euclidean_metric(layout, inverse, sqrt, self._kinetic_fn, unravel)
            step = velocity_verlet(value_and_grad, metric.velocity)
            return _search_step_size(step, metric, at, step_size, key)

        return search

    def _init_state(
        self, init_params: Any, rng_key: Key, model_args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> HMCState:
        bk = current()
        xp = bk.xp
        assert self._adapter is not None
        if _is_param_info(init_params):
            z, potential_energy, z_grad = (
                init_params.z,
                init_params.potential_energy,
                init_params.z_grad,
            )
        else:
            z, potential_energy, z_grad = init_params, None, None
        z_flat, unravel, value_and_grad = self._parts(model_args, kwargs, z)
        if potential_energy is None or z_grad is None:
            potential_energy, grad_flat = value_and_grad(z_flat)
        else:
            grad_flat = bk.ravel_pytree(z_grad)[0]
        dtype = bk.float_dtype()
        step_size = xp.asarray(self._step_size, dtype=dtype)
        length = self._trajectory_length
        trajectory_length = None if length is None else xp.asarray(length, dtype=dtype)
        key_hmc, key_adapt, key_momentum = bk.split(rng_key, 3)
        at = IntegratorState(z_flat, None, potential_energy, grad_flat)
        adapt = self._adapter.init(
            at,
            key_adapt,
            step_size,
            self._inverse_mass_matrix,
            self._search(value_and_grad, at, unravel),
        )
        metric = self._metric(adapt, unravel)
        r = metric.sample_momentum(key_momentum)
        zero = xp.zeros((), dtype=dtype)
        return HMCState(
            i=int_array(0),
            z=z,
            z_grad=unravel(grad_flat),
            potential_energy=potential_energy,
            energy=potential_energy + metric.kinetic_energy(r),
            r=None,
            trajectory_length=trajectory_length,
            num_steps=int_array(0),
            accept_prob=zero,
            mean_accept_prob=zero,
            diverging=xp.asarray(False),
            adapt_state=adapt,
            rng_key=key_hmc,
        )

    def _transition(
        self,
        key: Key,
        state: IntegratorState,
        step: Step,
        metric: Metric,
        hmc_state: HMCState,
    ) -> tuple[IntegratorState, TransitionInfo]:
        assert self._layout is not None
        num_steps: Any = self._num_steps
        if num_steps is None and self._layout.size == 0:
            num_steps = 1  # nothing to move: one step is enough
        return hmc_transition(
            key,
            state,
            step,
            metric,
            hmc_state.adapt_state.step_size,
            num_steps=num_steps,
            trajectory_length=hmc_state.trajectory_length,
        )

    def _sample(
        self, state: HMCState, model_args: tuple[Any, ...], model_kwargs: dict[str, Any]
    ) -> HMCState:
        bk = current()
        xp = bk.xp
        adapter = self._adapter
        assert adapter is not None, "`init` must be called before `sample`"
        z_flat, unravel, value_and_grad = self._parts(model_args, model_kwargs, state.z)
        rng_key, key_momentum, key_transition = bk.split(state.rng_key, 3)
        metric = self._metric(state.adapt_state, unravel)
        r = metric.sample_momentum(key_momentum) if state.r is None else bk.ravel_pytree(state.r)[0]
        start = IntegratorState(z_flat, r, state.potential_energy, bk.ravel_pytree(state.z_grad)[0])
        step = velocity_verlet(value_and_grad, metric.velocity)
        new, info = self._transition(key_transition, start, step, metric, state)

        warming_up = state.i < self._num_warmup
        search = self._search(value_and_grad, new, unravel)
        adapt_state: HMCAdaptState = bk.apply_if(
            warming_up,
            lambda a: adapter.update(state.i, info.accept_prob, new, a, search),
            state.adapt_state,
        )
        itr = state.i + 1
        # The running mean restarts when sampling starts.
        n = xp.where(warming_up, itr, itr - self._num_warmup)
        mean_accept_prob = state.mean_accept_prob + (info.accept_prob - state.mean_accept_prob) / n
        return HMCState(
            i=itr,
            z=unravel(new.z),
            z_grad=unravel(new.z_grad),
            potential_energy=new.potential_energy,
            energy=info.energy,
            r=None if state.r is None else unravel(new.r),
            trajectory_length=state.trajectory_length,
            num_steps=info.num_steps,
            accept_prob=info.accept_prob,
            mean_accept_prob=mean_accept_prob,
            diverging=info.diverging,
            adapt_state=adapt_state,
            rng_key=rng_key,
        )


class NUTS(HMC):
    """The No-U-Turn Sampler: HMC whose trajectory length is chosen per transition [2].

    Parameters are :class:`HMC`'s (without ``num_steps``; ``trajectory_length`` is unused),
    plus:

    max_tree_depth : the most tree doublings, ``2**d - 1`` leapfrog steps; a pair
        ``(warmup, sampling)`` sets the two phases apart.
    robust_u_turn : Stan's extra U-turn checks across neighbouring subtrees (minippl
        extension; ``False`` gives NumPyro's trajectories).
    """

    _algo = "NUTS"

    # HMC's parameters written out again, in NumPyro's positional order (``max_tree_depth``
    # where HMC has ``num_steps``), so positional calls and ``help(NUTS)`` match NumPyro's.
    def __init__(
        self,
        model: Callable[..., Any] | None = None,
        potential_fn: Callable[[Any], Array] | None = None,
        kinetic_fn: Callable[[Any, Any], Array] | None = None,
        step_size: float = 1.0,
        inverse_mass_matrix: Any = None,
        adapt_step_size: bool = True,
        adapt_mass_matrix: bool = True,
        dense_mass: bool | Sequence[tuple[str, ...]] = False,
        target_accept_prob: float = TARGET_ACCEPT_PROB,
        trajectory_length: float | None = None,
        max_tree_depth: int | tuple[int, int] = MAX_TREE_DEPTH,
        init_strategy: Callable[..., Any] = init_to_uniform,
        find_heuristic_step_size: bool = False,
        regularize_mass_matrix: bool = True,
        *,
        robust_u_turn: bool = True,
        dense_shrinkage: bool = True,
    ) -> None:
        super().__init__(
            model=model, potential_fn=potential_fn, kinetic_fn=kinetic_fn, step_size=step_size,
            inverse_mass_matrix=inverse_mass_matrix, adapt_step_size=adapt_step_size,
            adapt_mass_matrix=adapt_mass_matrix, dense_mass=dense_mass,
            target_accept_prob=target_accept_prob, trajectory_length=trajectory_length,
            init_strategy=init_strategy, find_heuristic_step_size=find_heuristic_step_size,
            regularize_mass_matrix=regularize_mass_matrix, dense_shrinkage=dense_shrinkage,
        )  # fmt: skip
        depth = max_tree_depth if isinstance(max_tree_depth, tuple) else (max_tree_depth,) * 2
        warmup, sampling = (check_count(d, "max_tree_depth", "NUTS") for d in depth)
        self._tree_depths = (warmup, sampling)
        self._robust_u_turn = robust_u_turn

    @property
    def max_tree_depth(self) -> tuple[int, int]:
        """``(warmup, sampling)`` maximum tree depths."""
        return self._tree_depths

    def _transition(
        self,
        key: Key,
        state: IntegratorState,
        step: Step,
        metric: Metric,
        hmc_state: HMCState,
    ) -> tuple[IntegratorState, TransitionInfo]:
        xp = current().xp
        warmup_depth, sampling_depth = self._tree_depths
        depth = xp.where(hmc_state.i < self._num_warmup, warmup_depth, sampling_depth)
        return nuts_transition(
            key,
            state,
            step,
            metric,
            hmc_state.adapt_state.step_size,
            max_tree_depth=depth,
            checkpoint_slots=max(warmup_depth, sampling_depth),
            robust_u_turn=self._robust_u_turn,
        )
