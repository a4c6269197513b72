"""``scan`` and ``cond`` against NumPyro's ``contrib.control_flow``: one model written for
both libraries, run with the same seed on JAX, compared site by site."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import pytest

pytest.importorskip("numpyro")

import numpyro  # noqa: E402
import numpyro.distributions as ndist  # noqa: E402
from numpyro import handlers as nhandlers  # noqa: E402
from numpyro.contrib import control_flow as ncontrol  # noqa: E402
from numpyro.infer.util import log_density as nlog_density  # noqa: E402

import minippl  # noqa: E402
import minippl.distributions as dist  # noqa: E402
from backends import Backend  # noqa: E402
from minippl import control_flow, handlers  # noqa: E402
from minippl.infer.util import log_density  # noqa: E402

pytestmark = pytest.mark.reference

LIBRARIES = {
    "numpyro": (numpyro, ndist, nhandlers, ncontrol),
    "minippl": (minippl, dist, handlers, control_flow),
}


def local_level(lib: tuple[ModuleType, Any, Any, Any], T: int, y: Any = None) -> Any:
    ppl, D, _, cf = lib
    q = ppl.sample("q", D.HalfNormal(1.0))
    s = ppl.sample("s", D.HalfNormal(1.0))

    def step(level: Any, y_t: Any) -> tuple[Any, Any]:
        level = ppl.sample("level", D.Normal(level, q))
        noisy = ppl.sample("y", D.Normal(level, s), obs=y_t)
        ppl.deterministic("gap", noisy - level)
        return level, level

    return cf.scan(step, 0.0, y, length=T)


def _trace(name: str, T: int, y: Any = None, data: dict[str, Any] | None = None) -> Any:
    lib = LIBRARIES[name]
    h = lib[2]

    def model() -> Any:
        return local_level(lib, T, y)

    run = h.condition(model, data=data) if data else model
    return h.trace(h.seed(run, rng_seed=7)).get_trace()


def _assert_same(ours: Any, theirs: Any) -> None:
    assert list(ours) == list(theirs)
    for name, site in theirs.items():
        mine = ours[name]
        assert mine["type"] == site["type"], name
        np.testing.assert_array_equal(np.asarray(mine["value"]), np.asarray(site["value"]))
        if site["type"] != "sample":
            continue
        assert mine["is_observed"] == site["is_observed"], name
        assert mine["fn"].batch_shape == site["fn"].batch_shape, name
        assert mine["fn"].event_shape == site["fn"].event_shape, name
        ours_lp = float(np.sum(mine["fn"].log_prob(mine["value"])))
        theirs_lp = float(np.sum(site["fn"].log_prob(site["value"])))
        np.testing.assert_allclose(ours_lp, theirs_lp, rtol=1e-6)


def test_scan_trace_of_100_steps_matches_numpyro(jax_backend: Backend) -> None:
    theirs = _trace("numpyro", 100)
    ours = _trace("minippl", 100)
    assert np.shape(ours["level"]["value"]) == (100,)
    _assert_same(ours, theirs)


def test_scan_conditioned_trace_and_log_density_match_numpyro(jax_backend: Backend) -> None:
    prior = _trace("numpyro", 100)
    y, level = prior["y"]["value"], prior["level"]["value"]
    _assert_same(
        _trace("minippl", 100, y=y, data={"level": level}),
        _trace("numpyro", 100, y=y, data={"level": level}),
    )
    params = {"q": 0.8, "s": 0.4, "level": level}
    theirs, _ = nlog_density(lambda: local_level(LIBRARIES["numpyro"], 100, y), (), {}, params)
    ours, _ = log_density(lambda: local_level(LIBRARIES["minippl"], 100, y), (), {}, params)
    np.testing.assert_allclose(float(ours), float(theirs), rtol=1e-6)


def test_cond_trace_matches_numpyro(jax_backend: Backend) -> None:
    def model(lib: tuple[ModuleType, Any, Any, Any]) -> Any:
        ppl, D, _, cf = lib
        cluster = ppl.sample("cluster", D.Normal(0.0, 1.0))
        return cf.cond(
            cluster > 0,
            lambda _: ppl.sample("x", D.Normal(20.0, 1.0)),
            lambda _: ppl.sample("x", D.Normal(0.0, 1.0)),
            None,
        )

    for seed in range(3):
        traces = [
            lib[2].trace(lib[2].seed(lambda lib=lib: model(lib), rng_seed=seed)).get_trace()
            for lib in (LIBRARIES["minippl"], LIBRARIES["numpyro"])
        ]
        _assert_same(*traces)
