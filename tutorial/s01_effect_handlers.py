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
# # 1. What are effect handlers?
#
# **Source beside the text:** `minippl/runtime.py` (`Messenger`, `apply_stack`,
# `default_process`), `minippl/messages.py` (`Message`), `minippl/primitives.py` (`sample`).
#
# A model in minippl, as in NumPyro, is an ordinary Python function that calls primitives such
# as `numpyro.sample("x", dist.Normal(0, 1))`. On its own, such a call just draws a number.
# Inside *effect handlers* the same call can be recorded (`trace`), pinned to data
# (`condition`), intervened on (`do`) or hidden from inference (`block`), and the model's code
# never changes. Every handler in this tutorial is a variation on one idea: a primitive does
# not act by itself, it sends a *message* up a stack of handlers, and each handler may read or
# rewrite that message on its way.
#
# The guide's setup cell (the plot style, and four CPU devices so that four MCMC chains run in
# parallel) lives in `tutorial/common.py`, which every section imports.

# %%
import minippl as numpyro
import minippl.distributions as dist
from minippl import handlers
from minippl.messages import Message
from minippl.runtime import Messenger

# %% [markdown]
# ## The Messenger pattern
#
# The design comes from Pyro's *Mini Pyro*, and `minippl/runtime.py` is as short:
#
# * every handler is a `Messenger`; entering it (`with handler:`) pushes it on a stack held in a
#   context variable, so each thread sees its own stack;
# * a primitive builds a `Message` (a typed dataclass, `minippl/messages.py`) and hands it to
#   `apply_stack`;
# * `apply_stack` runs three phases. The *bottom* of the stack is the innermost handler, the one
#   entered last.
#   1. `process_message`, from the bottom upwards, until a handler sets `msg.stop`;
#   2. the default execution: if no handler put a `value` in the message, the distribution is
#      sampled with the message's key;
#   3. `postprocess_message`, from the highest handler that saw phase 1 back down to the bottom.
#
# The handler below does nothing but announce itself, so we can watch the order. Two of them
# sit above a `seed` (which supplies the random key); `middle` is entered last, so it is lower
# on the stack than `top`.


# %%
class announce(Messenger):
    """Print the phase, this handler's label and the site it sees."""

    def __init__(self, fn=None, label=""):
        self.label = label
        super().__init__(fn)

    def process_message(self, msg):
        print(f"phase 1  {self.label:>6s}.process_message      {msg.name!r}, value {msg.value}")

    def postprocess_message(self, msg):
        print(f"phase 3  {self.label:>6s}.postprocess_message  {msg.name!r}, value {msg.value:.4f}")


with announce(label="top"):
    with announce(label="middle"):
        with handlers.seed(rng_seed=0):
            x = numpyro.sample("x", dist.Normal(0.0, 1.0))

# %% [markdown]
# Phase 1 went up (`middle`, then `top`); the value did not exist yet. Phase 2, the draw, happened
# between the two, since no handler supplied a value. Phase 3 came back down (`top`, then
# `middle`) with the drawn value in the message.
#
# ## Message anatomy
#
# A message is a `Message` dataclass whose fields are documented in `minippl/messages.py`. It
# also reads like NumPyro's dict (`msg["value"]`, `msg.get("is_observed", "N/A")`), so code
# written against NumPyro's traces works unchanged. Here is the message of a sample site as the
# primitive creates it, before any handler has touched it:

# %%
msg = Message(
    type="sample",
    name="slope",
    fn=dist.Normal(0.0, 5.0),
    kwargs={"rng_key": None, "sample_shape": ()},
)
print(msg)

# %% [markdown]
# The fields that handlers work with:
#
# | field | meaning |
# |---|---|
# | `type` | `"sample"`, `"param"`, `"deterministic"`, `"plate"`, `"prng_key"`, ... |
# | `name` | the site's name |
# | `fn` | the distribution |
# | `kwargs` | `rng_key` and `sample_shape`, the arguments of the draw |
# | `value` | the drawn or observed value: `None` until a handler or phase 2 fills it |
# | `is_observed` | whether the value is data |
# | `scale` | a multiplier of the site's log density (`None` means 1) |
# | `cond_indep_stack` | the plates around the site |
# | `infer` | free-form notes for inference algorithms |
#
# Each handler reads and writes a few of these fields; which ones is what decides how handlers
# combine. The summary (section 12) lists them for every handler, measured rather than
# claimed.
#
# ## Two usage modes
#
# A handler is both a context manager and a function wrapper: `with handler: model()` and
# `handler(model)()` do the same thing.


# %%
def one_site():
    return numpyro.sample("x", dist.Normal(0.0, 1.0))


# Context manager
with handlers.condition(data={"x": 1.0}):
    as_block = one_site()

# Function wrapper (equivalent)
as_wrapper = handlers.condition(one_site, data={"x": 1.0})()

print(f"context manager: x = {as_block}, function wrapper: x = {as_wrapper}")
