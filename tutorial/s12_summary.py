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
# # 12. Summary and references
#
# **Source beside the text:** `minippl/handlers/` (one file per family: `inspection.py`,
# `values.py`, `do.py`, `surgery.py`, `scope.py`, `weights.py`, `reparam.py`), each handler's
# docstring stating its phase and fields; `minippl/explain.py`, which measures the table below.
#
# minippl has NumPyro's handlers under NumPyro's names, and each one is a few lines of
# `process_message` or `postprocess_message`. What tells them apart is which message fields
# they touch. Rather than copy a table of those fields from the documentation, we *measure* it:
# run each handler on a small model under `explaining()`, and collect the fields it changed.

# %%
import minippl as numpyro
import minippl.distributions as dist
from minippl import handlers
from minippl.explain import explaining
from minippl.infer.reparam import LocScaleReparam
from tutorial.common import xp


def small_model(y=None):
    s = numpyro.param("s", 1.0)
    mu = numpyro.sample("mu", dist.Normal(0.0, s))
    with numpyro.plate("data", 3):
        numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)


y_small = xp.array([0.5, 1.0, 1.5])
recorded = handlers.trace(handlers.seed(small_model, rng_seed=1)).get_trace()

# Each handler around the small model, with what it does, in our words.
cases = {
    "seed": (lambda m: handlers.seed(m, rng_seed=0), "gives each site a fresh PRNG key"),
    "trace": (
        lambda m: handlers.trace(handlers.seed(m, rng_seed=0)),
        "records every site (a copy of its message)",
    ),
    "condition": (
        lambda m: handlers.seed(handlers.condition(m, data={"mu": 0.3}), rng_seed=0),
        "fixes a value and marks it observed",
    ),
    "substitute": (
        lambda m: handlers.seed(handlers.substitute(m, data={"mu": 0.3}), rng_seed=0),
        "fixes a value, keeps the observation status",
    ),
    "do": (
        lambda m: handlers.seed(handlers.do(m, data={"mu": 0.3}), rng_seed=0),
        "intervenes (SWIG): free copy + hidden mu__CF",
    ),
    "block": (
        lambda m: handlers.seed(handlers.block(m, hide=["mu"]), rng_seed=0),
        "hides sites from outer handlers",
    ),
    "uncondition": (
        lambda m: handlers.seed(handlers.uncondition(m), rng_seed=0),
        "makes observed sites draw from their distribution",
    ),
    "lift": (
        lambda m: handlers.seed(handlers.lift(m, prior={"s": dist.Exponential(1.0)}), rng_seed=0),
        "turns params into sample sites with a prior",
    ),
    "replay": (
        lambda m: handlers.seed(handlers.replay(m, trace=recorded), rng_seed=0),
        "reuses the values of a recorded trace",
    ),
    "scope": (
        lambda m: handlers.seed(handlers.scope(m, prefix="inner"), rng_seed=0),
        "prefixes site names",
    ),
    "scale": (
        lambda m: handlers.seed(handlers.scale(m, scale=10.0), rng_seed=0),
        "multiplies the log-density scale",
    ),
    "mask": (
        lambda m: handlers.seed(handlers.mask(m, mask=xp.array([True, False, True])), rng_seed=0),
        "masks log densities element-wise",
    ),
    "reparam": (
        lambda m: handlers.seed(
            handlers.reparam(m, config={"mu": LocScaleReparam(centered=0)}), rng_seed=0
        ),
        "rewrites a site in new coordinates",
    ),
    "infer_config": (
        lambda m: handlers.seed(
            handlers.infer_config(m, config_fn=lambda msg: {"note": True}), rng_seed=0
        ),
        "adds entries to a site's infer dict",
    ),
}


def measure(name, wrap):
    """The message types the handler changed, and the fields, by phase."""
    with explaining() as record:
        wrap(small_model)(y=y_small)
    types, fields = set(), {"process": set(), "postprocess": set()}
    for story in record:
        for step in story.steps:
            if step.handler.split("(")[0] == name and step.changes:
                types.add(story.type)
                fields[step.phase].update(change.field for change in step.changes)
    return types, fields


rows = []
for name, (wrap, what) in cases.items():
    types, fields = measure(name, wrap)
    changed = "; ".join(
        f"{phase}: {', '.join(sorted(names))}" for phase, names in fields.items() if names
    )
    rows.append((name, what, ", ".join(sorted(types)) or "-", changed or "(none: reads only)"))

print(f"{'handler':<13s}{'what it does':<52s}{'messages':<22s}fields it changed (phase)")
print("-" * 140)
for row in rows:
    print(f"{row[0]:<13s}{row[1]:<52s}{row[2]:<22s}{row[3]}")

# %% [markdown]
# Reading the table: every handler except `trace` works in phase 1, which is why their order
# of nesting decides who wins (section 10). `trace` works in phase 3 and changes nothing: it
# only reads and copies. `seed` touches nothing but the key. The value setters differ exactly
# in `is_observed`. `block` and `do` are the two handlers that set `stop`. A site's value
# counts in inference through three fields: `is_observed`, `scale` and, through a
# `MaskedDistribution`, `fn`.
#
# The `plate` primitive is a handler too (it adds its frame to `cond_indep_stack` and expands
# `fn` to the plate's shape). `explain` shows it among the handlers of every site inside a
# plate.
#
# ## References
#
# * Pyro, *Mini Pyro*: the minimal effect-handler design this one follows.
# * Pyro, *Poutine: a guide to programming with effect handlers*.
# * NumPyro, *handlers* API documentation.
# * M. Facure, *Causal Inference for the Brave and True*, ch. 7: the collections email
#   example.
# * T. S. Richardson and J. M. Robins, *Single World Intervention Graphs* (2013): the theory
#   behind `do`.
# * A. Gelman et al., *Bayesian Data Analysis*, sec. 5.5 (2003): the Eight Schools example.
