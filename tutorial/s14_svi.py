# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 14. Variational inference: SVI from the handlers
#
# **Source beside the text:** `minippl/infer/elbo.py` (`run_guide_and_model`,
# `Trace_ELBO.particle`), `minippl/infer/svi.py` (`SVI.init`, `SVI._step`, `SVI.run`),
# `minippl/optim.py` (`Adam`), `minippl/infer/autoguide.py` (`AutoGuide._setup_prototype`,
# `AutoNormal.__call__`).
#
# NUTS draws from the posterior; variational inference instead *fits* a distribution to it.
# A **guide** `q(z; phi)` is a second program with the model's latent sites, whose numbers
# `phi` are `param` sites. SVI turns `phi` to maximise the evidence lower bound,
# `ELBO(phi) = E_q[log p(x, z) - log q(z)] <= log p(x)`, by stochastic gradient steps. The
# whole estimator is four handlers from the earlier sections: `seed` and `substitute` run the
# guide at the current params, `trace` records it, `replay` runs the model at the guide's
# draws. Section 5 ended with `lift`, which turns `param` sites into random variables: here a
# model with `param` sites is first fitted by SVI, then lifted and fitted again by NUTS.

# %%
import numpy as np

import minippl as numpyro
import minippl.distributions as dist
from minippl import explain, handlers
from minippl.distributions import constraints
from minippl.infer import MCMC, NUTS, SVI, Trace_ELBO
from minippl.infer.autoguide import AutoNormal
from minippl.optim import Adam
from tutorial.common import guide_key, mcmc_sizes, plt, save_figure, x_data, xp, y_data

num_warmup, num_samples, num_chains = mcmc_sizes()
num_steps = 3000 if num_samples >= 1000 else 600


def param_model(x, y=None):
    # The line's coefficients are parameters (point estimates); the noise is a random variable.
    intercept = numpyro.param("intercept", 0.0)
    slope = numpyro.param("slope", 0.0)
    sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
    with numpyro.plate("data", len(x)):
        numpyro.sample("obs", dist.Normal(intercept + slope * x, sigma), obs=y)


def sigma_guide(x, y=None):
    # q(sigma) = LogNormal(m, s): two more params, s kept positive through biject_to.
    m = numpyro.param("sigma_m", 0.0)
    s = numpyro.param("sigma_s", 0.5, constraint=constraints.positive)
    numpyro.sample("sigma", dist.LogNormal(m, s))


svi = SVI(param_model, sigma_guide, Adam(0.02), Trace_ELBO())
fit = svi.run(guide_key(8), num_steps, x_data, y_data, progress_bar=False)
sigma_mean = float(xp.exp(fit.params["sigma_m"] + fit.params["sigma_s"] ** 2 / 2))
print(
    f"SVI: intercept {float(fit.params['intercept']):.3f}, slope {float(fit.params['slope']):.3f}"
)
print(f"     E_q[sigma] {sigma_mean:.3f}   (the data were drawn with 1.0, 2.0, 0.5)")
print(f"     -ELBO: first step {float(fit.losses[0]):.1f}, last step {float(fit.losses[-1]):.1f}")

# %% [markdown]
# ## How one step uses the handlers
#
# `explain` (section 10) shows every message of one evaluation of the loss. The guide runs
# first, under `seed -> substitute -> trace`: `substitute` puts the current `sigma_m` and
# `sigma_s` at the param sites, `seed` gives `sigma` its key and the default step draws it.
# Then the model runs under `seed -> replay -> substitute -> trace`: `replay` hands `sigma` the
# guide's draw, `substitute` the current `intercept` and `slope`; `obs` keeps its data. The
# loss is `sum log p - sum log q` over the two traces.

# %%
params_now = svi.get_params(fit.state)
record = explain(
    lambda: Trace_ELBO().loss(guide_key(9), params_now, param_model, sigma_guide, x_data, y_data)
)
sigma_stories = [story for story in record.sites if story.name == "sigma"]
for story, program in zip(sigma_stories, ("guide", "model"), strict=True):
    setters = [
        "the default draw" if step.phase == "default" else step.handler
        for step in story.steps
        if "value" in step.fields
    ]
    print(f"'sigma' in the {program}: value from {setters}, stack {' -> '.join(story.stack)}")

# %% [markdown]
# `block` enters with the automatic guides. An `AutoNormal` must learn the model's latent
# sites before it can sample them: on its first call it runs the model once under `block`,
# so the `trace` that records the guide never sees that run.

# %%
with handlers.trace() as first_call:
    handlers.seed(AutoNormal(param_model), rng_seed=0)(x_data, y_data)
print("what the guide's first call shows to an outer trace:", list(first_call))

# %% [markdown]
# ## `lift`: the params become random variables
#
# `lift` turns each `param` site into a `sample` site from the prior it is given (section 5).
# The lifted model has no params left, so NUTS can sample all three quantities.

# %%
lifted = handlers.lift(
    param_model, prior={"intercept": dist.Normal(0.0, 10.0), "slope": dist.Normal(0.0, 5.0)}
)
mcmc = MCMC(
    NUTS(lifted), num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
    progress_bar=False,
)  # fmt: skip
mcmc.run(guide_key(10), x_data, y_data)
posterior = mcmc.get_samples()
for name in ("intercept", "slope", "sigma"):
    print(f"NUTS on the lifted model: {name} {float(posterior[name].mean()):.3f}")

# %% [markdown]
# ## Eight schools: the mean-field Gaussian against NUTS
#
# The non-centred eight schools of section 9, fitted by `AutoNormal`: an independent Normal
# per latent site in unconstrained space (`tau` through `exp`). Mean field cannot bend with
# the posterior's dependence between `tau` and the school effects, so its marginals are
# narrower than NUTS's, most visibly for `tau`.

# %%
J = 8
y_schools = xp.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
sigma_schools = xp.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])


def schools(J, sigma, y=None):
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
    with numpyro.plate("J", J):
        theta_decentered = numpyro.sample("theta_decentered", dist.Normal(0.0, 1.0))
        theta = numpyro.deterministic("theta", mu + tau * theta_decentered)
        numpyro.sample("obs", dist.Normal(theta, sigma), obs=y)


guide = AutoNormal(schools)
schools_fit = SVI(schools, guide, Adam(0.01), Trace_ELBO()).run(
    guide_key(11), 2 * num_steps, J, sigma_schools, y=y_schools, progress_bar=False
)
approx = guide.sample_posterior(guide_key(12), schools_fit.params, sample_shape=(4000,))
nuts = MCMC(
    NUTS(schools), num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
    progress_bar=False,
)  # fmt: skip
nuts.run(guide_key(13), J, sigma_schools, y=y_schools)
exact = nuts.get_samples()
for name in ("mu", "tau"):
    print(
        f"{name:>4}: SVI {float(approx[name].mean()):6.2f} +- {float(approx[name].std()):5.2f}"
        f"   NUTS {float(exact[name].mean()):6.2f} +- {float(exact[name].std()):5.2f}"
    )

# %%
fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
losses = np.asarray(schools_fit.losses)
axes[0].plot(losses, lw=0.5, alpha=0.5)
window = 50
axes[0].plot(
    np.arange(window - 1, len(losses)), np.convolve(losses, np.ones(window) / window, "valid")
)
axes[0].set(title="-ELBO per step (and its running mean)", xlabel="step", yscale="log")
for ax, (name, label) in zip(
    axes[1:], [("mu", "mu"), ("tau", "tau"), ("theta", "theta[0]")], strict=True
):
    a = np.asarray(approx[name]).reshape(4000, -1)[:, 0]
    b = np.asarray(exact[name]).reshape(len(np.asarray(exact[name])), -1)[:, 0]
    bins = np.linspace(min(a.min(), b.min()), np.quantile(np.concatenate([a, b]), 0.99), 40)
    ax.hist(b, bins=bins, density=True, alpha=0.5, label="NUTS")
    ax.hist(a, bins=bins, density=True, alpha=0.5, label="SVI, AutoNormal")
    ax.set(title=label)
axes[1].legend()
save_figure(fig, "s14_svi_eight_schools")
