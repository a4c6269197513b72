"""A careless user's mistakes, one row each: every one is an error of a named type whose
message names the argument or the site (and what it got), raised where the mistake enters,
on both backends; and after each, the handler stack is empty again."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import minippl
import minippl.distributions as dist
from backends import Backend
from minippl import handlers
from minippl.infer import HMC, MCMC, NUTS, Predictive, log_likelihood
from minippl.infer.util import log_density
from minippl.runtime import stack

Case = tuple[str, Callable[[Backend], Any], type[Exception] | tuple[type[Exception], ...], str]


def one_site() -> Any:
    return minippl.sample("mu", dist.Normal(0.0, 1.0))


def seeded(fn: Callable[[], Any]) -> Any:
    return handlers.seed(fn, rng_seed=0)()


def draw(**kwargs: Any) -> Callable[[Backend], Any]:
    """``sample`` with these arguments (``fn`` and ``name`` have defaults), under seed."""
    kwargs.setdefault("fn", dist.Normal(0.0, 1.0))
    name = kwargs.pop("name", "x")
    return lambda b: seeded(lambda: minippl.sample(name, **kwargs))


def plate(*args: Any, **kwargs: Any) -> Callable[[Backend], Any]:
    return lambda b: minippl.plate(*args, **kwargs)


def in_plate(y: Any) -> None:
    mu = minippl.sample("mu", dist.Normal(0.0, 1.0))
    with minippl.plate("N", 3):
        minippl.sample("obs", dist.Normal(mu, 1.0), obs=y)


def batched(y: Any) -> None:
    mu = minippl.sample("mu", dist.Normal(minippl.backend.current().xp.zeros(3), 1.0))
    minippl.sample("obs", dist.Normal(mu, 1.0), obs=y)


def mcmc(b: Backend, model: Callable[..., Any] = one_site, **options: Any) -> MCMC:
    settings = {"num_warmup": 3, "num_samples": 3, "progress_bar": False, **options}
    return MCMC(NUTS(model), **settings)


def run(
    model: Callable[..., Any] = one_site, *args: Any, **kwargs: Any
) -> Callable[[Backend], Any]:
    return lambda b: mcmc(b, model).run(b.key(0), *args, **kwargs)


def mcmc_with(**options: Any) -> Callable[[Backend], Any]:
    return lambda b: mcmc(b, **options)


def predictive(*args: Any, **kwargs: Any) -> Callable[[Backend], Any]:
    return lambda b: Predictive(*args, **kwargs)


SHAPE = (ValueError, TypeError)  # the kind the array library raised, kept
CASES: list[Case] = [
    # -- sample ---------------------------------------------------------------------------
    (
        "sample_shape int",
        draw(sample_shape=3),
        TypeError,
        r"'x': sample_shape must be a tuple of ints, got 3 \(int\); for 3 draws write \(3,\)",
    ),
    (
        "sample_shape negative",
        draw(sample_shape=(-1,)),
        ValueError,
        r"sample site 'x': sample_shape must hold sizes >= 0, got \(-1,\)",
    ),
    (
        "sample_shape float",
        draw(sample_shape=(2.5,)),
        TypeError,
        r"sample site 'x': sample_shape must be a tuple of ints, got \(2\.5,\)",
    ),
    (
        "sample_shape str",
        draw(sample_shape="3"),
        TypeError,
        r"sample site 'x': sample_shape must be a tuple of ints, got '3' \(str\)",
    ),
    (
        "sample_shape bool",
        draw(sample_shape=(True,)),
        TypeError,
        r"sample site 'x': sample_shape must be a tuple",
    ),
    (
        "sample_shape None",
        draw(sample_shape=None),
        TypeError,
        r"sample site 'x': sample_shape must be a tuple of ints, got None",
    ),
    (
        "sample_shape no handler",
        lambda b: minippl.sample("x", dist.Normal(0.0, 1.0), rng_key=b.key(0), sample_shape=2),
        TypeError,
        r"sample site 'x': sample_shape",
    ),
    (
        "sample fn a class",
        draw(fn=dist.Normal),
        TypeError,
        r"sample site 'x': fn must be a minippl distribution, got \w+",
    ),
    (
        "sample fn a number",
        draw(fn=0.5),
        TypeError,
        r"sample site 'x': fn must be a minippl distribution, got float",
    ),
    (
        "sample name int",
        draw(name=3),
        TypeError,
        r"sample: the site's name must be a str, got 3 \(int\)",
    ),
    (
        "sample name None",
        draw(name=None),
        TypeError,
        r"sample: the site's name must be a str, got None",
    ),
    # -- plate ----------------------------------------------------------------------------
    (
        "plate size str",
        plate("N", "3"),
        TypeError,
        r"plate 'N': size must be an int >= 1, got '3' \(str\)",
    ),
    (
        "plate size float",
        plate("N", 3.5),
        TypeError,
        r"plate 'N': size must be an int >= 1, got 3\.5 \(float\)",
    ),
    (
        "plate size negative",
        plate("N", -2),
        ValueError,
        r"plate 'N': size must be an int >= 1, got -2",
    ),
    ("plate size zero", plate("N", 0), ValueError, r"plate 'N': size must be an int >= 1, got 0"),
    (
        "plate size None",
        plate("N", None),
        TypeError,
        r"plate 'N': size must be an int >= 1, got None",
    ),
    ("plate size array", plate("N", np.ones(3)), TypeError, r"plate 'N': size must be an int"),
    (
        "plate subsample zero",
        plate("N", 3, subsample_size=0),
        ValueError,
        r"plate 'N': subsample_size must be an int >= 1, got 0",
    ),
    (
        "plate subsample too big",
        plate("N", 3, subsample_size=5),
        ValueError,
        r"plate 'N': subsample_size must be <= size \(3\), got 5",
    ),
    (
        "plate subsample float",
        plate("N", 3, subsample_size=1.5),
        TypeError,
        r"plate 'N': subsample_size must be an int >= 1, got 1\.5",
    ),
    (
        "plate dim zero",
        plate("N", 3, dim=0),
        ValueError,
        r"plate 'N': dim must be a negative int .*got 0",
    ),
    (
        "plate dim positive",
        plate("N", 3, dim=2),
        ValueError,
        r"plate 'N': dim must be a negative int",
    ),
    (
        "plate dim float",
        plate("N", 3, dim=-1.0),
        TypeError,
        r"plate 'N': dim must be a negative int .*got -1\.0 \(float\)",
    ),
    ("plate name int", plate(3, 3), TypeError, r"plate: the name must be a str, got 3 \(int\)"),
    (
        "plate batch mismatch",
        lambda b: seeded(lambda: _sample_in_plate(b)),
        ValueError,
        r"site 'obs': batch shape \(5,\) does not match the enclosing plates.*'N'",
    ),
    # -- param and subsample --------------------------------------------------------------
    (
        "param name int",
        lambda b: minippl.param(3, 1.0),
        TypeError,
        r"param: the site's name must be a str, got 3",
    ),
    (
        "subsample event_dim negative",
        lambda b: minippl.subsample(np.zeros(3), event_dim=-1),
        ValueError,
        r"subsample: event_dim must be an int >= 0, got -1",
    ),
    (
        "subsample event_dim float",
        lambda b: minippl.subsample(np.zeros(3), event_dim=1.5),
        TypeError,
        r"subsample: event_dim must be an int >= 0, got 1\.5",
    ),
    # -- handlers' arguments --------------------------------------------------------------
    (
        "seed too big",
        lambda b: handlers.seed(one_site, rng_seed=2**70),
        ValueError,
        r"seed: rng_seed must be an int in \[-2\*\*63, 2\*\*63\) or a PRNG key, "
        r"got 1180591620717411303424",
    ),
    (
        "seed too negative",
        lambda b: handlers.seed(one_site, rng_seed=-(2**64)),
        ValueError,
        r"rng_seed must be an int in \[-2\*\*63",
    ),
    (
        "seed float",
        lambda b: handlers.seed(one_site, rng_seed=1.5),
        TypeError,
        r"rng_seed must be an int or a PRNG key \(\w+\), got 1\.5",
    ),
    (
        "seed str",
        lambda b: handlers.seed(one_site, rng_seed="0"),
        TypeError,
        r"rng_seed must be an int or a PRNG key \(\w+\), got '0'",
    ),
    (
        "seed model not callable",
        lambda b: handlers.seed(3, rng_seed=0),
        TypeError,
        r"seed: the model must be callable, got int",
    ),
    (
        "replay values",
        lambda b: handlers.replay(one_site, trace={"mu": 1.0}),
        TypeError,
        r"replay: trace must map names to recorded sites .*got 1\.0 \(float\) at 'mu'.*substitute",
    ),
    (
        "replay list",
        lambda b: handlers.replay(one_site, trace=[1.0]),
        TypeError,
        r"replay: trace must be a dict of site names, got \[1\.0\] \(list\)",
    ),
    (
        "replay none",
        lambda b: handlers.replay(one_site),
        ValueError,
        r"replay: give the trace to replay",
    ),
    (
        "lift prior number",
        lambda b: handlers.lift(one_site, prior=3.0),
        TypeError,
        r"lift: prior must be a distribution or a dict of them by name, got 3\.0 \(float\)",
    ),
    (
        "lift prior dict of numbers",
        lambda b: handlers.lift(one_site, prior={"w": 3.0}),
        TypeError,
        r"lift: prior must be a distribution.*got 3\.0",
    ),
    (
        "lift prior a class",
        lambda b: handlers.lift(one_site, prior=dist.Normal),
        TypeError,
        r"lift: prior must be a distribution",
    ),
    (
        "condition data list",
        lambda b: handlers.condition(one_site, data=[1.0]),
        TypeError,
        r"condition: data must be a dict of site names, got \[1\.0\] \(list\)",
    ),
    (
        "condition data str",
        lambda b: handlers.condition(one_site, data="mu"),
        TypeError,
        r"condition: data must be a dict of site names, got 'mu' \(str\)",
    ),
    (
        "condition nothing",
        lambda b: handlers.condition(one_site),
        ValueError,
        r"condition: give exactly one of data= or condition_fn=",
    ),
    (
        "condition both",
        lambda b: handlers.condition(one_site, data={}, condition_fn=lambda m: None),
        ValueError,
        r"condition: give exactly one of data= or condition_fn=",
    ),
    (
        "condition fn not callable",
        lambda b: handlers.condition(one_site, condition_fn=3),
        TypeError,
        r"condition: condition_fn must be callable, got 3 \(int\)",
    ),
    (
        "substitute data tuple",
        lambda b: handlers.substitute(one_site, data=(1, 2)),
        TypeError,
        r"substitute: data must be a dict of site names, got \(1, 2\) \(tuple\)",
    ),
    (
        "substitute fn str",
        lambda b: handlers.substitute(one_site, substitute_fn="f"),
        TypeError,
        r"substitute: substitute_fn must be callable, got 'f'",
    ),
    (
        "scale zero",
        lambda b: handlers.scale(one_site, scale=0.0),
        ValueError,
        r"scale: the factor must be positive",
    ),
    (
        "block hide str",
        lambda b: handlers.block(one_site, hide="mu"),
        TypeError,
        r"block: hide takes a list of names, e.g. hide=\['mu'\]",
    ),
    # -- shapes at a site: the site, its plates and both shapes ---------------------------
    (
        "obs longer than plate",
        lambda b: log_density(in_plate, (b.xp.zeros(5),), {}, {"mu": 0.0}),
        ValueError,
        r"site 'obs' in plates \['N' of size 3\]: Normal \(expanded by the plates\) of "
        r"batch shape \(3,\).*value of shape \(5,\)",
    ),
    (
        "obs longer than batch",
        lambda b: log_density(batched, (b.xp.zeros(5),), {}, {"mu": b.xp.zeros(3)}),
        SHAPE,
        r"site 'obs': Normal of batch shape \(3,\) and event shape \(\), value of shape \(5,\)",
    ),
    (
        "obs in plate under jit",
        lambda b: b.jit(lambda y: log_density(in_plate, (y,), {}, {"mu": 0.0})[0])(b.xp.zeros(5)),
        ValueError,
        r"site 'obs' in plates \['N' of size 3\].*value of shape \(5,\)",
    ),
    (
        "obs wrong event shape",
        lambda b: log_density(
            lambda: minippl.sample(
                "v", dist.MultivariateNormal(b.xp.zeros(2), b.xp.eye(2)), obs=b.xp.zeros(3)
            ),
            (),
            {},
            {},
        ),
        SHAPE,
        r"site 'v': MultivariateNormal of batch shape \(\) and event shape \(2,\), "
        r"value of shape \(3,\)",
    ),
    (
        "obs in plate in MCMC.run",
        run(in_plate, np.zeros(5)),
        ValueError,
        r"site 'obs' in plates \['N' of size 3\].*\(3,\).*value of shape \(5,\)",
    ),
    (
        "obs longer than plate in log_likelihood",
        lambda b: log_likelihood(in_plate, {"mu": b.xp.zeros(2)}, b.xp.zeros(5)),
        ValueError,
        r"site 'obs' in plates \['N' of size 3\].*value of shape \(5,\)",
    ),
    # -- MCMC -----------------------------------------------------------------------------
    (
        "run key an int",
        lambda b: mcmc(b).run(0),
        TypeError,
        r"MCMC\.run: rng_key must be a PRNG key \(\w+\), got 0 \(int\); make one with",
    ),
    (
        "run key None",
        lambda b: mcmc(b).run(None),
        TypeError,
        r"MCMC\.run: rng_key must be a PRNG key \(\w+\), got None",
    ),
    (
        "warmup key float",
        lambda b: mcmc(b).warmup(1.5),
        TypeError,
        r"MCMC\.warmup: rng_key must be a PRNG key",
    ),
    (
        "num_samples zero",
        mcmc_with(num_samples=0),
        ValueError,
        r"MCMC: num_samples must be an int >= 1, got 0",
    ),
    (
        "num_samples float",
        mcmc_with(num_samples=10.0),
        TypeError,
        r"MCMC: num_samples must be an int >= 1, got 10\.0 \(float\)",
    ),
    (
        "num_warmup negative",
        mcmc_with(num_warmup=-1),
        ValueError,
        r"MCMC: num_warmup must be an int >= 0, got -1",
    ),
    (
        "num_chains str",
        mcmc_with(num_chains="2"),
        TypeError,
        r"MCMC: num_chains must be an int >= 1, got '2' \(str\)",
    ),
    (
        "thinning zero",
        mcmc_with(thinning=0),
        ValueError,
        r"MCMC: thinning must be an int >= 1, got 0",
    ),
    (
        "num_samples below thinning",
        mcmc_with(num_samples=1, thinning=2),
        ValueError,
        r"MCMC: num_samples must be an int >= 2, got 1",
    ),
    (
        "progress_rate zero",
        mcmc_with(progress_rate=0),
        ValueError,
        r"MCMC: progress_rate must be an int >= 1, got 0",
    ),
    (
        "postprocess_fn not callable",
        mcmc_with(postprocess_fn=3),
        TypeError,
        r"MCMC: postprocess_fn must be callable, got 3",
    ),
    (
        "sampler a model",
        lambda b: MCMC(one_site, num_warmup=1, num_samples=1),
        TypeError,
        r"MCMC: sampler must be a kernel such as NUTS\(model\)",
    ),
    (
        "chain_method unknown",
        mcmc_with(chain_method="threads"),
        ValueError,
        r"chain_method must be one of .*'threads'",
    ),
    (
        "extra_fields a str",
        lambda b: mcmc(b).run(b.key(0), extra_fields="energy"),
        TypeError,
        r"MCMC\.run: extra_fields must be a list of field names",
    ),
    (
        "init_params unknown name",
        run(init_params={"muu": 0.0}),
        ValueError,
        r"MCMC\.run: init_params names \['muu'\], which the model does not have; "
        r"its sites are \['mu'\]",
    ),
    (
        "init_params nan",
        run(init_params={"mu": math.nan}),
        ValueError,
        r"MCMC\.run: init_params\['mu'\] is not finite .*site 'mu' needs a finite starting value",
    ),
    (
        "init_params inf",
        run(init_params={"mu": math.inf}),
        ValueError,
        r"init_params\['mu'\] is not finite",
    ),
    (
        "init_params empty",
        run(init_params={}),
        ValueError,
        r"MCMC\.run: init_params has no value for the sites \['mu'\]",
    ),
    (
        "NUTS model and potential",
        lambda b: NUTS(one_site, potential_fn=lambda z: 0.0),
        ValueError,
        r"Only one of `model` or `potential_fn`",
    ),
    (
        "NUTS step_size negative",
        lambda b: NUTS(one_site, step_size=-0.1),
        ValueError,
        r"NUTS: step_size must be in \(0\.0, inf\), got -0\.1",
    ),
    (
        "NUTS target above one",
        lambda b: NUTS(one_site, target_accept_prob=1.5),
        ValueError,
        r"NUTS: target_accept_prob must be in \(0\.0, 1\.0\), got 1\.5",
    ),
    (
        "NUTS target a str",
        lambda b: NUTS(one_site, target_accept_prob="high"),
        TypeError,
        r"NUTS: target_accept_prob must be a number, got 'high' \(str\)",
    ),
    (
        "NUTS max_tree_depth zero",
        lambda b: NUTS(one_site, max_tree_depth=0),
        ValueError,
        r"NUTS: max_tree_depth must be an int >= 1, got 0",
    ),
    (
        "NUTS model not callable",
        lambda b: NUTS(3),
        TypeError,
        r"NUTS: model must be callable, got 3 \(int\)",
    ),
    (
        "NUTS init_strategy",
        lambda b: NUTS(one_site, init_strategy=3),
        TypeError,
        r"NUTS: init_strategy must be callable, got 3",
    ),
    (
        "HMC num_steps zero",
        lambda b: HMC(one_site, num_steps=0),
        ValueError,
        r"HMC: num_steps must be an int >= 1, got 0",
    ),
    # -- Predictive -----------------------------------------------------------------------
    (
        "predictive unknown site",
        lambda b: Predictive(one_site, posterior_samples={"muu": b.xp.zeros(3)})(b.key(0)),
        ValueError,
        r"Predictive: posterior_samples names \['muu'\], which the model does not have; "
        r"its sites are \['mu'\]",
    ),
    (
        "predictive samples a list",
        predictive(one_site, posterior_samples=[1.0]),
        TypeError,
        r"Predictive: posterior_samples must be a dict of site names, got \[1\.0\] \(list\)",
    ),
    (
        "predictive num_samples zero",
        predictive(one_site, num_samples=0),
        ValueError,
        r"Predictive: num_samples must be an int >= 1, got 0",
    ),
    (
        "predictive num_samples float",
        predictive(one_site, num_samples=2.5),
        TypeError,
        r"Predictive: num_samples must be an int >= 1, got 2\.5",
    ),
    (
        "predictive model not callable",
        predictive(3, num_samples=2),
        TypeError,
        r"Predictive: model must be callable, got 3 \(int\)",
    ),
    (
        "predictive key an int",
        lambda b: Predictive(one_site, num_samples=2)(0),
        TypeError,
        r"Predictive: rng_key must be a PRNG key \(\w+\), got 0 \(int\)",
    ),
]


def _sample_in_plate(b: Backend) -> Any:
    with minippl.plate("N", 3):
        return minippl.sample("obs", dist.Normal(b.xp.zeros(5), 1.0))


def test_at_least_sixty_cases() -> None:
    assert len(CASES) >= 60
    assert len({name for name, *_ in CASES}) == len(CASES)


@pytest.mark.parametrize(("name", "call", "kind", "words"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_a_named_error(
    backend: Backend, name: str, call: Callable[[Backend], Any], kind: Any, words: str
) -> None:
    with pytest.raises(kind, match=words):
        call(backend)
    assert stack() == ()


def test_a_site_error_keeps_the_original_chained(backend: Backend) -> None:
    with pytest.raises(ValueError, match="site 'obs'") as caught:
        log_density(in_plate, (backend.xp.zeros(5),), {}, {"mu": 0.0})
    assert isinstance(caught.value.__cause__, ValueError)
    assert "site" not in str(caught.value.__cause__)
