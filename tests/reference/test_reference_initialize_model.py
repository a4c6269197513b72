"""``initialize_model`` with a stack of keys against NumPyro's: the same starting point per
key, the same shapes (JAX backend, both kinds of JAX key)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("numpyro")

import jax  # noqa: E402
import numpyro  # noqa: E402
import numpyro.distributions as ndist  # noqa: E402
from numpyro.infer.util import initialize_model as numpyro_initialize_model  # noqa: E402

import minippl  # noqa: E402
import minippl.distributions as dist  # noqa: E402
from backends import Backend  # noqa: E402
from minippl.infer.util import initialize_model  # noqa: E402

pytestmark = pytest.mark.reference


def _model(ppl: Any, D: Any) -> Any:
    def model() -> None:
        ppl.sample("a", D.Normal(0.0, 1.0).expand((2,)))
        ppl.sample("b", D.Gamma(2.0, 1.0))
        ppl.sample("c", D.Beta(2.0, 3.0))

    return model


@pytest.mark.parametrize("make_key", [jax.random.PRNGKey, jax.random.key], ids=["raw", "typed"])
def test_one_starting_point_per_key_as_numpyro(jax_backend: Backend, make_key: Any) -> None:
    keys = jax.random.split(make_key(7), 3)
    ours = initialize_model(keys, _model(minippl, dist)).param_info
    theirs = numpyro_initialize_model(keys, _model(numpyro, ndist)).param_info
    shapes = jax.tree_util.tree_map(np.shape, ours)
    assert shapes == jax.tree_util.tree_map(np.shape, theirs)
    for name in ("a", "b", "c"):
        np.testing.assert_allclose(ours.z[name], theirs.z[name], rtol=1e-6)
        np.testing.assert_allclose(ours.z_grad[name], theirs.z_grad[name], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.potential_energy, theirs.potential_energy, rtol=1e-6)
