"""Stochastic variational inference: fit a guide's ``param`` sites by descending ``-ELBO``.

Tutorial: "Variational inference: SVI from the handlers" (``tutorial/s14_svi.py``); the
loss itself is in :mod:`minippl.infer.elbo`.

The params live in unconstrained space: a ``param(..., constraint=positive)`` is optimised
as ``log`` of its value and handed to the model and guide through ``biject_to``, so no step
can leave the support. On JAX one :meth:`SVI.update` is one compiled program (kept on the
``SVI`` object, so a second ``run`` reuses it) and :meth:`SVI.run` steps in compiled chunks
of many steps; on NumPy every step runs eagerly, line by line.

>>> import minippl as numpyro, minippl.distributions as dist
>>> from minippl.optim import Adam
>>> from minippl.infer import SVI, Trace_ELBO
>>> def model():
...     numpyro.sample("z", dist.Normal(1.0, 1.0))
>>> def guide():
...     numpyro.sample("z", dist.Normal(numpyro.param("m", 0.0), 1.0))
>>> svi = SVI(model, guide, Adam(0.1), Trace_ELBO())
>>> result = svi.run(0, 300, progress_bar=False)
>>> 0.5 < float(result.params["m"]) < 1.5  # the posterior mean is 1
True
"""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Callable, Hashable, Mapping
from typing import Any, NamedTuple

import numpy as np

from minippl.backend import current
from minippl.checks import (
    check_hashable,
    check_num_steps,
    check_optimizer,
    check_param_init,
    check_reverse_mode,
)
from minippl.distributions import constraints
from minippl.distributions.transforms import biject_to
from minippl.handlers import replay, seed, substitute, trace
from minippl.handlers.inspection import as_key
from minippl.infer.compile_cache import enable_compile_cache
from minippl.infer.elbo import ELBO
from minippl.optim import Optimizer, optax_to_minippl


class SVIState(NamedTuple):
    """The optimizer's state (params unconstrained inside), NumPyro's ``mutable_state``
    slot (always ``None``: minippl has no ``mutable`` sites) and the key of the next step."""

    optim_state: Any
    mutable_state: Any
    rng_key: Any


class SVIRunResult(NamedTuple):
    """What :meth:`SVI.run` returns: constrained params, the last state, the loss per step."""

    params: dict[str, Any]
    state: SVIState
    losses: Any


class NonFiniteLossError(FloatingPointError):
    """The loss (or the updated params) stopped being finite during :meth:`SVI.run`.

    ``step`` is the 1-based step that failed; ``result`` holds the params and state at
    which the last finite loss was computed, and the losses up to that one, so nothing
    fitted is lost.
    """

    def __init__(self, step: int, loss: float, result: SVIRunResult) -> None:
        super().__init__(
            f"SVI.run: the loss at step {step} is {loss} (or that step made a param "
            "non-finite); stopped there. The error's .result keeps the params and state of "
            "the last finite loss. Lower the step size, check the model's supports, or pass "
            "stable_update=True to skip such steps."
        )
        self.step = step
        self.result = result


class SVI:
    """Stochastic variational inference with NumPyro's API.

    Parameters
    ----------
    model, guide : programs with the same arguments; the guide samples every latent site
        of the model and holds the ``param`` sites to fit.
    optim : a :mod:`minippl.optim` optimizer, or (JAX) an optax gradient transformation.
    loss : an :class:`~minippl.infer.elbo.ELBO`, e.g. ``Trace_ELBO()``.
    static_kwargs : keyword arguments passed to model and guide on every call.
    """

    def __init__(
        self,
        model: Callable[..., Any],
        guide: Callable[..., Any],
        optim: Any,
        loss: ELBO,
        **static_kwargs: Any,
    ) -> None:
        self.model = model
        self.guide = guide
        self.loss = loss
        self.static_kwargs = static_kwargs
        check_optimizer(optim, "SVI")
        self.optim = optim if isinstance(optim, Optimizer) else optax_to_minippl(optim)
        self.transforms: dict[str, Any] = {}
        self._programs: dict[Hashable, Callable[..., Any]] = {}
        self._constrain_program: Callable[..., Any] | None = None

    # -- setting up ---------------------------------------------------------------------------
    def init(
        self, rng_key: Any, *args: Any, init_params: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> SVIState:
        """The state before the first step: every ``param`` site of guide and model, at its
        initial value (or ``init_params[name]``, constrained), moved to unconstrained space.

        Keys split as in NumPyro: ``(next, model, guide) = split(rng_key, 3)``.
        """
        enable_compile_cache()  # compiled steps are kept on disk for the next process
        backend = current()
        keys = backend.split(as_key(rng_key), 3)
        guide_run: Callable[..., Any] = seed(self.guide, keys[2])
        if init_params is not None:
            guide_run = substitute(guide_run, data=dict(init_params))
        all_kwargs = {**kwargs, **self.static_kwargs}
        guide_trace = trace(guide_run).get_trace(*args, **all_kwargs)
        guide_params = {n: s.value for n, s in guide_trace.items() if s.type == "param"}
        if init_params is not None:
            guide_params.update(init_params)
        model_run = substitute(
            replay(seed(self.model, keys[1]), trace=guide_trace),
            substitute_fn=lambda msg: guide_params.get(msg.name) if msg.name else None,
        )
        model_trace = trace(model_run).get_trace(*args, **all_kwargs)
        params, self.transforms = _unconstrained_params(model_trace, guide_trace)
        _warn_discrete_latents(model_trace, self.loss)
        # Strongly typed arrays (a Python float's array is "weak" on JAX): the state that
        # init returns and the one a step returns then compile to the same program.
        params = backend.tree_map(lambda x: backend.xp.asarray(x, dtype=x.dtype), params)
        return SVIState(self.optim.init(params), None, keys[0])

    def get_params(self, svi_state: SVIState) -> dict[str, Any]:
        """The constrained params the state holds (on JAX by one compiled program: the
        transforms op by op would cost more than many steps of a small model)."""
        if self._constrain_program is None:
            self._constrain_program = current().jit(self._constrain)
        return self._constrain_program(self.optim.get_params(svi_state.optim_state))  # type: ignore[no-any-return]

    def _constrain(self, unconstrained: Mapping[str, Any]) -> dict[str, Any]:
        return {name: self.transforms[name](value) for name, value in unconstrained.items()}

    # -- one step ------------------------------------------------------------------------------
    def _loss_fn(self, step_key: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
        """``-ELBO`` as a function of the unconstrained params, for ``value_and_grad``."""

        def loss_fn(unconstrained: Mapping[str, Any]) -> tuple[Any, None]:
            params = self._constrain(unconstrained)
            value = self.loss.loss(
                step_key, params, self.model, self.guide, *args, **kwargs, **self.static_kwargs
            )
            return value, None

        return loss_fn

    def _step(
        self, svi_state: SVIState, args: tuple[Any, ...], kwargs: Mapping[str, Any], stable: bool
    ) -> tuple[SVIState, Any]:
        """One step, uncompiled: ``(next, step) = split(key)`` as in NumPyro, then the
        optimizer's update at ``-ELBO``'s gradient."""
        if not self.transforms:
            raise RuntimeError("SVI: call init (or run) before update")
        keys = current().split(svi_state.rng_key)
        loss_fn = self._loss_fn(keys[1], args, kwargs)
        if stable:
            (loss, _), optim_state = self.optim.eval_and_stable_update(
                loss_fn, svi_state.optim_state
            )
        else:
            (loss, _), optim_state = self.optim.eval_and_update(loss_fn, svi_state.optim_state)
        return SVIState(optim_state, svi_state.mutable_state, keys[0]), loss

    def update(
        self,
        svi_state: SVIState,
        *args: Any,
        forward_mode_differentiation: bool = False,
        **kwargs: Any,
    ) -> tuple[SVIState, Any]:
        """One step of SVI: returns the new state and the loss at the old params.

        ``forward_mode_differentiation`` is NumPyro's switch; only reverse mode (``False``)
        is available here (the backend protocol has one gradient)."""
        check_reverse_mode(forward_mode_differentiation, "SVI")
        return self._program("update", args, kwargs)(svi_state, args, kwargs)  # type: ignore[no-any-return]

    def stable_update(
        self,
        svi_state: SVIState,
        *args: Any,
        forward_mode_differentiation: bool = False,
        **kwargs: Any,
    ) -> tuple[SVIState, Any]:
        """As :meth:`update`, but a step with a non-finite loss or gradient is skipped (the
        state is returned unchanged, the loss as NaN)."""
        check_reverse_mode(forward_mode_differentiation, "SVI")
        return self._program("stable", args, kwargs)(svi_state, args, kwargs)  # type: ignore[no-any-return]

    def evaluate(self, svi_state: SVIState, *args: Any, **kwargs: Any) -> Any:
        """``-ELBO`` at the state's params, with the key the next :meth:`update` would use."""
        step_key = current().split(svi_state.rng_key)[1]
        unconstrained = self.optim.get_params(svi_state.optim_state)
        return self._loss_fn(step_key, args, kwargs)(unconstrained)[0]

    # -- compiled programs ---------------------------------------------------------------------
    def _program(
        self, kind: str, args: tuple[Any, ...], kwargs: Mapping[str, Any], chunk: int = 0
    ) -> Callable[..., Any]:
        """The jitted program of one step (``kind`` "update" or "stable") or of a chunk of
        steps, for these arguments. Arrays are traced; anything else (an int size, ``None``)
        is fixed into the program and part of its key, as a ``static_argnums`` would be."""
        statics = _static_parts(args, kwargs)
        key = (kind, chunk, statics)
        program = self._programs.get(key)
        if program is None:
            enable_compile_cache()  # what compiles here is kept on disk for the next process
            stable = kind == "stable"
            if chunk:
                program = current().jit(self._chunk_fn(chunk, stable, statics))
            else:
                program = current().jit(self._step_fn(stable, statics))
            self._programs[key] = program
        if chunk:
            return lambda state, args, kwargs, n: program(state, _dynamic_parts(args, kwargs), n)
        return lambda state, args, kwargs: program(state, _dynamic_parts(args, kwargs))

    def _step_fn(self, stable: bool, statics: Any) -> Callable[..., Any]:
        def step(state: SVIState, dynamic: Any) -> tuple[SVIState, Any]:
            args, kwargs = _join(statics, dynamic)
            return self._step(state, args, kwargs, stable)

        return step

    def _chunk_fn(self, size: int, stable: bool, statics: Any) -> Callable[..., Any]:
        """Up to ``size`` steps in one program, the first ``n`` of them (``n`` is an
        argument, so a shorter last chunk, and a replay of part of a chunk, reuse the
        program). It stops after the first step whose loss or new params are not finite and
        returns that step's index (else -1), with the state the last step made and the
        losses. The states a failed run keeps are found again by replaying (see
        :meth:`_stopped`), so the loop carries one state, not the last few."""
        backend = current()
        xp = backend.xp

        def chunk(state: SVIState, dynamic: Any, n: Any) -> Any:
            args, kwargs = _join(statics, dynamic)

            def going(carry: Any) -> Any:
                i, _, _, failed_at = carry
                return (i < n) & (failed_at < 0)

            def body(carry: Any) -> Any:
                i, old, losses, failed_at = carry
                new, loss = self._step(old, args, kwargs, stable)
                new_params = backend.ravel_pytree(self.optim.get_params(new.optim_state))[0]
                ok = (xp.isfinite(loss) | stable) & xp.all(xp.isfinite(new_params))
                failed_at = xp.where(ok, failed_at, i)
                return i + 1, new, backend.index_update(losses, i, loss), failed_at

            losses = xp.full((size,), xp.nan, dtype=backend.float_dtype())
            start = (xp.asarray(0, "int32"), state, losses, xp.asarray(-1, "int32"))
            _, last, losses, failed_at = backend.while_loop(going, body, start)
            return last, losses, failed_at

        return chunk

    # -- the loop ------------------------------------------------------------------------------
    def run(
        self,
        rng_key: Any,
        num_steps: int,
        *args: Any,
        progress_bar: bool = True,
        stable_update: bool = False,
        init_state: SVIState | None = None,
        init_params: Mapping[str, Any] | None = None,
        forward_mode_differentiation: bool = False,
        **kwargs: Any,
    ) -> SVIRunResult:
        """``num_steps`` steps from ``init_state`` (or from :meth:`init` with ``rng_key``).

        The steps run in compiled chunks (20 chunks with the bar, one without); the bar
        shows the running loss between chunks and never changes the result. A non-finite
        loss raises :class:`NonFiniteLossError` naming the step, with the last finite state
        in it (with ``stable_update=True`` such steps are skipped instead, as in NumPyro).
        """
        check_reverse_mode(forward_mode_differentiation, "SVI")
        num_steps = check_num_steps(num_steps, "SVI.run")
        state = init_state
        if state is None:
            state = self.init(rng_key, *args, init_params=init_params, **kwargs)
        size = max(1, -(-num_steps // 20)) if progress_bar else num_steps
        kind = "stable" if stable_update else "update"
        program = self._program(kind, args, kwargs, chunk=size)
        bar = _progress(num_steps) if progress_bar else None
        try:
            state, losses = self._run_chunks(program, state, args, kwargs, num_steps, size, bar)
        finally:
            if bar is not None:
                bar.close()
        return SVIRunResult(self.get_params(state), state, losses)

    def _run_chunks(
        self,
        program: Callable[..., Any],
        state: SVIState,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        num_steps: int,
        size: int,
        bar: Any,
    ) -> tuple[SVIState, Any]:
        """The chunks of a run, one after another: the last state and the losses."""
        chunks: list[Any] = []  # each chunk's losses
        starts = deque([(0, state)], maxlen=2)  # (step, state) where the last two chunks began
        done = 0
        while done < num_steps:
            n = min(size, num_steps - done)
            state, chunk_losses, failed_at = program(state, args, kwargs, n)
            bad = int(failed_at)
            if bad >= 0 or bar is not None:
                chunk_losses = np.asarray(current().to_numpy(chunk_losses))[:n]
            if bad >= 0:
                found = np.concatenate([*chunks, chunk_losses[: bad + 1]])

                def replay(state: SVIState, steps: int) -> SVIState:
                    return program(state, args, kwargs, steps)[0]  # type: ignore[no-any-return]

                raise self._stopped(found, list(starts), replay)
            chunks.append(chunk_losses)
            done += n
            starts.append((done, state))
            if bar is not None:
                bar.update(n)
                bar.set_postfix_str(
                    f"init loss: {chunks[0][0]:.4f}, avg. loss: {np.mean(chunk_losses):.4f}"
                )
        if len(chunks) == 1 and bar is None:
            return state, chunks[0]  # one chunk of exactly num_steps: the program's own array
        return state, current().xp.asarray(np.concatenate(chunks))

    def _stopped(
        self,
        losses: Any,
        starts: list[tuple[int, SVIState]],
        replay: Callable[[SVIState, int], SVIState],
    ) -> NonFiniteLossError:
        """The error for a run stopped at the last of ``losses``, holding the state at which
        the last finite loss was computed: the failing step's own state when its loss was
        finite (the update made a param non-finite), else the state one step before.

        That state is found again by running the chunk's program from the start of a chunk
        (``starts``, the last two: the state may be the last of the chunk before) for the
        steps in between (``replay(state, steps)``); the same program from the same state
        makes the same numbers.
        """
        failed = len(losses) - 1
        finite = losses if np.isfinite(losses[-1]) else losses[:-1]
        at = max(len(finite) - 1, 0)  # the step whose loss is the last finite one
        begun, state = [start for start in starts if start[0] <= at][-1]
        kept = replay(state, at - begun) if at > begun else state
        result = SVIRunResult(self.get_params(kept), kept, np.asarray(finite))
        return NonFiniteLossError(failed + 1, float(losses[-1]), result)


# -- helpers --------------------------------------------------------------------------------------


def _progress(total: int) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="SVI", leave=True)


def _is_array(x: Any) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype")


def _static_parts(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Hashable:
    """The arguments that are not arrays, by position and name (they key the program)."""
    fixed = tuple((i, a) for i, a in enumerate(args) if not _is_array(a))
    named = tuple(sorted((k, v) for k, v in kwargs.items() if not _is_array(v)))
    return (len(args), *check_hashable((fixed, named), "SVI"))


def _dynamic_parts(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    return (
        {i: a for i, a in enumerate(args) if _is_array(a)},
        {k: v for k, v in kwargs.items() if _is_array(v)},
    )


def _join(statics: Any, dynamic: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    num_args, fixed, named = statics
    positional = dict(fixed) | dynamic[0]
    return tuple(positional[i] for i in range(num_args)), {**dict(named), **dynamic[1]}


def _unconstrained_params(
    model_trace: Any, guide_trace: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Each param site's value moved to unconstrained space, and the bijection back.

    A guide's param wins over the model's of the same name (NumPyro's order). An initial
    value outside its constraint is an error naming the param.
    """
    backend = current()
    params: dict[str, Any] = {}
    transforms: dict[str, Any] = {}
    for site in [*model_trace.values(), *guide_trace.values()]:
        if site.type != "param":
            continue
        constraint = site.kwargs.get("constraint", constraints.real)
        value = backend.xp.asarray(site.value)
        check_param_init(site.name, value, constraint)
        transform = biject_to(constraint)
        transforms[site.name] = transform
        params[site.name] = transform.inv(value)
    return params, transforms


def _warn_discrete_latents(model_trace: Any, loss: ELBO) -> None:
    for name, site in model_trace.items():
        if site.type != "sample" or site.is_observed or loss.can_infer_discrete:
            continue
        if getattr(site.fn, "is_discrete", False):
            warnings.warn(
                f"SVI with {type(loss).__name__}: site {name!r} is a discrete latent variable; "
                "its gradient has no score-function term and is biased (as in NumPyro)",
                UserWarning,
                stacklevel=3,
            )
