"""Bad input gets a clear error (or warning) that names the site and says the fix."""

from __future__ import annotations

from typing import Any

import pytest

import minippl
import minippl as numpyro
import minippl.distributions as dist
from backends import Backend
from minippl import handlers
from minippl.infer.reparam import LocScaleReparam
from minippl.runtime import MissingKeyError


def one_site() -> Any:
    return numpyro.sample("x", dist.Normal(0.0, 1.0))


# -- the errors the issue lists, one test each ------------------------------------------------


def test_sampling_without_a_key_says_wrap_in_seed(backend: Backend) -> None:
    with pytest.raises(MissingKeyError, match=r"sample site 'x' has no PRNG key.*seed"):
        one_site()
    with pytest.raises(MissingKeyError, match=r"'x'.*handlers\.seed\(model, rng_seed=0\)"):
        handlers.trace(one_site).get_trace()


def test_two_sites_with_one_name(backend: Backend) -> None:
    def model() -> None:
        numpyro.sample("x", dist.Normal(0.0, 1.0))
        numpyro.deterministic("x", 1.0)

    with pytest.raises(ValueError, match=r"two sites are named 'x'.*handlers\.scope"):
        handlers.trace(handlers.seed(model, rng_seed=0)).get_trace()


@pytest.mark.parametrize("handler", [handlers.condition, handlers.substitute, handlers.do])
def test_data_naming_a_missing_site_warns(backend: Backend, handler: Any) -> None:
    model = handler(one_site, data={"x": 1.0, "y_typo": 2.0})
    with pytest.warns(UserWarning, match=r"\['y_typo'\].*its sites are \['x'\]"):
        handlers.seed(model, rng_seed=0)()


def test_plate_size_that_does_not_match_the_batch_shape(backend: Backend) -> None:
    def model() -> None:
        with numpyro.plate("data", 3):
            numpyro.sample("obs", dist.Normal(backend.xp.zeros(5), 1.0))

    with pytest.raises(ValueError, match=r"site 'obs': batch shape \(5,\).*plate 'data'"):
        handlers.seed(model, rng_seed=0)()


def test_block_with_hide_and_expose(backend: Backend) -> None:
    with pytest.raises(ValueError, match="block: got hide and expose; give only one"):
        handlers.block(one_site, hide=["x"], expose=["y"])


@pytest.mark.parametrize("factor", [0.0, -2.0])
def test_non_positive_scale(backend: Backend, factor: float) -> None:
    with pytest.raises(ValueError, match=r"scale: the factor must be positive.*mask"):
        handlers.scale(one_site, scale=factor)


def test_unknown_backend_lists_the_installed_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown minippl backend 'torch'.*\['jax', 'numpy'"):
        minippl.set_backend("torch")


@pytest.mark.parametrize("family", ["Exponential", "Gamma", "HalfNormal"])
def test_loc_scale_reparam_of_a_site_without_loc_and_scale(backend: Backend, family: str) -> None:
    fn = {
        "Exponential": dist.Exponential(1.0),
        "Gamma": dist.Gamma(2.0, 1.0),
        "HalfNormal": dist.HalfNormal(1.0),
    }

    def model() -> None:
        numpyro.sample("rate", fn[family])

    config = {"rate": LocScaleReparam(centered=0)}
    with pytest.raises(
        ValueError, match=rf"site 'rate' has a {family} distribution.*TransformReparam"
    ):
        handlers.seed(handlers.reparam(model, config=config), rng_seed=0)()


# -- more bad input ---------------------------------------------------------------------------


def test_bad_rng_seed(backend: Backend) -> None:
    with pytest.raises(TypeError, match="rng_seed must be an int or a PRNG key"):
        handlers.seed(one_site, rng_seed="zero")


def test_options_passed_positionally(backend: Backend) -> None:
    with pytest.raises(TypeError, match=r"must be callable, got int.*seed\(rng_seed=0\)"):
        handlers.seed(0)  # type: ignore[arg-type]


def test_condition_needs_exactly_one_source(backend: Backend) -> None:
    with pytest.raises(ValueError, match="exactly one of data= or condition_fn="):
        handlers.condition(one_site)
    with pytest.raises(ValueError, match="exactly one of data= or substitute_fn="):
        handlers.substitute(one_site, data={}, substitute_fn=lambda m: None)


def test_block_names_must_be_a_list(backend: Backend) -> None:
    with pytest.raises(TypeError, match=r"hide=\['x'\]"):
        handlers.block(one_site, hide="x")


def test_mask_must_be_boolean(backend: Backend) -> None:
    with pytest.raises(ValueError, match="must be boolean"):
        handlers.mask(one_site, mask=backend.xp.asarray([1.0, 0.0]))


def test_sample_needs_a_distribution(backend: Backend) -> None:
    with pytest.raises(TypeError, match="sample site 'x': fn must be a minippl distribution"):
        numpyro.sample("x", 1.0)  # type: ignore[arg-type]


def test_plate_dim_already_used(backend: Backend) -> None:
    with pytest.raises(ValueError, match="plate 'b': dim -1 is already used"):
        with handlers.seed(rng_seed=0), numpyro.plate("a", 2), numpyro.plate("b", 3, dim=-1):
            pass


def test_plate_bad_size_and_dim(backend: Backend) -> None:
    with pytest.raises(ValueError, match=r"plate 'p': size must be an int >= 1, got 0"):
        numpyro.plate("p", 0)
    with pytest.raises(ValueError, match="plate 'p': dim must be a negative int"):
        numpyro.plate("p", 2, dim=0)


def test_subsampling_without_a_key(backend: Backend) -> None:
    with pytest.raises(MissingKeyError, match="subsampled plate 'p'"):
        numpyro.plate("p", 10, subsample_size=2)
    with pytest.raises(ValueError, match="subsampling a plate needs a PRNG key"), handlers.trace():
        numpyro.plate("p", 10, subsample_size=2)


def test_param_with_a_callable_init_outside_seed(backend: Backend) -> None:
    with pytest.raises(MissingKeyError, match="param .* 'w'"):
        numpyro.param("w", lambda key: 0.0)


def test_replay_of_a_site_of_another_type(backend: Backend) -> None:
    def model() -> None:
        numpyro.sample("x", dist.Normal(0.0, 1.0))

    observed = handlers.trace(handlers.condition(model, data={"x": 1.0})).get_trace()
    with pytest.raises(RuntimeError, match="replay: site 'x' must be a latent sample"):
        handlers.seed(handlers.replay(model, trace=observed), rng_seed=0)()


def test_param_value_of_the_wrong_shape_inside_a_plate(backend: Backend) -> None:
    def model() -> None:
        with numpyro.plate("p", 4):
            numpyro.param("w", backend.xp.zeros(3), event_dim=0)

    with pytest.raises(ValueError, match=r"plate 'p'.*param 'w' with event_dim=0 has shape \(3,\)"):
        handlers.seed(model, rng_seed=0)()
