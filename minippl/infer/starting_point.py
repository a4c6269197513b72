"""Where a sampler starts: a point whose potential energy and gradient are finite.

Tutorial: "Causal inference: do", where the email model is fitted (``tutorial/s08_causal_do.py``).

:func:`initialize_model` is the whole path from a model to a kernel's inputs, in four steps:

1. :func:`trace_start` runs the model once under ``seed``, with each latent site set by the
   starting strategy (:mod:`.initialization`), and reads off the sites' bijections and the
   values a potential must keep (params, the indices of a subsampled plate).
2. :func:`build_setup` closes the potential (:mod:`.potential`) over the prepared model.
3. :func:`find_valid_initial_params` tries up to :data:`MAX_INIT_TRIES` points, each from a
   fresh split of the key, until one has a finite potential energy and gradient.
4. :func:`check_start` names the sites at fault when none has.

The kernels take the same path through :func:`~minippl.infer.fast_setup.setup_model`, which
adds two speed-ups and nothing else: a set-up traced for shapes only, and the tries run as
one loop inside a compiled program.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from minippl.backend import current
from minippl.distributions.util import shape_of
from minippl.handlers import seed, substitute, trace
from minippl.infer.chain_batch import key_batch_size, rerun_failed_chains
from minippl.infer.initialization import (
    InitStrategy,
    bijection_of,
    bound_strategy,
    init_to_uniform,
    init_to_value,
    strategy_parts,
)
from minippl.infer.potential import (
    Params,
    compute_log_probs,
    get_potential_fn,
    is_frozen,
    latent_transforms,
    potential_energy,
    prepare_model,
    transform_fn,
    unconstrained_substitute_fn,
)
from minippl.messages import Message, Trace

__all__ = [
    "MAX_INIT_TRIES",
    "InitError",
    "ModelInfo",
    "ModelSetup",
    "ParamInfo",
    "find_valid_initial_params",
    "initialize_model",
]

MAX_INIT_TRIES = 100
"""How many starting points :func:`find_valid_initial_params` tries (NumPyro's number)."""


class ParamInfo(NamedTuple):
    """A point in unconstrained space, with its potential energy and gradient."""

    z: Params
    potential_energy: Any
    z_grad: Params


class ModelInfo(NamedTuple):
    """What :func:`initialize_model` returns; a kernel needs nothing else from the model."""

    param_info: ParamInfo
    potential_fn: Callable[..., Any]
    postprocess_fn: Callable[..., Any]
    model_trace: Trace


class InitError(RuntimeError):
    """No starting point with a finite potential energy and gradient was found."""


class StartTrace(NamedTuple):
    """One run of the model under its starting strategy, and what a sampler reads from it."""

    model_trace: Trace | None
    """``None`` where the model was traced for shapes only (see :mod:`.fast_setup`)."""
    transforms: dict[str, Any]
    """The bijection of every latent site (and param) onto its support."""
    replay_model: bool
    """Whether constrained values need the model run again (see :func:`get_potential_fn`)."""
    frozen: Params
    """The values the potential keeps (see :func:`is_frozen`)."""
    params: Params
    """The latent sites' values in unconstrained space, in the model's order."""


def trace_start(
    model: Callable[..., Any],
    rng_key: Any,
    strategy: InitStrategy,
    model_args: tuple[Any, ...],
    model_kwargs: Mapping[str, Any],
) -> StartTrace:
    """Run ``model`` with its latent sites set by ``strategy`` (a bound strategy), drawing
    with keys from ``rng_key``, and read off its transforms and its unconstrained point."""
    seeded = substitute(seed(model, rng_key), substitute_fn=strategy)
    model_trace = trace(seeded).get_trace(*model_args, **model_kwargs)
    transforms, replay_model = latent_transforms(model_trace)
    frozen = {name: site.value for name, site in model_trace.items() if is_frozen(site)}
    constrained = {
        name: site.value
        for name, site in model_trace.items()
        if site.type == "sample" and not site.is_observed
    }
    params = transform_fn(transforms, constrained, invert=True)
    return StartTrace(model_trace, transforms, replay_model, frozen, params)


def _init_to_unconstrained_value(
    site: Message | None = None, values: Mapping[str, Any] | None = None
) -> Any:
    """``init_to_value`` with values already in unconstrained space (see
    :func:`unconstrained_strategy`)."""
    if site is None:
        return functools.partial(_init_to_unconstrained_value, values=values or {})
    values = {} if values is None else values
    name = site.name
    if site.type == "sample" and not site.is_observed and name is not None and name in values:
        return bijection_of(site)(values[name])
    return init_to_uniform(site)


def unconstrained_strategy(
    strategy: InitStrategy, transforms: Mapping[str, Any], replay_model: bool
) -> InitStrategy:
    """``init_to_value`` with its values taken to unconstrained space once, where the
    transforms do not depend on other sites: every try then draws only the other sites, in
    a box, without running the model (NumPyro's shortcut, which its keys follow)."""
    func, options = strategy_parts(strategy)
    if func is not init_to_value or replay_model:
        return strategy
    values = dict(options.get("values", {}))
    unconstrained: InitStrategy = _init_to_unconstrained_value(
        values=transform_fn(transforms, values, invert=True)
    )
    return unconstrained


class Attempt(NamedTuple):
    """One try at a starting point; the search carries the last one."""

    tries: Any
    key: Any
    params: Params
    potential_energy: Any
    z_grad: Params
    is_valid: Any

    def found(self) -> tuple[ParamInfo, Any]:
        return ParamInfo(self.params, self.potential_energy, self.z_grad), self.is_valid


def more_tries(attempt: Attempt) -> Any:
    """Whether the search goes on: no valid point yet, and tries left."""
    return (attempt.tries < MAX_INIT_TRIES) & ~attempt.is_valid


def _split(key: Any) -> tuple[Any, Any]:
    keys = current().split(key)
    return keys[0], keys[1]


def _point_drawer(
    model: Callable[..., Any],
    init_strategy: InitStrategy,
    model_args: tuple[Any, ...],
    model_kwargs: Mapping[str, Any],
    prototype_params: Params | None,
) -> Callable[[Any], tuple[Any, Params]]:
    """``draw(key) -> (next key, unconstrained point)``: one try's point, with NumPyro's keys.

    In general a try runs the model under ``seed`` with the strategy. For a uniform box
    (``init_to_uniform``, or unconstrained values with a box for the rest) whose shapes are
    known, each site is drawn from its own split of the key without running the model.
    """
    func, options = strategy_parts(init_strategy)
    if func is init_to_uniform:
        radius: float | None = float(options.get("radius", 2.0))
        fixed: Params = {}
    elif func is _init_to_unconstrained_value:
        radius, fixed = 2.0, dict(options.get("values", {}))
    else:
        radius = None
    strategy = bound_strategy(init_strategy)

    def run_model(key: Any) -> tuple[Any, Params]:
        key, subkey = _split(key)
        return key, trace_start(model, subkey, strategy, model_args, model_kwargs).params

    def draw_in_box(key: Any) -> tuple[Any, Params]:
        assert radius is not None and prototype_params is not None
        key, subkey = _split(key)
        params = {}
        for name, proto in prototype_params.items():
            if name in fixed:
                params[name] = fixed[name]
            else:
                shape = shape_of(proto)
                params[name] = current().uniform(subkey, shape, minval=-radius, maxval=radius)
                key, subkey = _split(key)
        return key, params

    return run_model if radius is None or prototype_params is None else draw_in_box


def attempt_fn(
    model: Callable[..., Any],
    init_strategy: InitStrategy,
    model_args: tuple[Any, ...],
    model_kwargs: Mapping[str, Any],
    prototype_params: Params | None,
) -> Callable[[Attempt], Attempt]:
    """One try: draw a point, and check that its potential energy and gradient are finite."""
    backend = current()
    xp = backend.xp
    draw = _point_drawer(model, init_strategy, model_args, model_kwargs, prototype_params)
    potential = functools.partial(potential_energy, model, model_args, model_kwargs)
    value_and_grad = backend.value_and_grad(potential)

    def attempt(last: Attempt) -> Attempt:
        key, params = draw(last.key)
        pe, grad = value_and_grad(params)
        flat_grad, _ = backend.ravel_pytree(grad)
        is_valid = xp.isfinite(pe) & xp.all(xp.isfinite(flat_grad))
        return Attempt(last.tries + 1, key, params, pe, grad, is_valid)

    return attempt


def find_valid_initial_params(
    rng_key: Any,
    model: Callable[..., Any],
    *,
    init_strategy: InitStrategy = init_to_uniform,
    model_args: tuple[Any, ...] = (),
    model_kwargs: Mapping[str, Any] | None = None,
    prototype_params: Params | None = None,
) -> tuple[ParamInfo, Any]:
    """Try up to :data:`MAX_INIT_TRIES` starting points; return the first valid one.

    A point is valid when the potential energy and every gradient entry are finite. Returns
    ``(ParamInfo, is_valid)``; the caller decides what an invalid result means.

    The keys follow NumPyro's flow, so on JAX the same key gives the same starting point:
    each try splits the key, and ``init_to_uniform`` (with ``prototype_params`` known) draws
    each site's box uniform from successive splits without running the model.
    """
    backend = current()
    kwargs = {} if model_kwargs is None else dict(model_kwargs)
    attempt = attempt_fn(model, init_strategy, model_args, kwargs, prototype_params)
    last = attempt(Attempt(0, rng_key, {}, 0.0, {}, False))
    # The first try usually works. Only when it does not do the others run, as a loop,
    # which JAX compiles once instead of running every operation of every try on its own.
    if not (backend.is_concrete(last.is_valid) and bool(last.is_valid)):
        last = backend.while_loop(
            more_tries, attempt, last._replace(tries=backend.xp.asarray(last.tries))
        )
    return last.found()


def _explain_invalid(
    model: Callable[..., Any],
    model_args: tuple[Any, ...],
    model_kwargs: Mapping[str, Any],
    info: ParamInfo,
) -> str:
    """Name the sites whose log density (or gradient) is not finite at the last point tried."""
    xp = current().xp
    run = substitute(model, substitute_fn=unconstrained_substitute_fn(info.z))
    bad_density: list[str] = []
    try:
        log_probs, _ = compute_log_probs(run, model_args, model_kwargs, {})
    except Exception as err:  # noqa: BLE001 - the model itself fails: report that instead
        return f"the model raised {type(err).__name__}: {err}"
    for name, value in log_probs.items():
        if not bool(xp.isfinite(value)):
            if name.startswith("_") and name.endswith("_log_det"):
                bad_density.append(f"{name[1:-8]} (log-Jacobian)")
            else:
                bad_density.append(name)
    bad_grad = [
        name for name, g in info.z_grad.items() if not bool(xp.all(xp.isfinite(xp.asarray(g))))
    ]
    parts = []
    if bad_density:
        parts.append(f"the log density is not finite at site(s) {bad_density}")
    if bad_grad:
        parts.append(f"the gradient is not finite for latent site(s) {bad_grad}")
    if not parts:
        parts.append("the potential energy was not finite")
    return "; ".join(parts)


# A model and its data, in the order trace_start takes them (``duplicates`` pairs the two
# signatures by shape).
def check_start(
    model: Callable[..., Any],
    info: ParamInfo,
    is_valid: Any,
    model_args: tuple[Any, ...],
    model_kwargs: Mapping[str, Any],
) -> None:
    """Raise :class:`InitError`, naming the sites at fault, when ``is_valid`` is a known
    ``False`` (under a trace nothing is known yet, and nothing is raised)."""
    backend = current()
    if backend.is_concrete(is_valid) and not bool(backend.xp.all(is_valid)):
        reason = _explain_invalid(model, model_args, model_kwargs, info)
        raise InitError(
            f"Cannot find valid initial parameters after {MAX_INIT_TRIES} tries: {reason}. "
            "Check the model's parameters and data at those sites (e.g. a scale that can be "
            "zero or negative, data outside a distribution's support), or start from known "
            "good values with init_strategy=init_to_value(values={...})."
        )


# -- from a model to a kernel's inputs ---------------------------------------------------------


class ModelSetup(NamedTuple):
    """What one trace of a model tells a sampler: everything but the starting point.

    :meth:`find_start` is then a function of a key and the data alone.
    """

    potential_fn: Callable[..., Any]
    postprocess_fn: Callable[..., Any]
    model_trace: Trace | None
    """The trace it was built from (``None`` when it was traced for shapes only)."""
    prepared: Callable[..., Any]
    """The model with params and plate indices frozen (what the potential runs)."""
    init_strategy: InitStrategy
    prototype: Params
    """Unconstrained latent values of the trace: the shapes a starting point must have."""

    def find_start(
        self, rng_key: Any, model_args: tuple[Any, ...], model_kwargs: Mapping[str, Any]
    ) -> tuple[ParamInfo, Any]:
        """``(ParamInfo, is_valid)`` for this key and data (see find_valid_initial_params)."""
        return find_valid_initial_params(
            rng_key,
            self.prepared,
            init_strategy=self.init_strategy,
            model_args=model_args,
            model_kwargs=model_kwargs,
            prototype_params=self.prototype,
        )

    # :func:`check_start`'s signature less the model (``duplicates`` pairs it with the chain
    # programs' and MCMC's own methods over keys, points and data, alike in shape only).
    def check_start(
        self,
        info: ParamInfo,
        is_valid: Any,
        model_args: tuple[Any, ...],
        model_kwargs: Mapping[str, Any],
    ) -> None:
        """:func:`check_start` for this set-up's model."""
        check_start(self.prepared, info, is_valid, model_args, model_kwargs)


def build_setup(
    model: Callable[..., Any],
    start: StartTrace,
    strategy: InitStrategy,
    *,
    dynamic_args: bool,
    model_args: tuple[Any, ...],
    model_kwargs: Mapping[str, Any],
) -> ModelSetup:
    """The potential, the map back to constrained values and the starting strategy, from
    the model's start trace (``start.model_trace`` may be ``None``: shapes only)."""
    prepared = prepare_model(model, start.frozen)
    potential_fn, postprocess_fn = get_potential_fn(
        prepared,
        start.transforms,
        replay_model=start.replay_model,
        dynamic_args=dynamic_args,
        model_args=model_args,
        model_kwargs=model_kwargs,
    )
    strategy = unconstrained_strategy(strategy, start.transforms, start.replay_model)
    return ModelSetup(
        potential_fn, postprocess_fn, start.model_trace, prepared, strategy, start.params
    )


def initialize_model(
    rng_key: Any,
    model: Callable[..., Any],
    *,
    init_strategy: InitStrategy = init_to_uniform,
    model_args: tuple[Any, ...] = (),
    model_kwargs: Mapping[str, Any] | None = None,
    dynamic_args: bool = False,
) -> ModelInfo:
    """Trace the model, build its potential and find a valid starting point.

    Parameters
    ----------
    rng_key : key for the initial trace and the starting point; a stack of ``n`` keys gives
        ``n`` starting points, each searched from its own key (every leaf of ``param_info``
        gains a leading axis ``n``), and the trace is the first key's, as in NumPyro.
    model : a function that calls minippl primitives.
    init_strategy : per-site strategy from :mod:`minippl.infer.initialization`.
    model_args, model_kwargs : the model's arguments (the data).
    dynamic_args : return ``potential_fn`` and ``postprocess_fn`` as factories of the data,
        ``potential_fn(*args, **kwargs)(z)``, so a compiled sampler takes data as arguments.

    Raises
    ------
    InitError
        when none of :data:`MAX_INIT_TRIES` starting points has a finite potential energy and
        gradient; the message names the sites whose log density is not finite.
    """
    kwargs = {} if model_kwargs is None else dict(model_kwargs)
    strategy = bound_strategy(init_strategy)
    batched = key_batch_size(rng_key) is not None
    start = trace_start(model, rng_key[0] if batched else rng_key, strategy, model_args, kwargs)
    setup = build_setup(
        model,
        start,
        strategy,
        dynamic_args=dynamic_args,
        model_args=model_args,
        model_kwargs=kwargs,
    )
    if batched:
        find = functools.partial(setup.find_start, model_args=model_args, model_kwargs=kwargs)
        info, is_valid = current().vmap(find)(rng_key)
        # A key whose search failed is searched again alone, to name the sites at fault.
        rerun_failed_chains(
            is_valid,
            lambda i: initialize_model(
                rng_key[i],
                model,
                init_strategy=init_strategy,
                model_args=model_args,
                model_kwargs=kwargs,
            ),
        )
    else:
        info, is_valid = setup.find_start(rng_key, model_args, kwargs)
        setup.check_start(info, is_valid, model_args, kwargs)
    assert start.model_trace is not None  # traced eagerly
    return ModelInfo(info, setup.potential_fn, setup.postprocess_fn, start.model_trace)
