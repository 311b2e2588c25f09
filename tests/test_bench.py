"""The benchmarks stay runnable: every module of ``bench/`` imports (no nnsight, no GPU needed)
against the package as it is now, and each script parses ``--help``, so a refactor that breaks one
fails here, not on the next hand-run (``test_bench_smallest.py`` runs each at its smallest size)."""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(m.name for m in pkgutil.iter_modules([str(ROOT / "bench")]))


def test_there_are_benchmarks():
    assert {"common", "stages", "table", "arithmetic", "peers"} <= set(MODULES)


def test_every_benchmark_imports_without_nnsight():
    """In a fresh interpreter (one for all of them: each start costs seconds): nnsight is imported
    only where its peer runs."""
    code = (
        "import importlib, sys; "
        f"[importlib.import_module('bench.' + name) for name in {MODULES!r}]; "
        "assert 'nnsight' not in sys.modules, 'nnsight imported at module level'"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize("name", MODULES)
def test_a_benchmark_says_what_it_does_and_parses_its_options(name, capsys):
    """What ``python -m bench.<name> --help`` does, for each script (``common`` is none)."""
    module = importlib.import_module(f"bench.{name}")
    assert module.__doc__
    if name == "common":
        return
    with pytest.raises(SystemExit) as done:
        module.main(["--help"])
    assert done.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_no_benchmark_imports_a_private_name_of_the_package():
    """What a benchmark needs from taskvec has a public name (a private one changes silently)."""
    import ast

    private = [
        f"{path.name}: {node.module}.{alias.name}"
        for path in sorted((ROOT / "bench").glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("taskvec")
        for alias in node.names
        if alias.name.startswith("_")
    ]
    assert private == []
