"""The guide's numbers: the results the tutorial prints, at its sizes (4 chains of 1000 + 1000).

* Eight schools, centred: divergences (the funnel).
* The same model through ``reparam(LocScaleReparam(0))``: none or almost none, and
  thousands of effective draws.
* The collections email regression on the shipped ``tutorial/data/collections_email.csv``:
  ``b_email`` near 4.3 with sd near 2.1 (two chains of 500 + 1000 here, for time).
"""

from __future__ import annotations

import csv
import warnings
from typing import Any

import numpy as np
import pytest
from test_posteriors import eight_schools_centered, load

import minippl
import minippl.distributions as dist
from backends import Backend
from benchmarks.models import SHIPPED_EMAIL_CSV, email_regression
from minippl import handlers
from minippl.diagnostics import effective_sample_size
from minippl.infer import MCMC, NUTS, MCMCWarning
from minippl.infer.reparam import LocScaleReparam

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("x64")]



def guide_run(model: Any, *args: Any, chains: int = 4, warmup: int = 1000, **kwargs: Any) -> MCMC:
    import jax

    mcmc = MCMC(NUTS(model), num_warmup=warmup, num_samples=1000, num_chains=chains,
                chain_method="vectorized", progress_bar=False)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MCMCWarning)
        mcmc.run(jax.random.key(0), *args, **kwargs)
    return mcmc


def test_eight_schools_centred_diverges_and_non_centred_does_not(
    jax_backend: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    data, _ = load("eight_schools-eight_schools_centered")
    xp = jax_backend.xp
    args = (data["J"], xp.asarray(data["y"], dtype=float), xp.asarray(data["sigma"], dtype=float))

    centred = guide_run(eight_schools_centered, *args)
    centred_divergences = int(np.asarray(centred.get_extra_fields()["diverging"]).sum())
    assert centred_divergences > 10

    reparameterized = handlers.reparam(eight_schools_centered, config={"theta": LocScaleReparam(0)})
    non_centred = guide_run(reparameterized, *args)
    divergences = int(np.asarray(non_centred.get_extra_fields()["diverging"]).sum())
    assert divergences <= 10  # "none or almost none", of 4000
    samples = non_centred.get_samples(group_by_chain=True)
    assert set(samples) == {"mu", "tau", "theta_decentered", "theta"}
    n_eff = {k: float(np.min(effective_sample_size(np.asarray(v)))) for k, v in samples.items()}
    assert min(n_eff.values()) > 1000, n_eff  # in the thousands

    non_centred.print_summary()
    printed = capsys.readouterr().out
    assert "theta_decentered[7]" in printed and "theta[0]" not in printed  # deterministic left out
    assert printed.rstrip().endswith(f"Number of divergences: {divergences}")


def test_collections_email_effect(jax_backend: Backend) -> None:
    with SHIPPED_EMAIL_CSV.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    xp = jax_backend.xp
    col = {c: xp.asarray([float(r[c]) for r in rows]) for c in rows[0]}

    # The guide's model, as the benchmarks write it once for every library.
    email_model = email_regression(minippl, dist)

    # 5000 rows: two chains of 500 + 1000 (not the guide's four of 1000 + 1000) keep this
    # test to a few seconds of sampling; the Monte Carlo error of b_email's mean is ~0.07.
    mcmc = guide_run(email_model, col["credit_limit"], col["risk_score"], email=col["email"],
                     payments=col["payments"], chains=2, warmup=500)  # fmt: skip
    b_email = np.asarray(mcmc.get_samples()["b_email"])
    assert b_email.mean() == pytest.approx(4.3, abs=0.3)
    assert b_email.std() == pytest.approx(2.1, abs=0.2)
