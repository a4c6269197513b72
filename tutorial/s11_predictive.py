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
# # 11. Practical recipe: posterior predictive with handlers
#
# **Source beside the text:** `minippl/handlers/inspection.py` (`seed`, `trace`),
# `minippl/handlers/values.py` (`substitute`), `minippl/infer/predictive.py` (`Predictive`,
# which does the same for every posterior draw at once, and `log_likelihood`).
#
# Everything so far comes together in the Bayesian workflow's routine steps: prior predictive
# draws, a fit, posterior predictive draws, and the pointwise log-likelihood. Each is a short
# composition of `seed`, `trace` and `substitute`, the same composition `Predictive` runs
# internally.
#
# ## Prior predictive (`seed` + `trace`)
#
# A prior predictive draw is one run of the model with nothing conditioned: trace it and read
# off the `obs` site.

# %%
from minippl import handlers
from minippl.infer import MCMC, NUTS, Predictive
from minippl.infer import log_likelihood as infer_log_likelihood
from tutorial.common import (
    arviz,
    backend,
    conditioned_linear_model,
    guide_key,
    linear_model,
    mcmc_sizes,
    plt,
    save_figure,
    x_data,
    xp,
    y_data,
)

rng_subkey = guide_key(5)  # rng_key, rng_subkey = split(rng_key)
prior_trace = handlers.trace(handlers.seed(linear_model, rng_seed=rng_subkey)).get_trace(x_data)
y_prior = prior_trace["obs"]["value"]
print(f"Prior predictive sample shape: {y_prior.shape}")

# %%
fig, ax = plt.subplots()
ax.scatter(x_data, y_data, c="black", label="observed data")
ax.scatter(x_data, y_prior, c="C0", label="prior predictive sample")
ax.legend()
ax.set(title="Synthetic Data", xlabel="x", ylabel="y")
save_figure(fig, "s11_prior_predictive")

# %% [markdown]
# ## Posterior predictive (`substitute` + `seed` + `trace`)
#
# First fit the conditioned model (section 5) with NUTS. Then put one posterior draw into the
# unconditioned model with `substitute`, and trace it: `obs` is drawn given those parameters.

# %%
# First, fit the linear model with MCMC
num_warmup, num_samples, num_chains = mcmc_sizes()
kernel = NUTS(conditioned_linear_model)
mcmc_linear = MCMC(
    kernel,
    num_warmup=num_warmup,
    num_samples=num_samples,
    num_chains=num_chains,
    progress_bar=False,
)
rng_subkey = guide_key(6)  # rng_key, rng_subkey = split(rng_key)
mcmc_linear.run(rng_subkey, x_data)
mcmc_linear.print_summary()
posterior_samples_linear = mcmc_linear.get_samples()

# %%
# Pick one posterior sample
one_sample = {k: v[0] for k, v in posterior_samples_linear.items()}

post_pred_trace = handlers.trace(
    handlers.seed(handlers.substitute(linear_model, data=one_sample), rng_seed=2)
).get_trace(x_data)
y_post = post_pred_trace["obs"]["value"]
print(f"Posterior predictive sample shape: {y_post.shape}")

# %%
fig, ax = plt.subplots()
ax.scatter(x_data, y_data, c="black", label="observed data")
ax.scatter(x_data, y_post, c="C1", label="posterior predictive sample")
ax.legend()
ax.set(title="Synthetic Data", xlabel="x", ylabel="y")
save_figure(fig, "s11_posterior_predictive")

# %% [markdown]
# ## Log-likelihood (`substitute` + `seed` + `trace`)
#
# The pointwise log-likelihood of the data under one posterior draw: substitute the draw,
# trace the *conditioned* model, and evaluate the observed site's distribution at its value.


# %%
def log_likelihood(rng_key, params, model, *args, **kwargs):
    """Compute pointwise log-likelihood using handler composition."""
    model_sub = handlers.substitute(handlers.seed(model, rng_key), params)
    model_trace = handlers.trace(model_sub).get_trace(*args, **kwargs)
    obs_site = model_trace["obs"]
    return obs_site["fn"].log_prob(obs_site["value"])


rng_subkey = guide_key(7)  # rng_key, rng_subkey = split(rng_key)
ll = log_likelihood(rng_subkey, one_sample, conditioned_linear_model, x_data)
print(f"Log-likelihood shape: {ll.shape}, sum: {ll.sum():.2f}")

# %% [markdown]
# minippl's own `log_likelihood` (`minippl/infer/predictive.py`) is the same composition, run for
# every posterior draw at once and for every observed site. For the first draw it agrees:

# %%
pointwise = infer_log_likelihood(conditioned_linear_model, posterior_samples_linear, x_data)
print(f"minippl.infer.log_likelihood: shape {pointwise['obs'].shape}")
assert bool(xp.allclose(pointwise["obs"][0], ll, rtol=1e-5, atol=1e-5))

# %% [markdown]
# ## Comparison with `Predictive`
#
# `Predictive` does exactly this, for all posterior draws at once: it composes `substitute`,
# `seed` and `trace` and maps the result over the draws (with `vmap` on JAX).

# %%
predictive = Predictive(linear_model, posterior_samples=posterior_samples_linear)
pred_samples = predictive(backend.key(4), x_data)
print({name: tuple(value.shape) for name, value in pred_samples.items()})

# %% [markdown]
# The 50% and 94% highest-density intervals of the posterior predictive distribution, drawn
# with ArviZ:

# %%
az = arviz()
if az is not None:
    import numpy as np

    posterior_predictive = az.from_dict(
        posterior_predictive={
            k: backend.to_numpy(v)[np.newaxis, :] for k, v in pred_samples.items()
        },
        coords={"obs_idx": np.arange(len(x_data))},
        dims={"obs_idx": ["obs_idx"], "obs": ["obs_idx"]},
    )
    x_plot = backend.to_numpy(x_data)

    fig, ax = plt.subplots()
    az.plot_hdi(
        x_plot,
        posterior_predictive["posterior_predictive"]["obs"],
        hdi_prob=0.5,
        fill_kwargs={"alpha": 0.5, "label": "50% HDI"},
        ax=ax,
    )
    az.plot_hdi(
        x_plot,
        posterior_predictive["posterior_predictive"]["obs"],
        hdi_prob=0.94,
        fill_kwargs={"alpha": 0.3, "label": "94% HDI"},
        ax=ax,
    )
    ax.scatter(x_data, y_data, c="black", label="observed data")
    ax.legend()
    ax.set(title="Synthetic Data", xlabel="x", ylabel="y")
    save_figure(fig, "s11_posterior_predictive_hdi")
