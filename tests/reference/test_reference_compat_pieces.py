"""``plate_stack``, ``init_to_mean`` and ``validation_enabled`` against NumPyro's on the same
model and key (JAX backend): the same plates, starting points and checks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("numpyro")

import jax  # noqa: E402
import numpyro  # noqa: E402
import numpyro.distributions as ndist  # noqa: E402
from numpyro import handlers as nhandlers  # noqa: E402
from numpyro.infer import init_to_mean as numpyro_init_to_mean  # noqa: E402
from numpyro.infer.util import initialize_model as numpyro_initialize_model  # noqa: E402

import minippl  # noqa: E402
import minippl.distributions as dist  # noqa: E402
from backends import Backend  # noqa: E402
from minippl import handlers  # noqa: E402
from minippl.infer import init_to_mean  # noqa: E402
from minippl.infer.util import initialize_model  # noqa: E402

pytestmark = pytest.mark.reference


def _plated(ppl: Any, D: Any, rightmost_dim: int) -> Any:
    def model() -> None:
        with ppl.plate_stack("p", (2, 3), rightmost_dim=rightmost_dim):
            ppl.sample("x", D.Normal(0.0, 1.0))

    return model


@pytest.mark.parametrize("rightmost_dim", [-1, -2])
def test_plate_stack_as_numpyro(jax_backend: Backend, rightmost_dim: int) -> None:
    key = jax.random.PRNGKey(5)
    ours = handlers.trace(handlers.seed(_plated(minippl, dist, rightmost_dim), key)).get_trace()
    theirs = nhandlers.trace(
        nhandlers.seed(_plated(numpyro, ndist, rightmost_dim), key)
    ).get_trace()
    np.testing.assert_array_equal(ours["x"]["value"], theirs["x"]["value"])

    def frames(site: Any) -> set[tuple[str, int, int]]:
        return {(f.name, f.dim, f.size) for f in site["cond_indep_stack"]}

    assert frames(ours["x"]) == frames(theirs["x"])


def _prior(ppl: Any, D: Any) -> Any:
    def model() -> None:
        ppl.sample("a", D.Normal(3.0, 1.0).expand((2,)))
        ppl.sample("b", D.Gamma(2.0, 4.0))
        ppl.sample("c", D.Beta(2.0, 3.0))
        ppl.sample("d", D.Dirichlet(np.array([1.0, 2.0, 3.0], dtype=np.float32)))

    return model


def test_init_to_mean_as_numpyro(jax_backend: Backend) -> None:
    key = jax.random.PRNGKey(2)
    ours = initialize_model(key, _prior(minippl, dist), init_strategy=init_to_mean).param_info
    theirs = numpyro_initialize_model(
        key, _prior(numpyro, ndist), init_strategy=numpyro_init_to_mean
    ).param_info
    for name in ("a", "b", "c", "d"):
        np.testing.assert_allclose(ours.z[name], theirs.z[name], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ours.potential_energy, theirs.potential_energy, rtol=1e-6)


@pytest.mark.parametrize("on", [True, False])
def test_validation_enabled_as_numpyro(jax_backend: Backend, on: bool) -> None:
    """Inside the context both refuse a negative scale, or both build the distribution."""
    outcomes = []
    for ppl, D in ((minippl, dist), (numpyro, ndist)):
        with ppl.validation_enabled(on):
            try:
                D.Normal(0.0, -1.0)
                outcomes.append("built")
            except ValueError:
                outcomes.append("refused")
    assert outcomes == ["refused" if on else "built"] * 2
