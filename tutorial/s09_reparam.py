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
# # 9. Reparameterization: `reparam`
#
# **Source beside the text:** `minippl/handlers/reparam.py` (`reparam.process_message`),
# `minippl/infer/reparam.py` (`LocScaleReparam`), `minippl/infer/mcmc.py` (`MCMC`, the
# `diverging` extra field).
#
# `reparam` rewrites sample sites into other coordinates without changing the model's
# distribution. It matters for hierarchical models with a *funnel*: where the group scale is
# small, the group effects are squeezed into a narrow neck of high curvature, and a step size
# that suits the wide mouth of the funnel is far too big for the neck. NUTS then reports
# *divergences*: trajectories whose energy error blew up, a sign that part of the posterior was
# not explored.
#
# The classic example is Eight Schools (Gelman et al., *Bayesian Data Analysis*, sec. 5.5):
# coaching effects measured in eight schools, each with its own standard error.

# %%
import minippl as numpyro
import minippl.distributions as dist
from minippl import handlers
from minippl.infer import MCMC, NUTS
from minippl.infer.reparam import LocScaleReparam
from tutorial.common import guide_key, mcmc_sizes, xp

# Eight Schools data
J = 8
y_schools = xp.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
sigma_schools = xp.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])


def eight_schools(J, sigma, y=None):
    mu = numpyro.sample("mu", dist.Normal(0, 5))
    tau = numpyro.sample("tau", dist.HalfCauchy(5))
    with numpyro.plate("J", J):
        theta = numpyro.sample("theta", dist.Normal(mu, tau))
        numpyro.sample("obs", dist.Normal(theta, sigma), obs=y)


# %% [markdown]
# ## The centred parameterisation, and its divergences
#
# Written as above, `theta ~ Normal(mu, tau)`, the posterior is a funnel in `(tau, theta)`: as
# `tau` shrinks, the `theta` are pinned ever closer to `mu`.

# %%
num_warmup, num_samples, num_chains = mcmc_sizes()
kernel_centered = NUTS(eight_schools, target_accept_prob=0.9)
mcmc_centered = MCMC(
    kernel_centered,
    num_warmup=num_warmup,
    num_samples=num_samples,
    num_chains=num_chains,
    progress_bar=False,
)
rng_subkey = guide_key(3)  # rng_key, rng_subkey = split(rng_key)
mcmc_centered.run(rng_subkey, J, sigma_schools, y=y_schools)
mcmc_centered.print_summary(exclude_deterministic=False)

n_divergences_centered = int(mcmc_centered.get_extra_fields()["diverging"].sum())
print(f"\nNumber of divergences (centered): {n_divergences_centered}")

# %% [markdown]
# ## The non-centred parameterisation, with `reparam`
#
# `LocScaleReparam(centered=0)` rewrites `theta ~ Normal(mu, tau)` as
# `theta_decentered ~ Normal(0, 1)` and `theta = mu + tau * theta_decentered`. The sampler now
# moves in `theta_decentered`, whose prior does not depend on `tau`, and the funnel is gone.

# %%
reparam_config = {"theta": LocScaleReparam(centered=0)}
reparam_eight_schools = handlers.reparam(eight_schools, config=reparam_config)

kernel_noncentered = NUTS(reparam_eight_schools, target_accept_prob=0.9)
mcmc_noncentered = MCMC(
    kernel_noncentered,
    num_warmup=num_warmup,
    num_samples=num_samples,
    num_chains=num_chains,
    progress_bar=False,
)
rng_subkey = guide_key(4)  # rng_key, rng_subkey = split(rng_key)
mcmc_noncentered.run(rng_subkey, J, sigma_schools, y=y_schools)
mcmc_noncentered.print_summary(exclude_deterministic=False)

n_divergences_noncentered = int(mcmc_noncentered.get_extra_fields()["diverging"].sum())
print(f"\nNumber of divergences (non-centered): {n_divergences_noncentered}")

# %% [markdown]
# ## The reparameterised trace
#
# What did `reparam` do to the model? Its trace shows it:

# %%
reparam_trace = handlers.trace(handlers.seed(reparam_eight_schools, rng_seed=0)).get_trace(
    J, sigma_schools
)
print(f"{'Site':>20s} | {'Type':>15s} | {'Shape'}")
print("-" * 55)
for name, site in reparam_trace.items():
    print(f"{name:>20s} | {site['type']:>15s} | {xp.shape(site['value'])}")

# %% [markdown]
# `theta_decentered` is a new sample site (a standard normal, which is what the sampler now
# sees), and `theta` has become a deterministic site holding `mu + tau * theta_decentered`. The
# model's distribution is unchanged; only the coordinates the sampler works in are new. In
# `process_message`, `reparam` calls the reparameterizer, which sends the new
# `theta_decentered` site up the stack itself, and then turns the `theta` message into a
# deterministic one carrying the computed value.
