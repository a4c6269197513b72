"""The learner's site walk stays short: a budget on the lines a reader must read.

"A sample site goes through seed, trace and condition" is the first thing a learner of
minippl follows in the source. The definitions on that walk (the message, the stack and
``Messenger``, ``apply_stack`` and its default, ``sample``, ``seed``, ``trace``,
``condition``, with their docstrings and the helpers they call) must total at most
``BUDGET`` lines, so the walk reads in one sitting. The speed devices those definitions call
live in one module, ``minippl/_fast.py`` (each does what a one-line idiom named in its
docstring does), and are not counted: the walk reads the idiom, not the device.

A definition is counted from its first line (decorators included) to its last, docstring,
comments and blank lines inside it included; a module-level name (the stack's
``ContextVar``) is counted with the attribute docstring under it. ``WALK`` lists the
definitions by hand: a helper a walked function calls is in the list, and a test below
checks the list against the names the walked code uses in its own modules.

Run ``python -m tests.test_reading_path`` to print the breakdown.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

BUDGET = 300
LONGEST_FUNCTION = 60
"""No function in the core files is longer than this many lines."""

WALK: tuple[tuple[str, str], ...] = (
    ("minippl.messages", "Message"),
    ("minippl.runtime", "_STACK"),
    ("minippl.runtime", "stack"),
    ("minippl.runtime", "Messenger"),
    ("minippl.runtime", "apply_stack"),
    ("minippl.runtime", "default_process"),
    ("minippl.runtime", "MissingKeyError"),
    ("minippl.runtime", "Watcher"),
    ("minippl.runtime", "_WATCHER"),
    ("minippl.primitives", "sample"),
    ("minippl.handlers.inspection", "_SEEDED_TYPES"),
    ("minippl.handlers.inspection", "seed"),
    ("minippl.handlers.inspection", "as_key"),
    ("minippl.handlers.inspection", "trace"),
    ("minippl.handlers.values", "_NamesData"),
    ("minippl.handlers.values", "condition"),
)
"""(module, name) of each definition on the walk, in reading order."""

NOT_WALKED = {
    # Called by ``sample`` only for ``obs_mask=`` (a partly observed site), not on the walk.
    ("minippl.primitives", "_masked_observe"),
    # The dict-like view of a message for code written for NumPyro (``msg["value"]``) and its
    # repr: no step of the walk reads a message through it.
    ("minippl.messages", "_NumPyroView"),
    # What ``condition`` does inside ``scan``/``cond`` (a ``control_flow`` message): not on
    # the walk of a plain sample site.
    ("minippl.handlers.values", "_in_control_flow"),
}
"""Module-level names the walked code mentions that a learner need not read for the walk."""

CORE_FILES = ("messages.py", "runtime.py", "primitives.py", "handlers")

ROOT = Path(__file__).resolve().parent.parent


def _module_tree(module: str) -> tuple[ast.Module, list[str]]:
    source = inspect.getsource(importlib.import_module(module))
    return ast.parse(source), source.splitlines()


def _top_level(tree: ast.Module) -> dict[str, tuple[int, int]]:
    """Each module-level definition's name to its (first, last) line, 1-based, inclusive."""
    spans: dict[str, tuple[int, int]] = {}
    body = tree.body
    for index, node in enumerate(body):
        names: list[str] = []
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names = [node.name]
        elif isinstance(node, ast.Assign):
            names = [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names = [node.target.id]
        if not names:
            continue
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        last = node.end_lineno or node.lineno
        following = body[index + 1] if index + 1 < len(body) else None
        if (
            isinstance(node, ast.Assign | ast.AnnAssign)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            last = following.end_lineno or last  # the attribute docstring under a name
        for name in names:
            spans[name] = (first, last)
    return spans


def walk_lines() -> list[tuple[str, str, int]]:
    """(module, name, lines) for each definition of ``WALK``."""
    rows = []
    for module, name in WALK:
        tree, _ = _module_tree(module)
        first, last = _top_level(tree)[name]
        rows.append((module, name, last - first + 1))
    return rows


def _names_used(module: str, name: str) -> set[str]:
    tree, _ = _module_tree(module)
    node = next(
        n
        for n in tree.body
        if getattr(n, "name", None) == name
        or (isinstance(n, ast.Assign) and any(getattr(t, "id", None) == name for t in n.targets))
        or (isinstance(n, ast.AnnAssign) and getattr(n.target, "id", None) == name)
    )
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def test_the_site_walk_is_within_its_budget() -> None:
    rows = walk_lines()
    total = sum(lines for _, _, lines in rows)
    assert total <= BUDGET, _breakdown(rows)


def test_the_walk_lists_the_helpers_its_definitions_call() -> None:
    """Every private module-level definition (function, class, constant) of a walked module
    that walked code uses is itself on the walk (or named in ``NOT_WALKED``), so the count
    cannot leave out a helper by accident."""
    walked = set(WALK)
    missing = []
    for module, name in WALK:
        tree, _ = _module_tree(module)
        defined = {n for n in _top_level(tree) if n.startswith("_")}
        for used in _names_used(module, name) & defined:
            if (module, used) not in walked and (module, used) not in NOT_WALKED:
                missing.append(f"{module}.{used} (used by {name})")
    assert not missing, f"helpers on the walk but not counted: {missing}"


def _functions(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text())
    return [
        (f"{path.relative_to(ROOT)}:{node.lineno} {node.name}", node.end_lineno - node.lineno + 1)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno
    ]


def _core_paths() -> list[Path]:
    paths = []
    for name in CORE_FILES:
        path = ROOT / "minippl" / name
        paths.extend(sorted(path.glob("*.py")) if path.is_dir() else [path])
    return paths + [ROOT / "minippl" / "explain.py"]


def test_no_core_function_is_over_sixty_lines() -> None:
    long = [
        (where, lines)
        for path in _core_paths()
        for where, lines in _functions(path)
        if lines > LONGEST_FUNCTION
    ]
    assert not long, f"functions over {LONGEST_FUNCTION} lines: {long}"


def _breakdown(rows: list[tuple[str, str, int]]) -> str:
    lines = [f"{module + '.' + name:<45s} {count:4d}" for module, name, count in rows]
    total = sum(count for _, _, count in rows)
    lines.append(f"{'total':<45s} {total:4d}   (budget {BUDGET})")
    return "\n".join(lines)


if __name__ == "__main__":
    print(_breakdown(walk_lines()))
