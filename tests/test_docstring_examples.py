"""The examples in the docstrings of every module of minippl run, on both backends.

Each docstring example (NumPyro's handlers carry them too) is collected with
``doctest.DocTestFinder`` and run under the ``backend`` fixture, so the documentation and the
code cannot drift apart. The examples assume ``import minippl``, ``import
minippl.distributions as dist`` and ``from minippl import handlers``; their outputs are
shapes, names and given values, which agree on both backends.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil

import pytest

import minippl
import minippl.distributions as dist
from backends import Backend
from minippl import handlers, primitives, runtime

# Every module of the package, so that an example added anywhere is run. By import path:
# ``minippl.handlers.do`` the attribute is the handler class, not its module.
MODULES = tuple(
    importlib.import_module(info.name)
    for info in pkgutil.walk_packages(minippl.__path__, "minippl.")
)
GLOBALS = {"minippl": minippl, "dist": dist, "handlers": handlers}


def _examples() -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder()
    found = []
    for module in MODULES:
        found.extend(t for t in finder.find(module, extraglobs=GLOBALS) if t.examples)
    return sorted({t.name: t for t in found}.values(), key=lambda t: t.name)


EXAMPLES = _examples()


@pytest.mark.parametrize("example", EXAMPLES, ids=[t.name for t in EXAMPLES])
def test_the_example_runs(example: doctest.DocTest, backend: Backend) -> None:
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    report: list[str] = []
    example.globs = {**example.globs}  # each run starts from the module's names again
    runner.run(example, out=report.append, clear_globs=False)
    assert runner.failures == 0, "".join(report)


def _has_example(obj: object) -> bool:
    return ">>>" in (inspect.getdoc(obj) or "")


def test_every_handler_and_primitive_has_an_example() -> None:
    missing = [name for name in handlers.__all__ if not _has_example(getattr(handlers, name))]
    # Messenger's example (writing a handler) is in minippl/runtime.py's module docstring.
    missing = [name for name in missing if not (name == "Messenger" and _has_example(runtime))]
    public = [
        name
        for name, obj in vars(primitives).items()
        if not name.startswith("_")
        and getattr(obj, "__module__", None) == primitives.__name__
        and callable(obj)
    ]
    assert {"sample", "param", "plate", "deterministic", "factor"} <= set(public)
    missing += [name for name in public if not _has_example(getattr(primitives, name))]
    assert not missing, f"no example in the docstring of {missing}"
