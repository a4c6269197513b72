"""One runner per sampler, each returning the same figures for one timed call.

A runner is set up once per model (``setup``), then called with a seed (``run``).  ``run``
times exactly what a user waits for (``MCMC.run`` and fetching the draws, or BlackJAX's
jitted warmup and sampling), and returns the draws of the latent sites, the gradient
evaluations (leapfrog steps, warmup and sampling, all chains), and the divergences after
warmup.  ``gradient_time`` gives the sampler's physical floor: one compiled gradient of
the potential it samples.

Samplers (names for ``--samplers``):

- ``minippl-vectorized``, ``minippl-sequential``: minippl's NUTS on the JAX backend.
- ``minippl-numpy``: minippl's NUTS on the NumPy backend (small models only).
- ``numpyro-vectorized``, ``numpyro-sequential``: NumPyro NUTS, progress bar off.
- ``blackjax``: BlackJAX NUTS after ``window_adaptation``, chains vmapped in one jit.

The first call of each runner (``first_call``) is the user's path, one ``MCMC.run``; its
compile time is kept.  The timed repeats (``run``) call ``MCMC.warmup(collect_warmup=True)``
then ``MCMC.run`` from the post-warmup state: ``MCMC.run`` alone reports ``num_steps`` for
the kept draws only, and the pair runs the very same chains (same key, identical draws),
so the warmup's steps are counted at no extra cost.  NumPyro traces and compiles its loop
again on every call; the compile clock takes that out of the sampling time.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from benchmarks.metrics import Clock, compile_clock, gradient_timer, time_eager_gradient
from benchmarks.models import ModelSpec

__all__ = [
    "SAMPLERS",
    "RunConfig",
    "RunOutput",
    "Runner",
    "latent_sites",
    "make_runner",
    "run_interleaved",
    "minippl_available",
]

SAMPLERS = (
    "minippl-vectorized",
    "minippl-sequential",
    "minippl-parallel",
    "minippl-numpy",
    "numpyro-vectorized",
    "numpyro-sequential",
    "numpyro-parallel",
    "blackjax",
)


@dataclass(frozen=True)
class RunConfig:
    """Chains and iterations of every sampler in one run of the suite."""

    chains: int = 4
    warmup: int = 1000
    samples: int = 1000
    progress_bar: bool = False


@dataclass
class RunOutput:
    """What one timed call gives: draws, counts and the clock of the call."""

    samples: dict[str, np.ndarray]
    grad_evals: int
    divergences: int
    clock: Clock


def minippl_available() -> str | None:
    """``None`` when minippl's MCMC imports, else the reason it does not."""
    try:
        from minippl.infer import MCMC, NUTS  # noqa: F401
    except Exception as error:  # any failure means the sampler cannot run
        return f"{type(error).__name__}: {error}"
    return None


def latent_sites(spec: ModelSpec) -> list[str]:
    """Names of the model's latent sample sites (what the ESS is taken over)."""
    import numpyro
    from numpyro import handlers

    model = spec.build(numpyro, numpyro.distributions)
    data = spec.data().cast(np.float32)
    trace = handlers.trace(handlers.seed(model, 0)).get_trace(*data.args, **data.kwargs)
    return [
        name
        for name, site in trace.items()
        if site["type"] == "sample"
        and not site["is_observed"]
        and not site.get("infer", {}).get("is_auxiliary", False)
    ]


class _Terminal(io.StringIO):
    """A stream that says it is a terminal and forgets what is written to it."""

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        return len(text)


@contextlib.contextmanager
def _quiet() -> Any:
    """Draw the progress bars into a stand-in terminal: every bar is drawn, as a user at a
    terminal would see it (minippl shows one only on a terminal), and the text is dropped."""
    with contextlib.redirect_stderr(_Terminal()), contextlib.redirect_stdout(_Terminal()):
        yield


def _block(tree: Any) -> None:
    """Wait for every array in ``tree`` (NumPy arrays are already there)."""
    for leaf in tree.values() if isinstance(tree, dict) else [tree]:
        getattr(leaf, "block_until_ready", lambda: None)()


class Runner:
    """The interface: ``setup`` once per model, then ``run`` per seed."""

    name: str = ""
    backend: str = "jax"

    def setup(self, spec: ModelSpec, cfg: RunConfig) -> None:
        raise NotImplementedError

    def first_call(self, seed: int) -> Clock:
        """The first call in this process (it compiles): only its clock is kept."""
        return self.run(seed).clock

    def run(self, seed: int) -> RunOutput:
        raise NotImplementedError

    _timer: Callable[[], float] | None = None

    def gradient_time(self) -> float:
        """Seconds per compiled gradient of the model's potential, alone (the floor of the
        overhead ratio); the timing program is compiled on the first reading only."""
        if self._timer is None:
            self._timer = self._gradient_timer()
        return self._timer()

    def _gradient_timer(self) -> Callable[[], float]:
        raise NotImplementedError


# --------------------------------------------------------------------------- NumPyro's API


def _need_devices(chains: int) -> None:
    """NumPyro runs "parallel" chains one per device, and on one device it runs them one
    after another (with a warning): refuse that, since it would only repeat
    numpyro-sequential."""
    import jax

    if jax.device_count() < chains:
        raise RuntimeError(
            f"numpyro-parallel needs {chains} devices (one per chain) but JAX sees "
            f"{jax.device_count()}: run the suite with --host-devices {chains} (NumPyro's "
            "set_host_device_count), which must come before JAX starts."
        )


class NumPyroAPIRunner(Runner):
    """``MCMC(NUTS(model))`` for any library with NumPyro's API (NumPyro itself, minippl)."""

    def __init__(
        self,
        library: str,
        chain_method: str,
        backend: str = "jax",
        kernel_kwargs: dict[str, Any] | None = None,
    ):
        self.library, self.chain_method, self.backend = library, chain_method, backend
        self.kernel_kwargs = dict(kernel_kwargs or {})  # more NUTS settings (benchmarks.floors)
        self.name = f"{library}-{'numpy' if backend == 'numpy' else chain_method}"

    # The modules of the library under test, with its backend selected.
    def _modules(self) -> tuple[Any, Any, Any, Any]:
        if self.library == "numpyro":
            import numpyro
            import numpyro.distributions as dist
            from numpyro.infer import MCMC, NUTS

            return numpyro, dist, MCMC, NUTS
        import minippl
        import minippl.distributions as dist
        from minippl.infer import MCMC, NUTS

        minippl.set_backend(self.backend)
        return minippl, dist, MCMC, NUTS

    def setup(self, spec: ModelSpec, cfg: RunConfig) -> None:
        ppl, dist, _, _ = self._modules()
        self.spec, self.cfg = spec, cfg
        if self.library == "numpyro" and self.chain_method == "parallel":
            _need_devices(cfg.chains)
        self.model = spec.build(ppl, dist)
        data = spec.data()
        self.data = data if self.backend == "numpy" else data.cast(np.float32)
        self.latent = latent_sites(spec)
        # minippl keeps its compiled program on the MCMC object, so one object serves every
        # call, as a user would keep it.  NumPyro compiles on every call whatever the object,
        # and a NumPyro object that has run cannot start a new warmup: it gets a new one.
        self._kept = self._mcmc(cfg.progress_bar) if self.library == "minippl" else None

    @property
    def mcmc(self) -> Any:
        return self._kept if self._kept is not None else self._mcmc(self.cfg.progress_bar)

    def _mcmc(self, progress_bar: bool) -> Any:
        _, _, MCMC, NUTS = self._modules()
        kernel = NUTS(
            self.model,
            target_accept_prob=self.spec.target_accept,
            dense_mass=self.spec.dense_mass,
            **self.kernel_kwargs,
        )
        return MCMC(
            kernel,
            num_warmup=self.cfg.warmup,
            num_samples=self.cfg.samples,
            num_chains=self.cfg.chains,
            chain_method=self.chain_method,
            progress_bar=progress_bar,
        )

    def _key(self, seed: int) -> Any:
        if self.library == "numpyro":
            import jax

            return jax.random.PRNGKey(seed)
        from minippl import backend

        return backend.current().key(seed)

    def first_call(self, seed: int) -> Clock:
        """The user's path in a fresh process: one ``MCMC.run``, compiling as it goes."""
        self._modules()  # minippl's backend is process-wide: select ours before each call
        mcmc = self.mcmc
        quiet = _quiet() if self.cfg.progress_bar else contextlib.nullcontext()
        with quiet, compile_clock() as clock:
            mcmc.run(self._key(seed), *self.data.args, **self.data.kwargs)
            _block(mcmc.get_samples())
        return clock

    def run(self, seed: int) -> RunOutput:
        """``MCMC.warmup(collect_warmup=True)`` then ``MCMC.run``: the same chains as one
        ``run(key)`` (same key, same draws), with the warmup's steps counted too."""
        self._modules()
        args, kwargs = self.data.args, self.data.kwargs
        mcmc = self.mcmc
        quiet = _quiet() if self.cfg.progress_bar else contextlib.nullcontext()
        with quiet, compile_clock() as clock:
            mcmc.warmup(
                self._key(seed), *args, extra_fields=("num_steps",), collect_warmup=True, **kwargs
            )
            steps = int(np.asarray(mcmc.get_extra_fields()["num_steps"]).sum())
            mcmc.run(
                mcmc.post_warmup_state.rng_key,
                *args,
                extra_fields=("num_steps", "diverging"),
                **kwargs,
            )
            samples = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
        extra = mcmc.get_extra_fields(group_by_chain=True)
        steps += int(np.asarray(extra["num_steps"]).sum())
        divergences = int(np.asarray(extra["diverging"]).sum())
        draws = {k: samples[k] for k in self.latent}
        return RunOutput(draws, steps, divergences, clock)

    def potential(self) -> tuple[Callable[[Any], Any], Any]:
        """The potential energy this library samples and a point in unconstrained space."""
        if self.library == "numpyro":
            import jax
            from numpyro.infer.util import initialize_model

            info = initialize_model(
                jax.random.PRNGKey(0),
                self.model,
                model_args=self.data.args,
                model_kwargs=self.data.kwargs,
                dynamic_args=False,
            )
            return info.potential_fn, info.param_info.z
        from minippl.infer.util import initialize_model as mini_initialize

        self._modules()
        info = mini_initialize(
            self._key(0),
            self.model,
            model_args=self.data.args,
            model_kwargs=self.data.kwargs,
            dynamic_args=False,
        )
        return info.potential_fn, info.param_info.z

    def _gradient_timer(self) -> Callable[[], float]:
        potential, point = self.potential()
        if self.backend == "numpy":
            from minippl import backend

            grad = backend.current().grad(potential)
            return lambda: time_eager_gradient(lambda: grad(point))
        return gradient_timer(potential, point)


# --------------------------------------------------------------------------- BlackJAX


class BlackJAXRunner(Runner):
    """BlackJAX NUTS with window adaptation, on the log density of NumPyro's model.

    Every chain starts at NumPyro's default initial point distribution (uniform on
    [-2, 2] in unconstrained space), runs ``window_adaptation`` for the warmup, then
    ``nuts`` with the adapted step size and mass matrix; chains are ``vmap``-ped and the
    whole run is one ``jit``.
    """

    name = "blackjax"

    def setup(self, spec: ModelSpec, cfg: RunConfig) -> None:
        import blackjax
        import jax
        import numpyro
        from jax.flatten_util import ravel_pytree
        from numpyro.infer.util import initialize_model

        self.spec, self.cfg = spec, cfg
        model = spec.build(numpyro, numpyro.distributions)
        self.data = spec.data().cast(np.float32)
        info = initialize_model(
            jax.random.PRNGKey(0),
            model,
            model_args=self.data.args,
            model_kwargs=self.data.kwargs,
            dynamic_args=False,
        )
        self.potential, self.point = info.potential_fn, info.param_info.z
        flat, unravel = ravel_pytree(self.point)
        dim = flat.shape[0]
        self.unravel = unravel

        def logdensity(f: Any) -> Any:
            return -self.potential(unravel(f))

        def only_counts(state: Any, info: Any, adaptation_state: Any) -> Any:
            return info.num_integration_steps

        def one_chain(key: Any) -> Any:
            k_init, k_warm, k_draw = jax.random.split(key, 3)
            position = jax.random.uniform(k_init, (dim,), flat.dtype, -2.0, 2.0)
            warmup = blackjax.window_adaptation(
                blackjax.nuts,
                logdensity,
                is_mass_matrix_diagonal=not spec.dense_mass,
                target_acceptance_rate=spec.target_accept,
                adaptation_info_fn=only_counts,
            )
            (state, parameters), warm_steps = warmup.run(k_warm, position, num_steps=cfg.warmup)
            step = blackjax.nuts(logdensity, **parameters).step

            def body(state: Any, key: Any) -> Any:
                state, info = step(key, state)
                return state, (state.position, info.num_integration_steps, info.is_divergent)

            keys = jax.random.split(k_draw, cfg.samples)
            _, (draws, steps, divergent) = jax.lax.scan(body, state, keys)
            return draws, warm_steps.sum() + steps.sum(), divergent.sum()

        self._run = jax.jit(jax.vmap(one_chain))

    def run(self, seed: int) -> RunOutput:
        import jax

        keys = jax.random.split(jax.random.PRNGKey(seed), self.cfg.chains)
        with compile_clock() as clock:
            draws, steps, divergent = jax.block_until_ready(self._run(keys))
        sites = jax.vmap(jax.vmap(self.unravel))(draws)
        samples = {k: np.asarray(v) for k, v in sites.items()}
        return RunOutput(samples, int(np.sum(steps)), int(np.sum(divergent)), clock)

    def _gradient_timer(self) -> Callable[[], float]:
        return gradient_timer(self.potential, self.point)


# --------------------------------------------------------------------------- registry


def make_runner(name: str) -> Runner:
    """A fresh runner for the sampler called ``name`` (see ``SAMPLERS``)."""
    if name == "minippl-numpy":
        return NumPyroAPIRunner("minippl", "sequential", "numpy")
    library, _, method = name.partition("-")
    if library in ("minippl", "numpyro") and method in ("vectorized", "sequential", "parallel"):
        return NumPyroAPIRunner(library, method)
    if name == "blackjax":
        return BlackJAXRunner()
    raise KeyError(f"unknown sampler {name!r}; known: {', '.join(SAMPLERS)}")


K = TypeVar("K")


def run_interleaved(
    runners: Mapping[K, Runner], repeats: int
) -> tuple[dict[K, list[float]], dict[K, list[float]]]:
    """Each runner ``repeats`` times, taking turns (seeds 1, 2, ...): the execution times
    (seconds, compile excluded) and gradient evaluations of every call, per runner."""
    times: dict[K, list[float]] = {name: [] for name in runners}
    steps: dict[K, list[float]] = {name: [] for name in runners}
    for k in range(repeats):
        for name, runner in runners.items():
            out = runner.run(k + 1)
            times[name].append(out.clock.execute_s)
            steps[name].append(float(out.grad_evals))
    return times, steps
