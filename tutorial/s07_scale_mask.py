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
# # 7. Scaling and masking: `scale` and `mask`
#
# **Source beside the text:** `minippl/handlers/weights.py` (`scale.process_message`,
# `mask.process_message`), `minippl/primitives.py` (`get_mask`, and `plate`, which scales
# subsampled sites), `minippl/distributions/distribution.py` (`MaskedDistribution`).
#
# Neither handler touches values. They change how much a site's log density counts when
# inference adds the densities up.
#
# ## `scale`: rescaling log densities
#
# `scale` multiplies the message's `scale` field by a positive factor (`None` means 1). A plate
# that subsamples uses the same field: a mini-batch of 10 out of 1000 gets scale 100, so it
# stands for the whole data set.

# %%
import minippl as numpyro
import minippl.distributions as dist
from minippl import handlers
from tutorial.common import xp


def simple_obs_model():
    z = numpyro.sample("z", dist.Normal(0.0, 1.0))
    numpyro.sample("obs", dist.Normal(z, 1.0), obs=0.5)


# Without scale
normal_trace = handlers.trace(handlers.seed(simple_obs_model, rng_seed=0)).get_trace()
print(f"obs scale (no handler): {normal_trace['obs']['scale']}")

# With scale=10.0
with handlers.trace() as scaled_trace:
    with handlers.scale(scale=10.0):
        handlers.seed(simple_obs_model, rng_seed=0)()
print(f"obs scale (with handler): {scaled_trace['obs']['scale']}")

# %% [markdown]
# ## `mask`: element-wise masking
#
# `mask` wraps the site's distribution in a `MaskedDistribution`, whose log density is zero
# wherever the boolean mask is `False`. Masked elements then drop out of the likelihood: missing
# data, or a held-out test split kept inside one model.


# %%
def model_for_mask():
    z = numpyro.sample("z", dist.Normal(0.0, 1.0))
    numpyro.sample("obs", dist.Normal(z, 1.0), obs=xp.array([1.0, 2.0, 3.0]))


# Mask out the second observation
mask_array = xp.array([True, False, True])
masked_trace = handlers.trace(
    handlers.seed(handlers.mask(model_for_mask, mask=mask_array), rng_seed=0)
).get_trace()
print(f"obs fn type: {type(masked_trace['obs']['fn']).__name__}")
print("(The distribution is now wrapped in a MaskedDistribution)")

obs_site = masked_trace["obs"]
print(f"log densities with the mask: {obs_site['fn'].log_prob(obs_site['value'])}")

# %% [markdown]
# The middle element's log density is now exactly 0.
#
# ## `get_mask`: asking for the mask
#
# Inside a model, `numpyro.get_mask()` sends an `inspect` message that only `mask` handlers act
# on; it returns the mask in force (`None` when there is none). A model can use it to skip work
# whose result would be masked out anyway:


# %%
def model():
    if numpyro.get_mask() is not False:
        print("  computing the expensive term")
        numpyro.factor("expensive_term", expensive_computation())


def expensive_computation():
    return xp.asarray(-1.0)


print(f"get_mask() outside any mask: {numpyro.get_mask()}")
print("no mask:")
handlers.seed(model, rng_seed=0)()
print("mask=False:")
handlers.seed(handlers.mask(model, mask=False), rng_seed=0)()
print("(nothing computed)")
