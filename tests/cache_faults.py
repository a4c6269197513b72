"""A fresh process for ``test_cache_faults.py``: runs a small model with the program cache
in a given state and prints its draws (and what it saw) as JSON on the last line.

``python -m tests.cache_faults populate DIR`` runs once with the cache in ``DIR``.
``python -m tests.cache_faults damage DIR`` takes the draws with the cache off, then, for
each way of damaging a cache, copies ``DIR`` (a populated cache), damages the copy, runs with
it and reports the draws, the warnings logged and whether what is left in the folder loads.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HEADER_OF_ANOTHER_FORMAT = b"minippl-stored-program-1\n"


def draws() -> list[float]:
    import jax
    import numpy as np

    import minippl
    import minippl.distributions as dist
    from minippl.infer import MCMC, NUTS

    minippl.set_backend("jax")

    def model(y: Any) -> None:
        mu = minippl.sample("mu", dist.Normal(0.0, 1.0))
        with minippl.plate("data", y.shape[0]):
            minippl.sample("y", dist.Normal(mu, 1.0), obs=y)

    mcmc = MCMC(NUTS(model), num_warmup=10, num_samples=10, progress_bar=False)
    mcmc.run(jax.random.key(1), np.arange(5.0, dtype=np.float32))
    return [float(x) for x in np.asarray(mcmc.get_samples()["mu"])]


def _files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.pkl"))


def damage_files(programs: Path) -> None:
    """Each stored program damaged another way, and a half-written temp file beside them."""
    ways: list[Callable[[bytes], bytes]] = [
        lambda data: data[: len(data) // 2],  # truncated
        lambda data: os.urandom(len(data)),  # random bytes
        lambda data: HEADER_OF_ANOTHER_FORMAT + data[data.index(b"\n") + 1 :],  # old format
        lambda data: b"",  # empty
    ]
    for index, path in enumerate(_files(programs)):
        path.write_bytes(ways[index % len(ways)](path.read_bytes()))
    (programs / ".tmp-interrupted").write_bytes(b"half a prog")


def damage_note(programs: Path) -> None:
    for note in programs.glob("expect-*.txt"):
        note.write_bytes(b"\xff\xfe" + os.urandom(64))


def note_names_other_paths(programs: Path) -> None:
    for note in programs.glob("expect-*.txt"):
        note.write_text("../outside.pkl\n/etc/passwd\n..\n.tmp-x.pkl\n")
    (programs.parent / "outside.pkl").write_bytes(b"not for loading")


def read_only(programs: Path) -> None:
    for path in [*programs.iterdir(), programs]:
        path.chmod(stat.S_IRUSR | stat.S_IXUSR if path.is_dir() else stat.S_IRUSR)


def file_for_folder(programs: Path) -> None:
    shutil.rmtree(programs)
    programs.write_bytes(b"a file where the folder should be")


DAMAGES: dict[str, Callable[[Path], None]] = {
    "files": damage_files,
    "note": damage_note,
    "note_paths": note_names_other_paths,
    "read_only": read_only,
    "file_for_folder": file_for_folder,
}


class _Count(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def _all_load(programs: Path) -> bool:
    """Whatever the folder holds after the run passes the integrity check."""
    from backends.jax.stored_programs import DamagedProgramError, verified

    if not programs.is_dir():
        return True
    try:
        return all(verified(path.read_bytes()) for path in _files(programs))
    except (DamagedProgramError, OSError):
        return False


def damaged_runs(populated: Path) -> dict[str, Any]:
    from backends.jax import stored_programs

    os.environ["MINIPPL_COMPILE_CACHE"] = "0"
    report: dict[str, Any] = {"off": draws()}
    os.environ["MINIPPL_COMPILE_CACHE"] = "1"
    counter = _Count()
    logging.getLogger("backends").addHandler(counter)
    for name, damage in DAMAGES.items():
        folder = populated.parent / f"damaged-{name}"
        shutil.copytree(populated, folder)
        damage(folder / "programs")
        os.environ["MINIPPL_CACHE_DIR"] = str(folder)
        stored_programs._warned, counter.count = False, 0  # one warning per process: per case
        report[name] = {
            "draws": draws(),
            "warnings": counter.count,
            "loads": _all_load(folder / "programs"),
        }
    return report


def main() -> None:
    mode, folder = sys.argv[1], Path(sys.argv[2])
    os.environ["MINIPPL_CACHE_DIR"] = str(folder)
    os.environ.pop("MINIPPL_STORED_PROGRAMS", None)
    os.environ["MINIPPL_COMPILE_CACHE"] = "1"
    if mode == "populate":
        result: Any = {"draws": draws(), "files": len(_files(folder / "programs"))}
    else:
        result = damaged_runs(folder)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
