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
# # 10. Composing handlers: nesting and order
#
# **Source beside the text:** `minippl/runtime.py` (`apply_stack`: the order of the three
# phases), `minippl/handlers/values.py` (`condition`, `substitute`), `minippl/explain.py`
# (`explain`, which prints what each handler did to each message).
#
# Handlers earn their keep in combination, and in combination their order matters. Nesting
# builds the stack: the innermost handler is at the bottom, so its `process_message` runs
# first; the outermost runs last and can overwrite what the inner ones wrote. Phase 3 goes the
# other way:
#
# ```python
# with handlers.trace():          # TOP: process last, postprocess first
#     with handlers.condition():  # MIDDLE
#         with handlers.seed():   # BOTTOM: process first, postprocess last
#             model()
# ```
#
# Put `condition` and `substitute` on the same site and swap them:

# %%
import minippl as numpyro
from minippl import handlers
from minippl.explain import explaining
from tutorial.common import linear_model, x_data

# condition then substitute on same site
trace1 = handlers.trace(
    handlers.condition(
        handlers.substitute(handlers.seed(linear_model, rng_seed=0), data={"slope": 10.0}),
        data={"slope": 3.0},
    )
).get_trace(x_data)
print(
    f"condition(substitute(...)): slope={trace1['slope']['value']}, "
    f"is_observed={trace1['slope']['is_observed']}"
)

# substitute then condition on same site
trace2 = handlers.trace(
    handlers.substitute(
        handlers.condition(handlers.seed(linear_model, rng_seed=0), data={"slope": 3.0}),
        data={"slope": 10.0},
    )
).get_trace(x_data)
print(
    f"substitute(condition(...)): slope={trace2['slope']['value']}, "
    f"is_observed={trace2['slope']['is_observed']}"
)

# %% [markdown]
# In the first, `condition` is outside, so its `process_message` runs after `substitute`'s: it
# overwrites the value with 3.0 and sets `is_observed=True`. In the second, `substitute` is
# outside and runs last: it overwrites the value with 10.0, but `is_observed` was already set
# to `True` by `condition`, and `substitute` never touches that field. The result, for one site
# under both handlers:
#
# | nesting (outer first) | `value` | `is_observed` |
# |---|---|---|
# | `condition(substitute(m, slope=10.0), slope=3.0)` | 3.0: the outer one wins | `True` |
# | `substitute(condition(m, slope=3.0), slope=10.0)` | 10.0: the outer one wins | `True`: kept |
#
# ## See the messages move
#
# You do not have to reason this out: `minippl.explain` runs a model and prints, for every
# site, the stack it met (bottom to top), and what each handler changed in the message in
# phase 1 (`process_message`), in phase 2 (the default draw) and in phase 3
# (`postprocess_message`). It is built on one hook in `apply_stack`, a watcher that wraps each
# handler of the stack a message meets, so every handler call is reported
# (`minippl.runtime.watching`). NumPyro has nothing like it.
#
# The first nesting, `slope`'s story in the middle:

# %%
story1 = numpyro.explain(
    handlers.condition(
        handlers.substitute(handlers.seed(linear_model, rng_seed=0), data={"slope": 10.0}),
        data={"slope": 3.0},
    ),
    x_data,
)

# %% [markdown]
# Read `slope`: `seed` gave it a key, `substitute` set the value to 10.0, then `condition`
# changed it to 3.0 and flipped `is_observed`. Phase 2 did not run, since the value was set.
# The other sites only got keys and were drawn in phase 2. Now the other nesting, printing just
# `slope` from the returned record:

# %%
with explaining() as story2:
    handlers.substitute(
        handlers.condition(handlers.seed(linear_model, rng_seed=0), data={"slope": 3.0}),
        data={"slope": 10.0},
    )(x_data)
print()
print(story2["slope"])

# %% [markdown]
# `condition` went first this time (value 3.0, observed) and `substitute` then changed only the
# value, to 10.0. The records can be queried too:

# %%
print("condition(substitute(...)): condition changed", story1["slope"].changed_by("condition"))
print("substitute(condition(...)): substitute changed", story2["slope"].changed_by("substitute"))

# %% [markdown]
# The same holds with context managers, where the nesting of the `with` blocks is the stack:

# %%
# Equivalent using context managers
with handlers.trace() as tr:
    with handlers.condition(data={"slope": 2.5}):
        handlers.seed(linear_model, rng_seed=0)(x_data)
print(f"Context manager style: slope = {tr['slope']['value']}")
