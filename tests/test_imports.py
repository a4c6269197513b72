"""What ``import minippl`` costs: the optional and heavy packages load only when used.

A fresh process waits for every import before its first posterior, so ``import minippl``
and ``from minippl.infer import MCMC, NUTS`` must not load scipy (half a second), the
plotting and table packages, or tqdm (imported when a bar is first shown).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

LAZY = ("scipy", "matplotlib", "graphviz", "arviz", "tqdm", "pandas")


def test_importing_minippl_and_infer_loads_no_optional_package() -> None:
    code = (
        "import sys, minippl\n"
        "from minippl.infer import MCMC, NUTS\n"
        f"print(sorted(m for m in {LAZY!r} if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def _fresh(code: str, env: dict[str, str]) -> str:
    import os

    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1]


def test_importing_minippl_turns_on_no_cache_and_makes_no_folder(tmp_path: Path) -> None:
    """The compiled-program cache starts with the first run that uses it."""
    code = (
        "import os, sys, minippl\n"
        "from minippl.infer import MCMC, NUTS\n"
        "cache = os.path.join(os.environ['XDG_CACHE_HOME'], 'minippl')\n"
        "print(os.path.exists(cache), 'jax' in sys.modules)\n"
    )
    env = {"XDG_CACHE_HOME": str(tmp_path), "MINIPPL_CACHE_DIR": "", "MINIPPL_BACKEND": "jax"}
    assert _fresh(code, env) == "False False"


def test_the_xla_flag_is_set_before_jax_starts_unless_turned_off() -> None:
    """``import minippl`` adds the JAX backend's one XLA flag before JAX is imported (so
    it lands before JAX's CPU client starts); ``MINIPPL_XLA_FLAGS=0`` leaves XLA_FLAGS."""
    code = (
        "import os, sys, minippl\n"
        "before = 'jax' in sys.modules\n"
        "import jax.numpy as jnp\n"
        "jnp.ones(1).block_until_ready()\n"
        "print(before, 'small_while_loop' in os.environ.get('XLA_FLAGS', ''))\n"
    )
    assert _fresh(code, {"XLA_FLAGS": "", "MINIPPL_XLA_FLAGS": "1"}) == "False True"
    assert _fresh(code, {"XLA_FLAGS": "", "MINIPPL_XLA_FLAGS": "0"}) == "False False"
