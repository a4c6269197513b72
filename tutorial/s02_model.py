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
# # 2. Specifying the model
#
# **Source beside the text:** `minippl/primitives.py` (`sample`, `deterministic`, `plate`),
# `minippl/render.py` (`render_model`), `tutorial/common.py` (the shared copy of this data and
# model).
#
# One small Bayesian linear regression serves the whole tutorial: it is familiar, so all the
# attention can go to the handlers. First, synthetic data. The key is the guide's: `key(42)`,
# split once (see `guide_key` in `tutorial/common.py`, which replays the guide's key chain so
# that any section can run on its own).

# %%
import minippl as numpyro
import minippl.distributions as dist
from minippl import handlers
from tutorial import common
from tutorial.common import backend, guide_key, plt, save_figure, save_graph, xp

n_obs = 50
rng_subkey = guide_key(1)  # rng_key, rng_subkey = split(key(42))
true_intercept, true_slope, true_sigma = 1.0, 2.0, 0.5
x_data = xp.linspace(-2, 2, n_obs)
y_data = (
    true_intercept
    + true_slope * x_data
    + true_sigma * backend.normal(rng_subkey, (n_obs,), dtype=x_data.dtype)
)

fig, ax = plt.subplots()
ax.scatter(x_data, y_data, c="black")
ax.set(title="Synthetic Data", xlabel="x", ylabel="y")
save_figure(fig, "s02_synthetic_data")
print(f"y_data[:3]: {y_data[:3]}")

# %% [markdown]
# The model: an intercept, a slope and a noise scale, each with a prior; the regression line
# `mu` recorded as a deterministic site; and 50 conditionally independent observations inside a
# `plate`. Note that `obs` is *not* observed here: the model can generate data. Section 5 shows
# how to condition it on `y_data` from the outside.


# %%
def linear_model(x):
    intercept = numpyro.sample("intercept", dist.Normal(0.0, 10.0))
    slope = numpyro.sample("slope", dist.Normal(0.0, 5.0))
    sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
    mu = numpyro.deterministic("mu", intercept + slope * x)
    with numpyro.plate("data", len(x)):
        numpyro.sample("obs", dist.Normal(mu, sigma))


# Visualize the model structure
graph = numpyro.render_model(linear_model, model_args=(x_data,), render_distributions=True)
save_graph(graph, "s02_linear_model")

# %% [markdown]
# `render_model` runs the model a few times under handlers: once to record its sites and
# plates, then once per site with that site's value moved and every other site pinned, to see
# whose distribution changes. The arrows are those direct dependencies: `intercept` and `slope`
# feed `mu`, and `mu` and `sigma` feed `obs` (`minippl/render.py` explains the method). The
# DOT source of the graph is always available:

# %%
print(graph.source)

# %% [markdown]
# The later sections import this data and model from `tutorial/common.py`; the copies agree:


# %%
def site_values(model):
    tr = handlers.trace(handlers.seed(model, rng_seed=0)).get_trace(x_data)
    return {name: site["value"] for name, site in tr.items()}


mine, shared = site_values(linear_model), site_values(common.linear_model)
assert bool(xp.all(y_data == common.y_data))
assert mine.keys() == shared.keys()
assert all(bool(xp.all(mine[name] == shared[name])) for name in mine)
print("tutorial/common.py holds the same x_data, y_data and linear model.")
