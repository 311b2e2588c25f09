#!/usr/bin/env python3
"""Draw docs/contact_sheet.png: a few test items of each built-in task in every suite style.

The README shows it so a reader sees the data: rows are items (captioned ``task`` and
``input -> label``), columns are styles, grey cells are pictures a style does not draw
(Fluent has no national flags). Deterministic: the first items with distinct labels of each
task's test split.

    python scripts/make_contact_sheet.py [--out docs/contact_sheet.png] [--per-task 3]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from taskvec.tasks.images import task_contact_sheet
from taskvec.tasks.registry import BUILTIN_TASKS

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "contact_sheet.png")
    parser.add_argument("--per-task", type=int, default=3)
    parser.add_argument("--tile", type=int, default=72, help="cell size in pixels")
    args = parser.parse_args(argv)
    out = task_contact_sheet(list(BUILTIN_TASKS), args.out, per_task=args.per_task, tile=args.tile)
    print(f"{out}: {out.stat().st_size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
