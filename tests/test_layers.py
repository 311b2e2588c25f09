"""The package's floors stay in order: the import contracts in pyproject.toml
(``[tool.importlinter]``: imports go down only, the models' own order, no cycles between siblings)
hold on the source, and break as soon as a module imports from a floor above its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = (
    "import sys; from importlinter.cli import lint_imports; "
    "sys.exit(lint_imports(config_filename=sys.argv[1], no_cache=True, no_logo=True))"
)


def lint(src: Path) -> subprocess.CompletedProcess:
    """import-linter on the package found in ``src``, with the project's contracts."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [sys.executable, "-c", LINT, str(ROOT / "pyproject.toml")],
        cwd=src,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def source_copy(tmp_path: Path) -> Path:
    """The package's Python files (only they matter to the contracts) under ``tmp_path/src``."""
    for path in (ROOT / "src" / "taskvec").rglob("*.py"):
        target = tmp_path / "src" / path.relative_to(ROOT / "src")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return tmp_path / "src"


def test_the_package_keeps_its_import_contracts():
    result = lint(ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    """A task module reaching up into the run pipelines is caught, with the offending import."""
    src = source_copy(tmp_path)
    task = src / "taskvec" / "tasks" / "task.py"
    task.write_text(task.read_text() + "\nfrom taskvec.pipelines.evaluate import evaluate  # noqa: E402\n")
    result = lint(src)
    assert result.returncode != 0
    assert "floors: imports go down only BROKEN" in result.stdout
    assert "taskvec.tasks.task -> taskvec.pipelines.evaluate" in result.stdout


def test_a_cycle_between_model_modules_breaks_the_contract(tmp_path):
    """The registry and the embedded VLM's loader once imported each other; that cannot return."""
    src = source_copy(tmp_path)
    load = src / "taskvec" / "models" / "embedded" / "load.py"
    load.write_text(load.read_text() + "\nfrom taskvec.models.registry import load_model  # noqa: E402\n")
    result = lint(src)
    assert result.returncode != 0
    assert "models: registry on top, the adapter seam at the bottom BROKEN" in result.stdout
