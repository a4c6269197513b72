"""What the tutorial's sections share: settings, keys, figures, data, and the linear model.

Each section is a script (and a notebook) of its own; they all start with
``from tutorial.common import ...``. Section 2 (``s02_model.py``) introduces the synthetic
data and the linear model with the guide's own cells and checks that they equal the copies
kept here, which the later sections use.

Settings come from the command line (``python -m tutorial --out DIR --data PATH``, which
calls :func:`configure`) or from the environment: ``MINIPPL_TUTORIAL_OUT`` (the figures
folder, default ``./tutorial_output``), ``MINIPPL_DATA_DIR`` (where
``collections_email.csv`` is, when not the copy shipped in ``tutorial/data``) and
``MINIPPL_TUTORIAL_SIZE=small`` (shrinks the MCMC runs; for the tests only).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import matplotlib

matplotlib.use("Agg")  # figures go to files, never to a window

import matplotlib.pyplot as plt  # noqa: E402

import minippl  # noqa: E402
import minippl as numpyro  # noqa: E402
import minippl.distributions as dist  # noqa: E402
from minippl import handlers  # noqa: E402
from minippl.backend import current  # noqa: E402
from minippl.render import write_graph  # noqa: E402

__all__ = [
    "DataNotFoundError",
    "arviz",
    "backend",
    "conditioned_linear_model",
    "configure",
    "guide_key",
    "linear_model",
    "load_email_data",
    "mcmc_sizes",
    "out_dir",
    "save_figure",
    "save_graph",
    "x_data",
    "xp",
    "y_data",
]

# -- the guide's setup cell ----------------------------------------------------------------

# Four CPU devices, as the guide asks, so the four chains of each MCMC run in parallel, one
# per device. JAX accepts this only before its first computation; when something already
# computed (a test session, a notebook kernel reused), minippl runs the chains side by side
# on threads instead.
try:
    minippl.set_host_device_count(4)
except RuntimeError:
    pass

logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)  # "findfont: ..." notes
plt.style.use("bmh")
plt.rcParams["figure.figsize"] = [10, 6]
plt.rcParams["figure.dpi"] = 100
plt.rcParams["figure.facecolor"] = "white"

backend = current()
xp = backend.xp
"""The array namespace of the active backend: ``jax.numpy`` on JAX, ``numpy`` on NumPy."""

# -- settings -------------------------------------------------------------------------------

_settings: dict[str, str | None] = {"out": None, "data": None}
written: list[Path] = []
"""The figures and graphs written so far in this process, in order."""


def configure(out: str | Path | None = None, data: str | Path | None = None) -> None:
    """Set the figures folder and the data path (what ``--out`` and ``--data`` do)."""
    if out is not None:
        _settings["out"] = str(out)
    if data is not None:
        _settings["data"] = str(data)


def out_dir() -> Path:
    """The folder the figures are written to (created on first use)."""
    path = Path(_settings["out"] or os.environ.get("MINIPPL_TUTORIAL_OUT", "tutorial_output"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_figure(fig: Any, name: str) -> Path:
    """Save a matplotlib figure as ``name.png`` in the figures folder, and say where."""
    path = out_dir() / f"{name}.png"
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    print(f"[figure] {path}")
    written.append(path)
    return path


def save_graph(graph: Any, name: str) -> Path:
    """Write a ``render_model`` graph as ``name.svg``, or its DOT source as ``name.gv`` when
    graphviz's ``dot`` program is not installed, and say where."""
    import shutil
    import warnings

    if shutil.which("dot") is None:
        print("[graph] graphviz's dot program is not installed: writing the DOT source instead")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        path = write_graph(graph, out_dir() / f"{name}.svg")
    print(f"[graph] {path}")
    written.append(path)
    return path


# -- keys -----------------------------------------------------------------------------------


def guide_key(step: int) -> Any:
    """The key the guide holds in ``rng_subkey`` after its ``step``-th split of ``key(42)``.

    The guide threads one key through the whole notebook: ``rng_key = key(42)`` and then
    ``rng_key, rng_subkey = split(rng_key)`` before each random step (1: the synthetic data,
    2: the do-intervention predictions, 3 and 4: the two eight-schools fits, 5: the prior
    predictive sample, 6: the linear fit, 7: the log-likelihood). Naming the step lets each
    section run alone and still use the guide's key.
    """
    rng_key = backend.key(42)
    rng_subkey = rng_key
    for _ in range(step):
        keys = backend.split(rng_key)
        rng_key, rng_subkey = keys[0], keys[1]
    return rng_subkey


# -- MCMC sizes -----------------------------------------------------------------------------


def mcmc_sizes() -> tuple[int, int, int]:
    """``(num_warmup, num_samples, num_chains)``: the guide's ``(1000, 1000, 4)``.

    ``MINIPPL_TUTORIAL_SIZE=small`` gives ``(200, 200, 2)``, only so the tests run fast.
    """
    size = os.environ.get("MINIPPL_TUTORIAL_SIZE", "full").lower()
    if size == "small":
        return 200, 200, 2
    if size not in ("full", ""):
        raise ValueError(f"MINIPPL_TUTORIAL_SIZE must be 'full' or 'small', got {size!r}")
    return 1_000, 1_000, 4


# -- ArviZ ----------------------------------------------------------------------------------

_arviz_warned = False


def arviz() -> ModuleType | None:
    """ArviZ, or ``None`` (after saying once which figures are skipped) if not installed."""
    global _arviz_warned
    try:
        import arviz as az
    except ImportError:
        if not _arviz_warned:
            print(
                "[arviz] ArviZ is not installed, so the trace, posterior, forest and HDI "
                "figures are skipped. Install it with: pip install arviz (or minippl[plots])."
            )
            _arviz_warned = True
        return None
    return az


# -- the collections email data -------------------------------------------------------------

EMAIL_FILE = "collections_email.csv"
SHIPPED_EMAIL_DATA = Path(__file__).resolve().parent / "data" / EMAIL_FILE
"""The copy kept in this package (MIT-licensed; ``tutorial/data/SOURCE.md`` says where it
comes from), installed with it, so the tutorial runs with no download."""


class DataNotFoundError(RuntimeError):
    """The email data is not where we were told it is."""


def email_data_path() -> Path:
    """Find ``collections_email.csv``: ``--data``, then ``MINIPPL_DATA_DIR``, then the copy
    shipped in ``tutorial/data``.

    A path that was given but holds no file is an error rather than a quiet fall back to the
    shipped copy: whoever named another copy wants that one read.
    """
    given = _settings["data"] or os.environ.get("MINIPPL_DATA_DIR")
    if given:
        path = Path(given)
        path = path / EMAIL_FILE if path.is_dir() else path
        if path.is_file():
            return path
        raise DataNotFoundError(_not_found(f"{EMAIL_FILE} is not at {path}."))
    if SHIPPED_EMAIL_DATA.is_file():
        return SHIPPED_EMAIL_DATA
    missing = f"The copy shipped with the tutorial is missing ({SHIPPED_EMAIL_DATA})."
    raise DataNotFoundError(_not_found(missing))


def _not_found(reason: str) -> str:
    return (
        f"The collections email section needs {EMAIL_FILE}. {reason}\n"
        "Give its location in one of two ways:\n"
        f"  python -m tutorial --data PATH          (the file, or the folder holding it)\n"
        f"  MINIPPL_DATA_DIR=FOLDER python -m tutorial"
    )


def load_email_data() -> Any:
    """The email experiment as a pandas DataFrame."""
    try:
        import pandas as pd
    except ImportError as error:
        raise ImportError(
            "the email section reads its data with pandas: pip install pandas (or minippl[plots])"
        ) from error
    pd.set_option("display.width", 120)
    pd.set_option("display.max_columns", 20)
    return pd.read_csv(email_data_path())


# -- the synthetic data and the linear model (introduced in section 2) ----------------------

n_obs = 50
true_intercept, true_slope, true_sigma = 1.0, 2.0, 0.5
x_data = xp.linspace(-2, 2, n_obs)
y_data = (
    true_intercept
    + true_slope * x_data
    + true_sigma * backend.normal(guide_key(1), (n_obs,), dtype=x_data.dtype)
)


def linear_model(x: Any) -> None:
    intercept = numpyro.sample("intercept", dist.Normal(0.0, 10.0))
    slope = numpyro.sample("slope", dist.Normal(0.0, 5.0))
    sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
    mu = numpyro.deterministic("mu", intercept + slope * x)
    with numpyro.plate("data", len(x)):
        numpyro.sample("obs", dist.Normal(mu, sigma))


conditioned_linear_model = handlers.condition(linear_model, data={"obs": y_data})
"""The linear model observed at ``y_data`` (built in section 5, used for fitting)."""
