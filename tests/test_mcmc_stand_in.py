"""A random-walk Metropolis kernel with the HMC kernel interface, used as a cheap stand-in.

It lets the MCMC driver be tested on both backends without NUTS's compile time: it has the
same ``init``/``sample``/``postprocess_fn`` interface and an ``HMCState``-like state (``i``,
``z``, ``z_grad``, ``potential_energy``, ``diverging``, ``adapt_state.step_size``, ...).
A proposal whose potential energy is not finite is rejected and flagged as divergent, as
NUTS does, so the driver's counting can be tested with it too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest

import minippl
import minippl.distributions as dist
from backends import Backend
from minippl.backend import current
from minippl.infer.initialization import init_to_uniform
from minippl.infer.util import initialize_model


class AdaptState(NamedTuple):
    step_size: Any


class RWMState(NamedTuple):
    i: Any
    z: Any
    z_grad: Any
    potential_energy: Any
    energy: Any
    num_steps: Any
    accept_prob: Any
    mean_accept_prob: Any
    diverging: Any
    adapt_state: AdaptState
    rng_key: Any


class RWM:
    """Gaussian random-walk Metropolis in unconstrained space (no adaptation)."""

    sample_field = "z"
    default_fields = ("z",)

    def __init__(
        self,
        model: Callable[..., Any],
        step_size: float = 0.5,
        init_strategy: Any = init_to_uniform,
        max_tree_depth: tuple[int, int] | None = None,
    ) -> None:
        self.model = model
        self.step_size = step_size
        self.init_strategy = init_strategy
        if max_tree_depth is not None:
            # Pretend to be NUTS-like so that the driver counts "tree depth" hits.
            self.max_tree_depth = max_tree_depth
        self._potential: Any = None
        self._postprocess: Any = None

    def init(
        self, rng_key: Any, num_warmup: int, init_params: Any, model_args: Any, model_kwargs: Any
    ) -> RWMState:
        bk = current()
        xp = bk.xp
        rng_key, key_init = bk.split(rng_key)
        info = initialize_model(
            key_init,
            self.model,
            init_strategy=self.init_strategy,
            model_args=model_args,
            model_kwargs=model_kwargs,
            dynamic_args=True,
        )
        self._potential = info.potential_fn
        self._postprocess = info.postprocess_fn
        z = info.param_info.z if init_params is None else init_params
        pe, grad = bk.value_and_grad(info.potential_fn(*model_args, **model_kwargs))(z)

        def f(x: Any) -> Any:
            return xp.asarray(x, dtype=bk.float_dtype())

        return RWMState(
            xp.asarray(0), z, grad, f(pe), f(pe), xp.asarray(1), f(1.0), f(0.0),
            xp.asarray(False), AdaptState(f(self.step_size)), rng_key,
        )  # fmt: skip

    def postprocess_fn(self, model_args: Any, model_kwargs: Any) -> Any:
        return self._postprocess(*model_args, **model_kwargs)

    def sample(self, state: RWMState, model_args: Any, model_kwargs: Any) -> RWMState:
        bk = current()
        xp = bk.xp
        potential = self._potential(*model_args, **model_kwargs)
        key_next, key_step, key_accept = bk.split(state.rng_key, 3)
        flat, unravel = bk.ravel_pytree(state.z)
        step = state.adapt_state.step_size * bk.normal(key_step, flat.shape, flat.dtype)
        pe_new, grad_new = bk.value_and_grad(potential)(unravel(flat + step))
        bad = ~xp.isfinite(pe_new)
        pe_new = xp.where(bad, xp.inf, pe_new)
        accept_prob = xp.exp(xp.minimum(0.0, state.potential_energy - pe_new))
        take = bk.uniform(key_accept, (), flat.dtype) < accept_prob
        z = bk.tree_map(lambda a, b: xp.where(take, a, b), unravel(flat + step), state.z)
        z_grad = bk.tree_map(lambda a, b: xp.where(take, a, b), grad_new, state.z_grad)
        pe = xp.where(take, pe_new, state.potential_energy)
        i = state.i + 1
        mean = state.mean_accept_prob + (accept_prob - state.mean_accept_prob) / i
        return RWMState(
            i, z, z_grad, pe, pe, state.num_steps, accept_prob, mean, bad,
            state.adapt_state, key_next,
        )  # fmt: skip

    def get_diagnostics_str(self, state: RWMState) -> str:
        return f"acc. prob={float(state.mean_accept_prob):.2f}"


def normal_model(y: Any) -> None:
    """mu ~ N(0, 5), sigma ~ HalfNormal(2), y ~ N(mu, sigma), with a deterministic site."""
    mu = minippl.sample("mu", dist.Normal(0.0, 5.0))
    sigma = minippl.sample("sigma", dist.HalfNormal(2.0))
    minippl.deterministic("twice_mu", 2.0 * mu)
    with minippl.plate("data", y.shape[0]):
        minippl.sample("y", dist.Normal(mu, sigma), obs=y)


def test_stand_in_samples_a_normal(backend: Backend) -> None:
    """The stand-in is a correct sampler: N(0, 1) prior only, mean and sd right."""
    from minippl.infer import MCMC

    def model() -> None:
        minippl.sample("x", dist.Normal(0.0, 1.0))

    n = 3000 if backend.name == "jax" else 1500
    mcmc = MCMC(RWM(model, step_size=2.0), num_warmup=200, num_samples=n, progress_bar=False)
    mcmc.run(backend.key(1))
    x = np.asarray(mcmc.get_samples()["x"])
    assert abs(x.mean()) < 0.25
    assert x.std() == pytest.approx(1.0, abs=0.15)
