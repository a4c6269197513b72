"""minippl.to_arviz: an InferenceData with posterior, sample_stats, observed_data and
pointwise log likelihood, usable by ArviZ's own functions."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from test_mcmc_stand_in import RWM, normal_model

import minippl
from backends import Backend
from minippl.infer import MCMC, Predictive

pytestmark = pytest.mark.usefixtures("x64")  # float64 on JAX (NumPy always is)

az = pytest.importorskip("arviz")



def test_to_arviz_groups(backend: Backend) -> None:
    y = backend.xp.asarray(np.random.default_rng(0).normal(1.0, 2.0, size=12))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        mcmc = MCMC(RWM(normal_model), num_warmup=50, num_samples=100, num_chains=2,
                    progress_bar=False)  # fmt: skip
    mcmc.run(backend.key(0), y, extra_fields=("accept_prob", "potential_energy"))
    predictions = Predictive(normal_model, mcmc.get_samples())(backend.key(1), y)
    idata = minippl.to_arviz(mcmc, log_likelihood=True, posterior_predictive=predictions)
    assert {"posterior", "sample_stats", "observed_data", "log_likelihood",
            "posterior_predictive"} <= set(idata.groups())  # fmt: skip
    assert idata.posterior["mu"].shape == (2, 100)
    assert idata.posterior["twice_mu"].shape == (2, 100)
    assert idata.sample_stats["diverging"].shape == (2, 100)
    assert "acceptance_rate" in idata.sample_stats and "lp" in idata.sample_stats
    np.testing.assert_allclose(idata.observed_data["y"].values, np.asarray(y))
    assert idata.log_likelihood["y"].shape == (2, 100, 12)
    assert idata.posterior_predictive["y"].shape == (2, 100, 12)
    summary = az.summary(idata, var_names=["mu", "sigma"])
    assert list(summary.index) == ["mu", "sigma"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Pareto k of a short random-walk run
        loo = az.loo(idata)
    assert np.isfinite(loo.elpd_loo)
