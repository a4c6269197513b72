"""Nothing is lost: a run resumes in a new process, and after an error the handler stack is
empty and the kernel and the ``MCMC`` object run again, drawing what a fresh one draws."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import minippl
import minippl.distributions as dist
from backends import Backend
from minippl import handlers
from minippl.infer import MCMC, NUTS, MCMCWarning
from minippl.runtime import stack
from tests import resume_worker

ROOT = Path(__file__).resolve().parent.parent


def draws(mcmc: MCMC) -> dict[str, Any]:
    return {k: np.asarray(v) for k, v in mcmc.get_samples().items()}


def test_a_pickled_state_resumes_in_a_new_process(backend: Backend, tmp_path: Path) -> None:
    mcmc = resume_worker.new_mcmc()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MCMCWarning)
        mcmc.run(backend.key(0), resume_worker.DATA)
    state_file = tmp_path / "state.pkl"
    state_file.write_bytes(pickle.dumps(mcmc.last_state))
    mcmc.post_warmup_state = mcmc.last_state  # the in-process continuation
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MCMCWarning)
        mcmc.run(backend.key(7), resume_worker.DATA)
    here = draws(mcmc)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "tests.resume_worker", backend.name, str(state_file)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    there = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(there) == {"mu", "sigma"}
    for name, values in here.items():
        np.testing.assert_array_equal(np.asarray(there[name]), np.ravel(values))


def model(y: Any) -> None:
    mu = minippl.sample("mu", dist.Normal(0.0, 1.0))
    with minippl.plate("N", 3):
        minippl.sample("obs", dist.Normal(mu, 1.0), obs=y)


def new(num_chains: int = 1) -> MCMC:
    return MCMC(NUTS(model), num_warmup=5, num_samples=5, num_chains=num_chains,
                progress_bar=False)  # fmt: skip


@pytest.mark.parametrize(
    "mistake",
    [
        lambda b, m: m.run(b.key(0), np.zeros(5)),  # data of the wrong shape
        lambda b, m: m.run(b.key(0), np.zeros(3), init_params={"muu": 0.0}),
        lambda b, m: m.run(b.key(0), np.zeros(3), init_params={"mu": np.nan}),
        lambda b, m: m.run(0, np.zeros(3)),  # an int for a key
    ],
    ids=["bad shape", "unknown init name", "nan init", "int key"],
)
def test_after_an_error_the_same_mcmc_runs_again(backend: Backend, mistake: Any) -> None:
    mcmc = new()
    with pytest.raises((ValueError, TypeError)):
        mistake(backend, mcmc)
    assert stack() == ()
    mcmc.run(backend.key(0), np.zeros(3))
    fresh = new()
    fresh.run(backend.key(0), np.zeros(3))
    np.testing.assert_array_equal(draws(mcmc)["mu"], draws(fresh)["mu"])


def test_after_an_error_inside_nested_handlers_the_stack_is_empty(backend: Backend) -> None:
    def failing() -> None:
        with minippl.plate("N", 3), handlers.scale(scale=2.0):
            minippl.sample("x", dist.Normal(0.0, 1.0), sample_shape=(-1,))

    with pytest.raises(ValueError, match="sample_shape"):
        handlers.trace(handlers.seed(handlers.condition(failing, data={}), 0)).get_trace()
    assert stack() == ()
    kernel = NUTS(model)
    MCMC(kernel, num_warmup=3, num_samples=3, progress_bar=False).run(
        backend.key(1), np.zeros(3)
    )  # the kernel, after the MCMC it served failed, serves another
    assert stack() == ()


def test_a_model_without_latent_sites_gives_empty_samples(backend: Backend) -> None:
    def observed_only(y: Any) -> None:
        minippl.sample("y", dist.Normal(0.0, 1.0), obs=y)

    mcmc = MCMC(NUTS(observed_only), num_warmup=3, num_samples=4, progress_bar=False)
    mcmc.run(backend.key(0), np.zeros(3))
    assert mcmc.get_samples() == {}
    assert np.asarray(mcmc.get_extra_fields()["diverging"]).shape == (4,)
