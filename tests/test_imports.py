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
