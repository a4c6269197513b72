"""Stored programs loaded ahead (:mod:`backends.jax.prefetch`): what the last run under a
hint used is loaded on a background thread, handed over only when asked for by name, and the
note is rewritten only when the run used other files."""

from __future__ import annotations

import threading
from pathlib import Path

from backends.jax import prefetch


class Loader:
    """A stand-in for deserializing: records which files it loaded, on which thread."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.gate = gate

    def __call__(self, path: Path) -> str:
        if self.gate is not None:
            self.gate.wait(5.0)
        self.calls.append((path.name, threading.current_thread().name))
        return f"program in {path.name}"


def settle() -> None:
    """Wait for the loader thread to finish its queue (the tests' only look inside)."""
    worker = prefetch._worker
    if worker is not None:
        worker.join(5.0)


def until_loading(path: Path) -> None:
    """Wait until the loader has started on ``path``."""
    for _ in range(500):
        if path in prefetch._loading:
            return
        threading.Event().wait(0.01)
    raise AssertionError(f"{path.name} was never started")


class Writer:
    def __init__(self) -> None:
        self.writes: list[tuple[Path, bytes]] = []

    def __call__(self, path: Path, data: bytes) -> None:
        self.writes.append((path, data))
        path.write_bytes(data)


def test_the_files_of_the_last_run_load_in_the_background(tmp_path: Path) -> None:
    (tmp_path / "expect-h1.txt").write_text("init-a.pkl\nchains-b.pkl\n")
    load, write = Loader(), Writer()
    noted = prefetch.expect_programs(tmp_path, "h1", load, write)
    settle()
    assert prefetch.take(tmp_path / "init-a.pkl") == "program in init-a.pkl"
    assert prefetch.take(tmp_path / "chains-b.pkl") == "program in chains-b.pkl"
    assert {thread for _, thread in load.calls} == {"minippl-program-prefetch"}
    # A file nobody asked to load is the caller's to load; one taken is not handed out twice.
    assert prefetch.take(tmp_path / "chains-other.pkl") is None
    assert prefetch.take(tmp_path / "init-a.pkl") is None
    for name in ("init-a.pkl", "chains-b.pkl"):
        prefetch.note_resolved(tmp_path / name)
    noted()
    assert write.writes == []  # the same files as the note names: not rewritten


def test_the_note_names_the_files_this_run_used(tmp_path: Path) -> None:
    (tmp_path / "expect-h2.txt").write_text("init-old.pkl\n")
    load, write = Loader(), Writer()
    noted = prefetch.expect_programs(tmp_path, "h2", load, write)
    prefetch.note_resolved(tmp_path / "init-new.pkl")
    prefetch.note_resolved(tmp_path / "elsewhere" / "chains-x.pkl")  # another folder
    prefetch.note_resolved(tmp_path / "chains-new.pkl")
    prefetch.note_resolved(tmp_path / "init-new.pkl")
    noted()
    assert (tmp_path / "expect-h2.txt").read_text().split() == ["init-new.pkl", "chains-new.pkl"]
    settle()
    assert prefetch.take(tmp_path / "init-old.pkl") == "program in init-old.pkl"  # loaded anyway
    # A second run under the hint in this process loads nothing more, and adds what it used.
    again = prefetch.expect_programs(tmp_path, "h2", load, write)
    prefetch.note_resolved(tmp_path / "chains-more.pkl")
    again()
    assert (tmp_path / "expect-h2.txt").read_text().split() == [
        "init-new.pkl",
        "chains-new.pkl",
        "chains-more.pkl",
    ]
    assert [name for name, _ in load.calls] == ["init-old.pkl"]


def test_a_file_still_queued_is_left_to_the_caller(tmp_path: Path) -> None:
    (tmp_path / "expect-h3.txt").write_text("first.pkl\nsecond.pkl\n")
    gate = threading.Event()
    load = Loader(gate)
    prefetch.expect_programs(tmp_path, "h3", load, Writer())
    until_loading(tmp_path / "first.pkl")
    assert prefetch.take(tmp_path / "second.pkl") is None  # the loader is still on the first
    gate.set()
    assert prefetch.take(tmp_path / "first.pkl") == "program in first.pkl"
    assert [name for name, _ in load.calls] == ["first.pkl"]


def test_a_failed_load_is_left_to_the_caller(tmp_path: Path) -> None:
    (tmp_path / "expect-h4.txt").write_text("broken.pkl\n")

    def broken(path: Path) -> str:
        raise ValueError("not a program")

    prefetch.expect_programs(tmp_path, "h4", broken, Writer())
    settle()
    assert prefetch.take(tmp_path / "broken.pkl") is None
