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
# # 3. Inspection: `seed` and `trace`
#
# **Source beside the text:** `minippl/handlers/inspection.py` (`seed.process_message` splits
# the key; `trace.postprocess_message` records each site; `trace.get_trace`),
# `minippl/messages.py` (`Message`, and its repr in `_NumPyroView`).
#
# Everything else is built on these two: `seed` supplies randomness, `trace` records what
# happened.
#
# ## `seed`: providing randomness
#
# Neither JAX nor minippl keeps a global random state: every draw needs an explicit key. `seed`
# holds a key stream and, in `process_message`, splits it for every sample site that has
# neither a key nor a value yet. The site gets the second half of the split and the stream keeps
# the first, exactly as NumPyro does, which is why on the JAX backend the numbers below are
# NumPyro's, digit for digit.

# %%
import minippl as numpyro
import minippl.distributions as dist
from minippl import handlers
from tutorial.common import linear_model, x_data, xp

# Using seed as a context manager
with handlers.seed(rng_seed=0):
    val = numpyro.sample("x", dist.Normal(0.0, 1.0))
print(f"Sampled value: {val:.4f}")

# %%
# Using seed as a function wrapper (equivalent)
val2 = handlers.seed(lambda: numpyro.sample("x", dist.Normal(0.0, 1.0)), rng_seed=0)()
print(f"Sampled value (wrapper): {val2:.4f}")
assert bool(xp.allclose(val, val2))

# %% [markdown]
# The stream starts again from `rng_seed` each time the handler is entered, so calling a seeded
# model twice gives the same draws twice.
#
# ## `trace`: recording execution
#
# `trace` acts in phase 3: its `postprocess_message` stores a copy of every named message in an
# ordered dict keyed by site name. Because it copies, nothing a handler does later can change
# what was recorded. It is the main tool for seeing what a model does:

# %%
# Trace the model and inspect the result
exec_trace = handlers.trace(handlers.seed(linear_model, rng_seed=0)).get_trace(x_data)
print(f"{'Site':>12s} | {'Type':>15s} | {'is_observed':>12s} | {'Value shape'}")
print("-" * 70)
for name, site in exec_trace.items():
    print(
        f"{name:>12s} | {site['type']:>15s} | "
        f"{str(site.get('is_observed', 'N/A')):>12s} | "
        f"{xp.shape(site['value'])}"
    )

# %% [markdown]
# A deterministic site and a plate carry no `is_observed` key, as in NumPyro, so `get` answers
# with its default. The plate is recorded too: its value is the indices it covers.
#
# ## The full message of one site
#
# Here is everything a handler could read or change at the `slope` site, as `trace` recorded it:
# the distribution, the key `seed` gave it, the drawn value, and the still-empty fields that
# other handlers would fill.

# %%
slope_site = exec_trace["slope"]
print(slope_site)
