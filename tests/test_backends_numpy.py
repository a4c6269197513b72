"""The NumPy backend: its own deterministic, splittable keys, and no JAX needed."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import minippl as numpyro
import minippl.distributions as dist
from backends import Backend
from minippl import handlers
from minippl.backend import current

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def numpy_backend() -> Iterator[Backend]:
    previous = current().name
    try:
        yield numpyro.set_backend("numpy")
    finally:
        numpyro.set_backend(previous)


def test_keys_are_deterministic_and_splittable(numpy_backend: Backend) -> None:
    backend = numpy_backend
    key = backend.key(0)
    assert backend.is_key(key) and key.dtype == np.uint32 and key.shape == (2,)
    np.testing.assert_array_equal(backend.split(key, 4), backend.split(backend.key(0), 4))
    children = backend.split(key, 4)
    assert len({tuple(k) for k in children.tolist()}) == 4
    assert tuple(backend.split(key)[0]) != tuple(key)
    assert float(backend.normal(key, ())) == float(backend.normal(backend.key(0), ()))
    assert float(backend.normal(children[0], ())) != float(backend.normal(children[1], ()))


def test_seeded_traces_repeat_on_numpy(numpy_backend: Backend) -> None:
    def model() -> None:
        a = numpyro.sample("a", dist.Normal(0.0, 1.0))
        with numpyro.plate("p", 3):
            numpyro.sample("b", dist.Normal(a, 1.0))

    first = handlers.trace(handlers.seed(model, rng_seed=11)).get_trace()
    again = handlers.trace(handlers.seed(model, rng_seed=11)).get_trace()
    other = handlers.trace(handlers.seed(model, rng_seed=12)).get_trace()
    for name in ("a", "b"):
        assert isinstance(first[name].value, (np.ndarray, np.floating, float))
        np.testing.assert_array_equal(first[name].value, again[name].value)
    assert float(first["a"].value) != float(other["a"].value)


def test_stack_of_plain_and_of_differentiated_arrays(backend: Backend) -> None:
    """``xp.stack`` stacks plain arrays, and passes a gradient back through the stacked rows
    (on NumPy the first is NumPy's own stack, the second autograd's)."""
    xp = backend.xp
    rows = [xp.asarray([1.0, 2.0]), xp.asarray([3.0, 4.0])]
    np.testing.assert_array_equal(np.asarray(xp.stack(rows)), [[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(np.asarray(xp.stack(rows, 1)), [[1.0, 3.0], [2.0, 4.0]])

    def f(v: Any) -> Any:
        return xp.sum(xp.stack([v, 2.0 * v, rows[0]]) ** 2)

    v = xp.asarray([0.5, -1.0])
    np.testing.assert_allclose(np.asarray(backend.grad(f)(v)), 10.0 * np.asarray(v), rtol=1e-6)


def test_numpy_backend_runs_without_jax() -> None:
    script = textwrap.dedent(
        """
        import sys

        class NoJax:
            def find_spec(self, name, path, target=None):
                if name.split(".")[0] in ("jax", "jaxlib"):
                    raise ImportError("JAX is not installed here")

        sys.meta_path.insert(0, NoJax())
        import minippl as numpyro
        import minippl.distributions as dist
        from minippl import handlers
        from minippl.infer.reparam import LocScaleReparam

        def model():
            mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
            with numpyro.plate("J", 3, subsample_size=2):
                numpyro.sample("theta", dist.Normal(mu, 2.0))

        reparam = handlers.reparam(model, config={"theta": LocScaleReparam(0)})
        tr = handlers.trace(handlers.seed(reparam, rng_seed=0)).get_trace()
        assert list(tr) == ["mu", "J", "theta_decentered", "theta"], list(tr)
        assert not [m for m in sys.modules if m.split(".")[0] in ("jax", "jaxlib")]
        print("ok")
        """
    )
    env = {**os.environ, "MINIPPL_BACKEND": "numpy", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
