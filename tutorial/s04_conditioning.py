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
# # 4. Conditioning: `condition` vs `substitute`
#
# **Source beside the text:** `minippl/handlers/values.py` (`condition.process_message`,
# `substitute.process_message`).
#
# Both handlers put a value into a site in phase 1, so the default draw never happens. They
# differ in one field:
#
# | handler | sets `value` | sets `is_observed` | use it for |
# |---|---|---|---|
# | `condition` | yes | yes (`True`) | observed data; clamping a site for inference |
# | `substitute` | yes | no (left as it was) | plugging in posterior draws; tests |
#
# `is_observed` is what inference reads: an observed site adds its log density to the
# likelihood and is never sampled, while a latent site with a substituted value is still a
# latent variable whose value merely happens to be fixed for this run.

# %%
from minippl import handlers
from tutorial.common import linear_model, x_data

# condition: sets value AND marks as observed
conditioned_trace = handlers.trace(
    handlers.seed(handlers.condition(linear_model, data={"slope": 3.0}), rng_seed=0)
).get_trace(x_data)
print("condition:")
print(f"  slope value: {conditioned_trace['slope']['value']}")
print(f"  slope is_observed: {conditioned_trace['slope']['is_observed']}")

# %%
# substitute: sets value but does NOT mark as observed
substituted_trace = handlers.trace(
    handlers.seed(handlers.substitute(linear_model, data={"slope": 3.0}), rng_seed=0)
).get_trace(x_data)
print("substitute:")
print(f"  slope value: {substituted_trace['slope']['value']}")
print(f"  slope is_observed: {substituted_trace['slope']['is_observed']}")

# %% [markdown]
# Which one to use:
#
# * `condition` when the value is *known*: data, or a variable you want the likelihood to
#   include;
# * `substitute` when you only want to *plug in* a value and leave the site's role alone, as
#   when replaying posterior draws to predict (section 11).
#
# Both warn when `data` names a site the model does not have, which catches misspelt names.
