"""``python -m tutorial [SECTION ...] [--out DIR] [--data PATH]``: run the tutorial.

With no SECTION, every section runs in order. Figures go to ``--out`` (default
``./tutorial_output``); the email section reads ``collections_email.csv`` from ``--data``
(a file or its folder), else ``MINIPPL_DATA_DIR``, else the copy shipped in ``tutorial/data``.
"""

from __future__ import annotations

import argparse
import sys
import time

from tutorial import SECTIONS, find_section, run_section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tutorial",
        description="Run the effect-handlers tutorial on minippl, section by section.",
    )
    parser.add_argument(
        "sections",
        nargs="*",
        metavar="SECTION",
        help="sections to run (e.g. 3, s03, inspection); all of them if none is given",
    )
    parser.add_argument("--out", metavar="DIR", help="folder for the figures (./tutorial_output)")
    parser.add_argument(
        "--data",
        metavar="PATH",
        help="collections_email.csv, or the folder holding it (else MINIPPL_DATA_DIR, "
        "else the copy shipped in tutorial/data)",
    )
    parser.add_argument("--list", action="store_true", help="list the sections and exit")
    args = parser.parse_args(argv)

    if args.list:
        for module, title in SECTIONS:
            print(f"{module[:3]}  {module[4:]:<18s} {title}")
        return 0
    try:
        modules = [find_section(name) for name in args.sections] or [m for m, _ in SECTIONS]
    except ValueError as error:
        parser.error(str(error))

    from tutorial import common  # imported here: it starts the backend

    common.configure(out=args.out, data=args.data)
    common.written.clear()
    titles = dict(SECTIONS)
    failed: list[str] = []
    for module in modules:
        number = int(module[1:3])
        print(f"\n{'=' * 100}\n{number}. {titles[module]}   (tutorial/{module}.py)\n{'=' * 100}")
        start = time.perf_counter()
        try:
            run_section(module)
        except common.DataNotFoundError as error:
            print(f"\n[section {number} stopped] {error}", file=sys.stderr)
            failed.append(module)
            continue
        print(f"[{module} done in {time.perf_counter() - start:.1f} s]")

    out = common.out_dir().resolve()
    if common.written:
        print(f"\nThis run wrote {len(common.written)} figures and graphs to {out}:")
        for path in common.written:
            print(f"  {path.name}")
    else:
        print(f"\nThe sections run draw no figures; the figures folder is {out}")
    if failed:
        print(f"\nSections that could not run: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
