"""A section of the suite run in a child process, where JAX dispatches as users have it.

The suite's own process makes JAX's CPU dispatch synchronous, so that no execution hides
under a compile in the NUTS cells (``metrics.synchronous_dispatch``). The eager handler
timings and the progress bar's cost are about what a user waits for, with JAX as it
starts (asynchronous dispatch), so ``python -m benchmarks`` runs those two sections here:
``python -m benchmarks.child SECTION JSON`` prints its log lines, then one ``RESULT`` line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks.fresh_process import ROOT

__all__ = ["run_in_child"]

_RESULT = "RESULT "


def run_in_child(section: str, kwargs: dict[str, Any], log: Callable[[str], None]) -> Any:
    """``section`` (``"eager"`` or ``"progress"``) with ``kwargs``, in a new process."""
    argv = [sys.executable, "-m", "benchmarks.child", section, json.dumps(kwargs)]
    proc = subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    result: Any = None
    tail: deque[str] = deque(maxlen=40)
    for line in proc.stdout:
        if line.startswith(_RESULT):
            result = json.loads(line.removeprefix(_RESULT))
        else:
            tail.append(line)
            if line.startswith("  "):  # the section's own log lines; warnings stay quiet
                log(line.rstrip())
    if proc.wait() != 0 or result is None:
        raise RuntimeError(f"section {section!r} failed in its process:\n{''.join(tail)}")
    return result


def _run(section: str, kwargs: dict[str, Any]) -> Any:
    from benchmarks import suite
    from benchmarks.eager import run_eager
    from benchmarks.samplers import RunConfig

    suite.quiet_warnings()

    def log(msg: str) -> None:
        print(msg, flush=True)

    if section == "eager":
        return run_eager(log=log, **kwargs)
    if section == "progress":
        cfg = RunConfig(**kwargs.pop("cfg"))
        return suite.run_progress_bar(cfg=cfg, log=log, **kwargs)
    raise ValueError(f"unknown section {section!r}; known: eager, progress")


def main(argv: Sequence[str]) -> None:
    section, kwargs = argv[0], json.loads(argv[1])
    print(_RESULT + json.dumps(_run(section, kwargs)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
