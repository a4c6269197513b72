"""Stored programs loaded on a background thread while a warm process sets up its run.

A warm process spends a good part of its start deserializing the sampler's executables (the
chain program most, then the initialisation and the driver's small programs), and XLA
releases the GIL while it does. Their keys, though, are known only once the model has been
traced and set up, which takes about as long again. So each run leaves a note,
``expect-<hint>.txt`` beside the programs, naming the files it used; ``hint`` is a cheap
guess at "the same run again" (the model's code, the sampler's settings, the data's shapes),
made by the core before any tracing. The next run with that hint starts loading those files
at once, on one thread, and :class:`backends.jax.stored_programs.StoredProgram` takes a file
from here when the key it computes in the usual way names it. A wrong guess costs background
work, never a wrong program: nothing is used that its key did not name.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["expect_programs", "note_resolved", "take"]

logger = logging.getLogger(__name__)

_MAX_NOTED = 16  # a note names at most this many files (the most recent)

_lock = threading.Lock()
_queue: list[Path] = []  # files waiting for the loader thread, in the order to load them
_loading: dict[Path, threading.Event] = {}  # set once the file's result is in _results
_results: dict[Path, Any] = {}
_worker: threading.Thread | None = None
_loader: Callable[[Path], Any] | None = None

_resolved: list[Path] = []  # every program file this process resolved, in order
_used: dict[Path, list[str]] = {}  # per note: the files runs under it used in this process
_noted: dict[Path, list[str]] = {}  # per note: what it names, as last read or written here
_stopping = False  # set at exit: the loader starts no other file


def _stop() -> None:
    """At exit: finish the file being loaded, start no other."""
    global _stopping
    with _lock:
        _stopping = True


# Called before Python joins its threads at exit (what concurrent.futures uses), so the
# loader is never left inside XLA while the runtime shuts down, nor waited on for long.
getattr(threading, "_register_atexit", lambda fn: None)(_stop)


def _work() -> None:
    global _worker
    while True:
        with _lock:
            if not _queue or _loader is None or _stopping:
                _worker = None
                return
            path, load = _queue.pop(0), _loader
            done = _loading[path] = threading.Event()
        try:
            result = load(path)
        except Exception as err:  # noqa: BLE001 - the main thread will load it itself
            logger.debug("prefetch of %s failed (%s: %s)", path.name, type(err), err)
            result = None
        with _lock:
            _results[path] = result
        done.set()


def _start(paths: list[Path], load: Callable[[Path], Any]) -> None:
    global _worker, _loader
    with _lock:
        _loader = load
        _queue.extend(p for p in paths if p not in _queue and p not in _loading)
        if _queue and _worker is None:
            # Not a daemon: it must not be cut off inside XLA at exit (a few files at most).
            _worker = threading.Thread(target=_work, name="minippl-program-prefetch")
            _worker.start()


def take(path: Path) -> Any | None:
    """The program loaded from ``path`` in the background, or ``None`` when it was not asked
    for (or failed): then the caller loads it. Waits for a load in progress; a file still
    queued is taken off the queue and left to the caller."""
    with _lock:
        if path in _queue:
            _queue.remove(path)
            return None
        done = _loading.get(path)
    if done is None:
        return None
    done.wait()
    with _lock:
        _loading.pop(path, None)
        return _results.pop(path, None)


def _is_name(name: str) -> bool:
    """A note names program files in its own folder, nothing else (a damaged note's words
    are not paths to follow)."""
    return name.endswith(".pkl") and "/" not in name and "\\" not in name and name[0] != "."


def note_resolved(path: Path) -> None:
    """Record that this process resolved (loaded or compiled) the program in ``path``."""
    with _lock:
        _resolved.append(path)


def expect_programs(
    folder: Path,
    hint: str,
    load: Callable[[Path], Any],
    write: Callable[[Path, bytes], None],
) -> Callable[[], None]:
    """Start loading, with ``load``, the files the last run under ``hint`` used (once per
    process and hint); the function returned, called when this run has succeeded, rewrites
    the note (with ``write``) to name the files runs under ``hint`` used in this process."""
    note = folder / f"expect-{hint}.txt"
    with _lock:
        first = note not in _used
        used = _used.setdefault(note, [])
        mark = len(_resolved)
    if first:  # later runs under the hint know the note: no file to read on every run
        try:
            _noted[note] = [name for name in note.read_text("utf-8").split() if _is_name(name)]
            os.utime(note)  # used now: its age is how long since a run needed it
        except (OSError, ValueError):  # unreadable or not text: rewritten after the run
            _noted[note] = []
        if _noted[note]:
            _start([folder / name for name in _noted[note]], load)

    def record() -> None:
        with _lock:
            names = [p.name for p in _resolved[mark:] if p.parent == folder]
            used.extend(name for name in dict.fromkeys(names) if name not in used)
            wanted = used[-_MAX_NOTED:]
        if wanted and wanted != _noted.get(note):
            try:
                write(note, "\n".join(wanted).encode())
                _noted[note] = wanted
            except OSError as err:
                logger.debug("could not write %s (%s)", note, err)

    return record
