"""A damaged program cache never crashes a run, nor changes its draws.

Each case runs in fresh processes (``tests/cache_faults.py``), as a user's next run would:
two processes fill one empty cache at once, then each way of damaging it (every stored
program truncated, overwritten with random bytes, of another format or empty, with a
half-written temp file beside them; the run note overwritten with bytes that are not text;
the note naming paths outside the folder; the folder read-only; a file where the folder
should be) is applied to a copy, and a run with it must draw what a run with the cache off
draws, log at most one warning, and leave nothing in the folder that fails its check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backends import Backend

ROOT = Path(__file__).resolve().parent.parent


def _start(*argv: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.cache_faults", *argv],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _result(process: subprocess.Popen[str]) -> dict[str, object]:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


def test_damaged_caches_give_the_draws_of_no_cache(tmp_path: Path, jax_backend: Backend) -> None:
    cache = tmp_path / "cache"
    writers = [_start("populate", str(cache)) for _ in range(2)]  # two processes at once
    first, second = (_result(p) for p in writers)
    assert first["draws"] == second["draws"]
    assert first["files"] == 4  # init, chains and two small helper programs were stored
    report = _result(_start("damage", str(cache)))
    off = report.pop("off")
    assert first["draws"] == off
    assert set(report) == {"files", "note", "note_paths", "read_only", "file_for_folder"}
    for case, seen in report.items():
        assert isinstance(seen, dict)
        assert seen["draws"] == off, case
        assert seen["warnings"] <= 1, case
        assert seen["loads"], case
    assert report["files"]["warnings"] == 1  # the damaged programs are said, once


def test_an_interrupted_write_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backends.jax import stored_programs

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(stored_programs.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        stored_programs.write_atomically(tmp_path / "program.pkl", b"x" * 1000)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("damage", ["truncated", "flipped", "other_format", "empty"])
def test_a_damaged_file_never_reaches_the_unpickler(
    tmp_path: Path, jax_backend: Backend, damage: str
) -> None:
    import jax
    import jax.numpy as jnp

    from backends.jax.stored_programs import DamagedProgramError, _kept_here_only, load, store

    path = tmp_path / "program.pkl"
    # A constant of its own, so the program is compiled here, never taken from JAX's cache
    # (an executable from there does not run once stored), and not written there either.
    offset = float(np.random.default_rng().uniform(1.0, 2.0))
    with _kept_here_only():
        compiled = jax.jit(lambda x: x + offset).lower(jnp.zeros(3)).compile()
    store(path, compiled)
    assert float(load(path)(jnp.zeros(3))[0]) == np.float32(offset)
    data = path.read_bytes()
    damaged = {
        "truncated": data[:-7],
        "flipped": data[:-1] + bytes([data[-1] ^ 1]),
        "other_format": b"minippl-stored-program-1\n" + data[data.index(b"\n") + 1 :],
        "empty": b"",
    }[damage]
    path.write_bytes(damaged)
    with pytest.raises(DamagedProgramError):
        load(path)
