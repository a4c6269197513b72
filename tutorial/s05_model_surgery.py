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
# # 5. Model surgery: `block`, `uncondition`, `lift`
#
# **Source beside the text:** `minippl/handlers/surgery.py` (`block.process_message`,
# `uncondition.process_message`, `lift.process_message`).
#
# These three change what a site *is*: whether outer handlers see it, whether it is observed,
# and whether it is a parameter or a random variable.
#
# ## `block`: hiding sites
#
# `block` sets `msg.stop = True` in phase 1. Phase 1 then ends at the block, so the handlers
# above it (an outer `trace`, say) never see the site. The site still runs: it is drawn and its
# value flows into the rest of the model. `block` chooses the sites to hide in one of three
# ways.

# %%
import minippl as numpyro
import minippl.distributions as dist
from minippl import handlers
from tutorial.common import linear_model, x_data, xp, y_data

# Hide the "sigma" site
blocked_trace = handlers.trace(
    handlers.seed(handlers.block(linear_model, hide=["sigma"]), rng_seed=0)
).get_trace(x_data)
print("Sites in blocked trace:", list(blocked_trace.keys()))
assert "sigma" not in blocked_trace

# %%
# Inverse: expose only specific sites (hide everything else)
exposed_trace = handlers.trace(
    handlers.seed(handlers.block(linear_model, expose=["slope", "intercept"]), rng_seed=0)
).get_trace(x_data)
print("Sites in exposed trace:", list(exposed_trace.keys()))

# %%
# Custom logic with hide_fn
hidden_samples_trace = handlers.trace(
    handlers.seed(
        handlers.block(
            linear_model,
            hide_fn=lambda site: site["type"] == "sample" and not site["is_observed"],
        ),
        rng_seed=0,
    )
).get_trace(x_data)
print("Sites (hiding unobserved samples):", list(hidden_samples_trace.keys()))

# %% [markdown]
# A hidden site below `seed`'s view would get no key, so `block` asks for one itself (with
# `prng_key()`, a message of its own that `block` lets through). Keys are therefore spent the
# same way whether `seed` is inside or outside the block, and the unhidden sites keep their
# values.
#
# ## `uncondition`: forgetting observations
#
# `uncondition` turns observed sites back into draws: it sets `is_observed=False`, keeps the data
# in `infer["obs"]`, notes `infer["was_observed"] = True`, and clears the value so that phase 2
# samples it. This gives prior predictive draws from a model that has data built in. First
# condition the model on `y_data` (this conditioned model is also kept in
# `tutorial/common.py`, for the fits in section 11):

# %%
# Condition the model on the observed data.
conditioned_linear_model = handlers.condition(linear_model, data={"obs": y_data})

# Normal execution: obs is observed
obs_trace = handlers.trace(handlers.seed(conditioned_linear_model, rng_seed=0)).get_trace(x_data)
print(f"obs is_observed: {obs_trace['obs']['is_observed']}")
print(f"obs value[:3]: {obs_trace['obs']['value'][:3]}")
print(f"y_data[:3]: {y_data[:3]}")

# %%
# Unconditioned: samples from prior even though y was passed
uncond_trace = handlers.trace(
    handlers.uncondition(handlers.seed(conditioned_linear_model, rng_seed=0))
).get_trace(x_data)
print(f"obs is_observed: {uncond_trace['obs']['is_observed']}")
print(f"obs was_observed: {uncond_trace['obs']['infer']['was_observed']}")
print(f"obs value[:3]: {uncond_trace['obs']['value'][:3]} (sampled, not y_data!)")

# %% [markdown]
# ## `lift`: parameters to random variables
#
# `lift` rewrites `param` messages into `sample` messages drawn from a prior you give, by name.
# That turns a model written for optimisation (SVI, with `numpyro.param`) into one for full
# Bayesian inference (MCMC, where everything uncertain is a sample site).


# %%
def model_with_param(x):
    """A model using numpyro.param (typically for SVI/optimization)."""
    s = numpyro.param("s", 1.0, constraint=dist.constraints.positive)
    loc = numpyro.sample("loc", dist.Normal(0.0, s))
    numpyro.sample("obs", dist.Normal(loc, 1.0), obs=x)


# Without lift: 's' is a param
param_trace = handlers.trace(handlers.seed(model_with_param, rng_seed=0)).get_trace(xp.ones(5))
print(f"Without lift: 's' type = {param_trace['s']['type']}")

# With lift: 's' becomes a sample from Exponential(1)
lifted_model = handlers.lift(model_with_param, prior={"s": dist.Exponential(1.0)})
lifted_trace = handlers.trace(handlers.seed(lifted_model, rng_seed=0)).get_trace(xp.ones(5))
print(f"With lift: 's' type = {lifted_trace['s']['type']}")
print(f"  's' value = {lifted_trace['s']['value']:.4f}")
