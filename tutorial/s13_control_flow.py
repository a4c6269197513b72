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
# # 13. Effect handlers meet compiled control flow: `scan`
#
# **Source beside the text:** `minippl/control_flow/scan.py` (`scan`, read first),
# `minippl/control_flow/steps.py` (the handlers rebuilt inside each step),
# `minippl/control_flow/records.py` (a trace taken apart into arrays and put back),
# `minippl/control_flow/stacked.py` (`ScannedDistribution`), `minippl/handlers/values.py`
# (how `condition` and `substitute` reach inside).
#
# A time series written as a Python `for` loop of `sample` calls works, but on JAX a
# 1000-step loop becomes 1000 copies of its body in the compiled program. `scan` compiles the
# body once (`lax.scan`; on NumPy it is a plain loop). The catch: the handlers outside cannot
# see into a compiled body. A `trace` there would record traced values, and a `seed` would
# split its key inside the trace; both would leak out of it.
#
# So `scan` first sends one message of type `control_flow` up the stack. The handlers that
# must act inside leave an instruction on it: `seed` gives it a key, `condition` and
# `substitute` append themselves to `kwargs["substitute_stack"]`. Inside, each step runs
# behind a `block`, under a fresh `seed` (the key is split once per step) and the rebuilt
# `condition`/`substitute` handlers, which take the step's slice `value[t]` of a whole
# series. When the loop is done, every site is sent up the stack once, holding its whole
# series with a leading time axis, so the outer `trace` sees `level` once, shaped `(T,)`.
#
# The model: a local level. The level takes a random walk, and we observe it through noise:
# `level_t ~ Normal(level_{t-1}, q)`, `y_t ~ Normal(level_t, s)`.

# %%
import numpy as np

import minippl
import minippl.distributions as dist
from minippl import handlers
from minippl.control_flow import scan
from minippl.infer import MCMC, NUTS, Predictive
from minippl.runtime import Messenger
from tutorial.common import backend, mcmc_sizes, plt, save_figure


def local_level(T, y=None):
    q = minippl.sample("q", dist.HalfNormal(1.0))
    s = minippl.sample("s", dist.HalfNormal(1.0))

    def step(level, y_t):
        level = minippl.sample("level", dist.Normal(level, q))
        minippl.sample("y", dist.Normal(level, s), obs=y_t)
        return level, level

    _, levels = scan(step, 0.0, y, length=T)
    return levels


tr = handlers.trace(handlers.seed(local_level, rng_seed=0)).get_trace(5)
for name, site in tr.items():
    print(f"{name:>6}: value shape {tuple(np.shape(site['value']))}, "
          f"batch shape {site['fn'].batch_shape}")  # fmt: skip

# %% [markdown]
# ## What the `control_flow` message collects
#
# A small handler, outermost, shows the message after the handlers below it have processed
# it: the key from `seed` and the `condition` that will act inside every step.


# %%
class show_control_flow(Messenger):
    def process_message(self, msg):
        if msg.type == "control_flow":
            kinds = [kind for kind, _ in msg.kwargs["substitute_stack"]]
            print(f"control_flow: has a key: {msg.kwargs['rng_key'] is not None}, "
                  f"handlers to apply inside: {kinds}")  # fmt: skip


levels_given = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
with show_control_flow(), handlers.seed(rng_seed=0), handlers.trace() as tr:
    handlers.condition(local_level, data={"level": levels_given})(5)
print("level is_observed:", tr["level"]["is_observed"], "value:", np.asarray(tr["level"]["value"]))

# %% [markdown]
# ## Conditioned on data, fitted with NUTS
#
# Synthetic data from known `q = 0.3`, `s = 0.5`; NUTS sees the whole series at once: the
# potential energy runs the scan, and each step's slice of the unconstrained values is
# transformed inside its own step.

# %%
T, horizon = 40, 10
rng = np.random.default_rng(0)
true_level = np.cumsum(rng.normal(0.0, 0.3, T))
y_obs = true_level + rng.normal(0.0, 0.5, T)

num_warmup, num_samples, _ = mcmc_sizes()
mcmc = MCMC(NUTS(local_level), num_warmup=num_warmup, num_samples=num_samples, progress_bar=False)
mcmc.run(backend.key(1), T, y_obs)
samples = mcmc.get_samples()
q_mean, s_mean = float(np.mean(samples["q"])), float(np.mean(samples["s"]))
print(f"posterior mean q = {q_mean:.2f}, s = {s_mean:.2f}")

# %% [markdown]
# ## Forecasting with `Predictive`
#
# Run the model for `T + horizon` steps with the posterior draws substituted. The draws hold
# `T` levels: each step inside the data takes its slice, and the steps after it draw fresh
# levels from the random walk, which is a forecast.

# %%
forecast = Predictive(local_level, samples, return_sites=["level", "y"])(
    backend.key(2), T + horizon
)
level_draws = np.asarray(forecast["level"])
print(f"forecast level draws: {level_draws.shape}")

fig, ax = plt.subplots()
t_all = np.arange(T + horizon)
low, high = np.percentile(np.asarray(forecast["y"]), [5, 95], axis=0)
ax.fill_between(t_all, low, high, color="C0", alpha=0.2, label="90% predictive interval")
ax.plot(t_all, level_draws.mean(axis=0), c="C0", label="posterior mean level")
ax.scatter(np.arange(T), y_obs, c="black", s=12, label="observed y")
ax.axvline(T - 0.5, c="grey", ls="--")
ax.legend()
ax.set(title="Local level model: fit and forecast", xlabel="t", ylabel="y")
save_figure(fig, "s13_local_level_forecast")
