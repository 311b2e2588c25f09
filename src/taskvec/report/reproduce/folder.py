"""A reproduction folder as the report reads it: ``config.json``, ``report_context.json`` (what
the report states beyond its tables) and ``tables/``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from taskvec.errors import ConfigError
from taskvec.storage.run_folder import write_json

#: what the report states beyond its tables (tasks' sizes, base LLM, timings, analysis layer)
CONTEXT_FILE = "report_context.json"


class ReproductionFolder:
    """The files of a reproduction folder the report is rendered from."""

    def __init__(self, root: Path, role: str = "reproduction folder", cure: str = ""):
        """``role``: what ``root`` is to the caller, and ``cure``, what to do, said in one line
        where one of its files is missing or damaged (it was a traceback)."""
        self.root = Path(root)
        self.config, self.context = (self._json(name, role, cure) for name in ("config.json", CONTEXT_FILE))

    def _json(self, name: str, role: str, cure: str) -> dict:
        path = self.root / name
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            problem = f"it has no {name} (not a finished reproduction)"
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            problem = f"its {name} does not read ({error})"
        raise ConfigError(f"{role} {self.root}: {problem}{'; ' + cure if cure else ''}")

    def table(self, name: str, index_col=0, folder: str = "tables") -> pd.DataFrame | None:
        path = self.root / folder / f"{name}.csv"
        return pd.read_csv(path, index_col=index_col) if path.is_file() else None

    def task_order(self, columns) -> list[str]:
        tasks = [t["name"] for t in self.context["tasks"]]
        return [t for t in tasks if t in columns] + [c for c in columns if c not in tasks]


def compare_with(folder: str | Path, other: str | Path) -> None:
    """Record ``other`` (a reproduction folder, stored relative to ``folder``) as the variant the
    report of ``folder`` shows side by side with its own model."""
    root, other = Path(folder), Path(other)
    ReproductionFolder(other)  # a folder without config.json / report_context.json fails here, in one line
    context = json.loads((root / CONTEXT_FILE).read_text())
    context["compare_with"] = os.path.relpath(other.resolve(), root.resolve())
    write_json(root / CONTEXT_FILE, context)
