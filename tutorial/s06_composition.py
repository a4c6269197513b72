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
# # 6. Composition: `scope` and `replay`
#
# **Source beside the text:** `minippl/handlers/scope.py` (`scope.process_message`),
# `minippl/handlers/values.py` (`replay.process_message`).
#
# ## `scope`: namespacing sites
#
# Site names must be unique in a trace (`trace` raises on a repeat). `scope` rewrites each name
# to `prefix + divider + name` in phase 1, so one component can be used twice in a model.

# %%
import minippl as numpyro
import minippl.distributions as dist
from minippl import handlers
from tutorial.common import linear_model, x_data, xp


def component():
    z = numpyro.sample("z", dist.Normal(0.0, 1.0))
    return z


def composed_model():
    with handlers.scope(prefix="first", divider="::"):
        z1 = component()
    with handlers.scope(prefix="second", divider="/"):
        z2 = component()
    numpyro.deterministic("diff", z1 - z2)


trace_composed = handlers.trace(handlers.seed(composed_model, rng_seed=0)).get_trace()
print("Sites:", list(trace_composed.keys()))

# %% [markdown]
# The divider defaults to `"/"`; any string works:

# %%
with handlers.trace() as grouped, handlers.seed(rng_seed=0):
    with handlers.scope(prefix="group", divider="."):
        numpyro.sample("x", dist.Normal(0.0, 1.0))
        numpyro.sample("y", dist.Normal(0.0, 1.0))
print("Sites:", list(grouped.keys()))

# %% [markdown]
# Scopes nest from the inside out: `scope(prefix="b")` around `scope(prefix="a")` names a site
# `b/a/x`.
#
# ## `replay`: deterministic replay
#
# `replay` takes a recorded trace and, in phase 1, gives each latent sample site the value
# recorded under its name. Where `substitute` takes a plain dict of values, `replay` takes a
# whole trace, messages and all (it also copies each site's `infer` notes). The seed does not
# matter any more for the replayed sites:

# %%
# Record a trace
original_trace = handlers.trace(handlers.seed(linear_model, rng_seed=0)).get_trace(x_data)
print(f"Original slope: {original_trace['slope']['value']:.4f}")

# Replay with a DIFFERENT seed — replay overrides the sampled values
replayed_trace = handlers.trace(
    handlers.replay(handlers.seed(linear_model, rng_seed=99), trace=original_trace)
).get_trace(x_data)
print(f"Replayed slope: {replayed_trace['slope']['value']:.4f}")
assert bool(xp.allclose(original_trace["slope"]["value"], replayed_trace["slope"]["value"]))
print("Values match despite different seed!")
