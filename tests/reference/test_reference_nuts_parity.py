"""NUTS through ``MCMC`` against NumPyro's, same seed: how far the two chains agree.

With Stan's extra U-turn checks and the dense shrinkage off (``robust_u_turn=False``,
``dense_shrinkage=False``), minippl's NUTS makes NumPyro's choices: the same key for each
leaf, the same tree doubling, the same dual averaging and adaptation windows. The two
libraries' log densities still round differently in their last bits: ``Normal.log_prob``
writes its normalising term as ``log(scale) + log(2 pi) / 2`` where NumPyro writes
``log(sqrt(2 pi) * scale)``, and XLA compiles even the same formula differently inside two
different programs. NUTS amplifies such differences: a step size a few ulps apart eventually
tips an acceptance or a U-turn test, and from there the chains are different draws of the
same posterior.

So the claim the README makes, and these tests check, is how long the chains agree: the
number of leading iterations (warmup, then sampling) in which both chains build trees of the
same size, and in which their step sizes also agree to 1e-6, relative. Each test runs both
libraries through their public ``MCMC`` (``warmup(collect_warmup=True)``, then ``run``,
which goes on from the warmed-up state) with the same key, and checks both counts against
the README's figures. The floors sit below the counts measured over seeds 0-4, since
another CPU's XLA code may round elsewhere.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

pytest.importorskip("numpyro")

import jax  # noqa: E402

from backends import Backend  # noqa: E402

pytestmark = pytest.mark.reference

NUM_WARMUP, NUM_SAMPLES = 300, 200
FIELDS = ("num_steps", "adapt_state.step_size")

# The README's figures at seed 0, for (a 3-parameter regression, eight schools centred): how
# many leading iterations build trees of the same size, and how many also agree on the step
# size to 1e-6.
SAME_TREES_X64 = {"regression": 150, "eight_schools": 25}
SAME_STEPS_X64 = {"regression": 100, "eight_schools": 15}
SAME_TREES_FLOAT32 = {"regression": 50, "eight_schools": 10}
SAME_STEPS_FLOAT32 = {"regression": 3, "eight_schools": 2}


def regression(ppl: Any, dist: Any) -> Callable[..., None]:
    """The guide's linear regression: intercept, slope and noise scale."""

    def model(x: Any, y: Any = None) -> None:
        intercept = ppl.sample("intercept", dist.Normal(0.0, 10.0))
        slope = ppl.sample("slope", dist.Normal(0.0, 5.0))
        sigma = ppl.sample("sigma", dist.HalfNormal(1.0))
        with ppl.plate("data", x.shape[0]):
            ppl.sample("obs", dist.Normal(intercept + slope * x, sigma), obs=y)

    return model


def eight_schools(ppl: Any, dist: Any) -> Callable[..., None]:
    """Eight schools, centred: a funnel, where small differences grow fastest."""

    def model(sigma: Any, y: Any = None) -> None:
        mu = ppl.sample("mu", dist.Normal(0.0, 5.0))
        tau = ppl.sample("tau", dist.HalfCauchy(5.0))
        with ppl.plate("J", sigma.shape[0]):
            theta = ppl.sample("theta", dist.Normal(mu, tau))
            ppl.sample("obs", dist.Normal(theta, sigma), obs=y)

    return model


def model_and_data(name: str) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]:
    xp = jax.numpy
    if name == "regression":
        x = np.linspace(-2.0, 2.0, 50)
        y = 1.0 + 2.0 * x + 0.5 * np.random.default_rng(0).standard_normal(50)
        return regression, (xp.asarray(x),), {"y": xp.asarray(y)}
    sigma = [15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0]
    y = [28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0]
    return eight_schools, (xp.asarray(sigma),), {"y": xp.asarray(y)}


def chain_fields(library: str, name: str, seed: int) -> dict[str, np.ndarray]:
    """Tree sizes and step sizes of one chain, warmup then sampling, through ``MCMC``."""
    build, args, kwargs = model_and_data(name)
    if library == "numpyro":
        import numpyro as ppl
        import numpyro.distributions as dist
        from numpyro.infer import MCMC, NUTS

        kernel = NUTS(build(ppl, dist))
    else:
        import minippl as ppl
        import minippl.distributions as dist
        from minippl.infer import MCMC, NUTS

        kernel = NUTS(build(ppl, dist), robust_u_turn=False, dense_shrinkage=False)
    mcmc = MCMC(kernel, num_warmup=NUM_WARMUP, num_samples=NUM_SAMPLES, progress_bar=False)
    key = jax.random.PRNGKey(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mcmc.warmup(key, *args, **kwargs, collect_warmup=True, extra_fields=FIELDS)
        warmup = mcmc.get_extra_fields()
        mcmc.run(key, *args, **kwargs, extra_fields=FIELDS)
        sampling = mcmc.get_extra_fields()
    return {f: np.concatenate([np.asarray(warmup[f]), np.asarray(sampling[f])]) for f in FIELDS}


def leading(agree: np.ndarray) -> int:
    """How many leading entries of ``agree`` are true."""
    return len(agree) if agree.all() else int(np.argmin(agree))


def agreement(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray]) -> tuple[int, int]:
    """Leading iterations with trees of the same size, and those that also have step sizes
    within 1e-6 of each other (relative)."""
    same_tree = ours["num_steps"] == theirs["num_steps"]
    step, their_step = ours["adapt_state.step_size"], theirs["adapt_state.step_size"]
    same_step = np.abs(step - their_step) <= 1e-6 * np.abs(their_step)
    return leading(same_tree), leading(same_tree & same_step)


def measure(name: str, seed: int = 0) -> tuple[int, int]:
    return agreement(chain_fields("minippl", name, seed), chain_fields("numpyro", name, seed))


@pytest.mark.parametrize("name", ["regression", "eight_schools"])
def test_float64_chains_agree_for_the_readmes_iterations(
    jax_backend: Backend, x64: None, name: str
) -> None:
    trees, steps = measure(name)
    message = f"{name}: same trees for {trees} iterations, same step sizes for {steps}"
    assert trees >= SAME_TREES_X64[name] and steps >= SAME_STEPS_X64[name], message


@pytest.mark.parametrize("name", ["regression", "eight_schools"])
def test_float32_chains_agree_for_the_readmes_iterations(jax_backend: Backend, name: str) -> None:
    trees, steps = measure(name)
    message = f"{name}: same trees for {trees} iterations, same step sizes for {steps}"
    assert trees >= SAME_TREES_FLOAT32[name] and steps >= SAME_STEPS_FLOAT32[name], message


def test_agreement_counts_up_to_the_first_iteration_that_differs() -> None:
    theirs = {"num_steps": np.array([3, 7, 7, 15]), "adapt_state.step_size": np.ones(4)}
    ours = {"num_steps": theirs["num_steps"].copy(), "adapt_state.step_size": np.ones(4)}
    assert agreement(ours, theirs) == (4, 4)
    ours["adapt_state.step_size"][2] += 2e-6
    assert agreement(ours, theirs) == (4, 2)
    ours["num_steps"][1] = 3
    assert agreement(ours, theirs) == (1, 1)


# -- the README's first screen: ``sample`` under ``seed`` gives NumPyro's numbers ----------------


def test_the_readmes_first_sample_is_numpyros_bit_for_bit(jax_backend: Backend) -> None:
    import numpyro
    import numpyro.distributions as ndist
    import numpyro.handlers

    import minippl
    import minippl.distributions as mdist
    from minippl import handlers

    with handlers.seed(rng_seed=0):
        ours = minippl.sample("x", mdist.Normal(0.0, 1.0))
    with numpyro.handlers.seed(rng_seed=0):
        theirs = numpyro.sample("x", ndist.Normal(0.0, 1.0))
    assert f"{float(ours):.4f}" == "-2.4425"  # the value the README shows
    assert np.asarray(ours).tobytes() == np.asarray(theirs).tobytes()
    assert np.asarray(ours).dtype == np.asarray(theirs).dtype
